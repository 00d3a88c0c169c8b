"""Anti-aliased periodic activations (BigVGAN, Lee et al., 2023): the activation runs at twice the
rate, between a Kaiser-windowed sinc upsampler and a low-pass downsampler, so the harmonics it
creates above the original Nyquist frequency are filtered out instead of folding back.

:class:`SnakeBeta` is Snake with a separate magnitude per channel, both parameters on a log scale:
``x + sin(exp(alpha) * x)^2 / (exp(beta) + eps)``. The filters are fixed (non-persistent buffers
rebuilt from their three numbers), and edges are replicate-padded as BigVGAN's ``alias_free_torch``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def kaiser_sinc_filter(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """A ``(1, 1, kernel_size)`` low-pass FIR: sinc at ``cutoff`` (cycles per sample) under a Kaiser
    window whose beta follows Kaiser's formula for the attenuation a transition band of
    ``half_width`` allows; normalised to unit DC gain. An even size centres the taps between samples."""
    half = kernel_size // 2
    attenuation = 2.285 * (half - 1) * math.pi * 4 * half_width + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, beta=beta, periodic=False, dtype=torch.float32)
    if kernel_size % 2 == 0:
        time = torch.arange(-half, half) + 0.5
    else:
        time = torch.arange(kernel_size) - half
    if cutoff == 0:
        return torch.zeros(1, 1, kernel_size)
    taps = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    return (taps / taps.sum()).view(1, 1, kernel_size)


class UpSample1d(nn.Module):
    """``(B, C, T)`` -> ``(B, C, ratio * T)``: replicate padding, a transposed depthwise convolution
    with the sinc filter (gain ``ratio``), and the filter's transient cut from both ends."""

    def __init__(self, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.ratio, self.kernel_size = ratio, kernel_size
        self.pad = kernel_size // ratio - 1
        self.cut_left = self.pad * ratio + (kernel_size - ratio) // 2
        self.cut_right = self.pad * ratio + (kernel_size - ratio + 1) // 2
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / ratio, 0.6 / ratio, kernel_size), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        x = self.ratio * F.conv_transpose1d(x, self.filter.to(x.dtype).expand(channels, -1, -1), stride=self.ratio,
                                            groups=channels)
        return x[..., self.cut_left:-self.cut_right]


class DownSample1d(nn.Module):
    """``(B, C, T)`` -> ``(B, C, T / ratio)``: replicate padding, then the sinc low-pass as a strided
    depthwise convolution."""

    def __init__(self, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.ratio = ratio
        self.pad_left = kernel_size // 2 - int(kernel_size % 2 == 0)
        self.pad_right = kernel_size // 2
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / ratio, 0.6 / ratio, kernel_size), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(x, self.filter.to(x.dtype).expand(channels, -1, -1), stride=self.ratio, groups=channels)


class SnakeBeta(nn.Module):
    """``x + sin(exp(alpha) * x)^2 / (exp(beta) + 1e-9)`` over ``(B, C, T)``, one ``alpha`` (frequency)
    and one ``beta`` (magnitude) per channel, both log-scale and initialised to 0."""

    def __init__(self, channels: int):
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be positive, got {channels}")
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = torch.exp(self.alpha)[None, :, None]
        beta = torch.exp(self.beta)[None, :, None]
        return x + (1.0 / (beta + 1e-9)) * torch.pow(torch.sin(x * alpha), 2)


class AntiAliasedSnakeBeta(nn.Module):
    """:class:`SnakeBeta` at twice the rate: upsample by 2, activate, downsample by 2 (12-tap filters)."""

    def __init__(self, channels: int, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.act = SnakeBeta(channels)
        self.upsample = UpSample1d(ratio, kernel_size)
        self.downsample = DownSample1d(ratio, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(self.act(self.upsample(x)))
