"""Multi-period discriminator (HiFi-GAN design, in the conditional form Vocos and WavTokenizer train)."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from audiotok.discriminators.base import ClassProjection, DiscriminatorOutput, as_batch, conditioned, wn_conv2d

_WIDTHS = (32, 128, 512, 1024, 1024)


class PeriodDiscriminator(nn.Module):
    """Folds a waveform into ``(T / period, period)`` and scores columns with (5, 1) convolutions.

    Five weight-normed convs (1 -> 32 -> 128 -> 512 -> 1024 -> 1024; stride 3 along time except the
    last), LeakyReLU(0.1), then a (3, 1) conv to one channel. ``num_embeddings`` adds a zero-initialised
    class projection on the last hidden layer (WavTokenizer passes its bandwidth id).

    Returns ``(logits (B, N), feature maps)``. As in the WavTokenizer training code, the feature maps
    are the activations of convs 2-5 plus the final map *including* the projection term (the
    original adds it in place after storing the map); the first conv's activation is not matched.
    A length that is not a multiple of ``period`` is reflect-padded on the right."""

    def __init__(self, period: int, kernel_size: int = 5, stride: int = 3, num_embeddings: Optional[int] = None,
                 lrelu_slope: float = 0.1):
        super().__init__()
        self.period = int(period)
        self.lrelu_slope = lrelu_slope
        pad = (kernel_size // 2, 0)
        chans = (1,) + _WIDTHS
        self.convs = nn.ModuleList(
            wn_conv2d(chans[i], chans[i + 1], (kernel_size, 1), (stride if i < 4 else 1, 1), padding=pad)
            for i in range(len(_WIDTHS)))
        self.conv_post = wn_conv2d(_WIDTHS[-1], 1, (3, 1), 1, padding=(1, 0))
        self.projection = ClassProjection(num_embeddings, _WIDTHS[-1]) if num_embeddings else None

    def forward(self, x: torch.Tensor, cond: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        x = as_batch(x, "PeriodDiscriminator")[:, None]
        rest = x.shape[-1] % self.period
        if rest:
            x = F.pad(x, (0, self.period - rest), mode="reflect")
        h = x.view(x.shape[0], 1, -1, self.period)
        fmaps = []
        for i, conv in enumerate(self.convs):
            h = F.leaky_relu(conv(h), self.lrelu_slope)
            if i > 0:
                fmaps.append(h)
        out = conditioned(self.conv_post(h), h, cond, self.projection, "PeriodDiscriminator")
        fmaps.append(out)
        return out.flatten(1), fmaps


class MultiPeriodDiscriminator(nn.Module):
    """One :class:`PeriodDiscriminator` per period (default 2, 3, 5, 7, 11): 41,126,250 parameters
    with ``num_embeddings=4`` as WavTokenizer builds it. ``forward(x, cond=None)`` takes waveforms
    ``(B, T)`` and returns ``(logits per period, feature maps per period)``."""

    def __init__(self, periods: Sequence[int] = (2, 3, 5, 7, 11), num_embeddings: Optional[int] = None):
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, num_embeddings=num_embeddings) for p in periods)

    def forward(self, x: torch.Tensor, cond: Optional[torch.Tensor] = None) -> DiscriminatorOutput:
        outs = [d(x, cond) for d in self.discriminators]
        return [o[0] for o in outs], [o[1] for o in outs]
