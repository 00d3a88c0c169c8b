"""EnCodec's multi-scale STFT discriminator (MS-STFT-D, Defossez et al. 2022, "High Fidelity Neural
Audio Compression"), at the settings of AudioCraft's EnCodec compression recipe: five STFT scales,
each scored by a small 2D conv stack over the complex spectrogram.

Written from the description in AudioCraft (``audiocraft/adversarial/discriminators/msstftd.py`` and
``config/solver/compression/default.yaml``, facebookresearch/audiocraft); the parameter count and the
outputs were checked against that implementation with weights copied across."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from audiotok.discriminators.base import DiscriminatorOutput, as_batch, wn_conv2d

# (n_fft, hop, window) of the five scales in EnCodec's published recipe.
ENCODEC_SCALES = ((1024, 256, 1024), (2048, 512, 2048), (512, 128, 512), (256, 64, 256), (128, 32, 128))


def _same(kernel: Tuple[int, int], dilation: Tuple[int, int] = (1, 1)) -> Tuple[int, int]:
    """Padding that keeps a (stride-1) dimension's size for an odd kernel under the given dilation."""
    return tuple((k - 1) * d // 2 for k, d in zip(kernel, dilation))


class STFTDiscriminator(nn.Module):
    """One scale of MS-STFT-D.

    The waveform's STFT (Hann window of ``win_length``, hop ``hop_length``, no centring/padding,
    divided by the window's L2 norm when ``normalized``) enters as two channels, real and imaginary,
    laid out ``(B, 2, frames, bins)``. Then: a ``kernel`` conv to ``filters`` channels; one conv per
    entry of ``dilations`` with stride ``stride`` (frequency) and that dilation along time; a square
    ``kernel[0]`` conv; each followed by LeakyReLU(``negative_slope``) and kept as a feature map; and a
    square ``kernel[0]`` conv to one channel, the logits. Widths grow by ``growth`` per layer up to
    ``max_filters`` (EnCodec keeps them constant).

    As in the reference, every conv but the first is weight-normalised; the first is a plain conv.

    ``forward(x (B, T))`` -> ``(logits (B, N), feature maps)``. ``T`` must be at least ``n_fft``."""

    def __init__(self, n_fft: int, hop_length: int, win_length: Optional[int] = None, filters: int = 32,
                 dilations: Sequence[int] = (1, 2, 4), kernel: Tuple[int, int] = (3, 9),
                 stride: Tuple[int, int] = (1, 2), negative_slope: float = 0.3, normalized: bool = True,
                 growth: int = 1, max_filters: int = 1024):
        super().__init__()
        self.n_fft, self.hop_length = int(n_fft), int(hop_length)
        self.win_length = int(win_length if win_length is not None else n_fft)
        if not 0 < self.win_length <= self.n_fft:
            raise ValueError(f"STFTDiscriminator: need 0 < win_length <= n_fft, got {self.win_length} and {self.n_fft}")
        self.normalized = normalized
        kernel, stride = tuple(kernel), tuple(stride)
        square = (kernel[0], kernel[0])

        def width(i: int) -> int:
            return min(growth ** i * filters, max_filters)

        layers: List[nn.Module] = [nn.Conv2d(2, width(0), kernel, padding=_same(kernel))]
        for i, d in enumerate(dilations):
            layers.append(wn_conv2d(width(i), width(i + 1), kernel, stride=stride, dilation=(d, 1),
                                    padding=_same(kernel, (d, 1))))
        n = len(dilations)
        layers.append(wn_conv2d(width(n), width(n + 1), square, padding=_same(square)))
        self.convs = nn.ModuleList(layers)
        self.conv_post = wn_conv2d(width(n + 1), 1, square, padding=_same(square))
        self.act = nn.LeakyReLU(negative_slope)
        self.register_buffer("window", torch.hann_window(self.win_length), persistent=False)

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` -> ``(B, 2, frames, n_fft // 2 + 1)`` (real, imaginary), computed in fp32."""
        window = self.window.float()
        spec = torch.stft(x.float(), self.n_fft, self.hop_length, self.win_length, window=window, center=False,
                          return_complex=True)
        if self.normalized:
            spec = spec / window.pow(2).sum().sqrt()
        return torch.view_as_real(spec).permute(0, 3, 2, 1).to(x.dtype)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        h = self.spectrogram(x)
        fmaps = []
        for conv in self.convs:
            h = self.act(conv(h))
            fmaps.append(h)
        return self.conv_post(h).flatten(1), fmaps


class MultiScaleSTFTDiscriminator(nn.Module):
    """MS-STFT-D: one :class:`STFTDiscriminator` per ``(n_fft, hop, window)`` in ``scales`` (default
    EnCodec's five, 32 filters, LeakyReLU(0.3): 472,330 parameters, the count AudioCraft's
    implementation has at these settings). Unconditional: ``forward(x, cond=None)`` takes ``(B, T)``
    waveforms (``T`` >= the largest ``n_fft``), accepts ``cond`` for a uniform interface and ignores it,
    and returns ``(logits, feature maps)`` per scale, in ``scales`` order. Further keyword arguments go
    to every scale."""

    def __init__(self, scales: Sequence[Tuple[int, int, int]] = ENCODEC_SCALES, filters: int = 32, **kwargs):
        super().__init__()
        self.scales = tuple(tuple(int(v) for v in s) for s in scales)
        if not self.scales:
            raise ValueError("MultiScaleSTFTDiscriminator needs at least one scale")
        self.discriminators = nn.ModuleList(
            STFTDiscriminator(n_fft, hop, win, filters=filters, **kwargs) for n_fft, hop, win in self.scales)

    def forward(self, x: torch.Tensor, cond: Optional[torch.Tensor] = None) -> DiscriminatorOutput:
        x = as_batch(x, "MultiScaleSTFTDiscriminator")
        outs = [d(x) for d in self.discriminators]
        return [o[0] for o in outs], [o[1] for o in outs]
