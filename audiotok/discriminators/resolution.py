"""Multi-resolution magnitude-spectrogram discriminator (UniVNet design, as in the Vocos release
that WavTokenizer copied: rectangular STFT window, conditional projection)."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from audiotok.discriminators.base import ClassProjection, DiscriminatorOutput, as_batch, conditioned, wn_conv2d

WAVTOKENIZER_RESOLUTIONS = ((1024, 256, 1024), (2048, 512, 2048), (512, 128, 512))


class ResolutionDiscriminator(nn.Module):
    """2-D convs over ``|STFT|`` at one ``(n_fft, hop_length, win_length)``.

    The STFT is centred (reflect padding) with a rectangular window, which is what the WavTokenizer
    and early Vocos code compute (they pass no window). Five weight-normed convs of ``channels``
    (kernels (7,5), (5,3), (5,3), 3, 3; strides (2,2), (2,1), (2,2), (2,1), (2,2)), LeakyReLU(0.1),
    then a 3x3 conv to one channel, plus an optional zero-initialised class projection.

    Returns ``(logits (B, N), feature maps)``: all five activations and the final map (with the
    projection term), as the original feature matching uses them."""

    def __init__(self, resolution: Tuple[int, int, int], channels: int = 64, num_embeddings: Optional[int] = None,
                 lrelu_slope: float = 0.1):
        super().__init__()
        self.n_fft, self.hop_length, self.win_length = (int(v) for v in resolution)
        self.lrelu_slope = lrelu_slope
        c = channels
        self.convs = nn.ModuleList([
            wn_conv2d(1, c, (7, 5), (2, 2), padding=(3, 2)),
            wn_conv2d(c, c, (5, 3), (2, 1), padding=(2, 1)),
            wn_conv2d(c, c, (5, 3), (2, 2), padding=(2, 1)),
            wn_conv2d(c, c, 3, (2, 1), padding=1),
            wn_conv2d(c, c, 3, (2, 2), padding=1),
        ])
        self.conv_post = wn_conv2d(c, 1, 3, padding=1)
        self.projection = ClassProjection(num_embeddings, c) if num_embeddings else None
        self.register_buffer("window", torch.ones(self.win_length), persistent=False)

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        """``|STFT|`` of ``(B, T)`` waveforms as ``(B, n_fft // 2 + 1, frames)``, computed in fp32."""
        spec = torch.stft(x.float(), self.n_fft, self.hop_length, self.win_length, window=self.window.float(),
                          center=True, pad_mode="reflect", return_complex=True)
        return spec.abs()

    def forward(self, x: torch.Tensor, cond: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        h = self.spectrogram(as_batch(x, "ResolutionDiscriminator"))[:, None].to(x.dtype)
        fmaps = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), self.lrelu_slope)
            fmaps.append(h)
        out = conditioned(self.conv_post(h), h, cond, self.projection, "ResolutionDiscriminator")
        fmaps.append(out)
        return out.flatten(1), fmaps


class MultiResolutionDiscriminator(nn.Module):
    """One :class:`ResolutionDiscriminator` per resolution; WavTokenizer's three are
    ``(1024, 256, 1024), (2048, 512, 2048), (512, 128, 512)`` = (n_fft, hop, win): 600,966 parameters
    with ``num_embeddings=4``. ``forward(x, cond=None)`` -> ``(logits, feature maps)`` per resolution."""

    def __init__(self, resolutions: Sequence[Tuple[int, int, int]] = WAVTOKENIZER_RESOLUTIONS, channels: int = 64,
                 num_embeddings: Optional[int] = None):
        super().__init__()
        self.discriminators = nn.ModuleList(
            ResolutionDiscriminator(r, channels=channels, num_embeddings=num_embeddings) for r in resolutions)

    def forward(self, x: torch.Tensor, cond: Optional[torch.Tensor] = None) -> DiscriminatorOutput:
        outs = [d(x, cond) for d in self.discriminators]
        return [o[0] for o in outs], [o[1] for o in outs]
