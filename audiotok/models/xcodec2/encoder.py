"""X-Codec 2's two encoders' own parts: the acoustic encoder (DAC's layout of weight-normed
convolutions, with BigVGAN's anti-aliased SnakeBeta instead of Snake) and the adapter after the
semantic model."""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from audiotok.nn.alias_free import AntiAliasedSnakeBeta
from audiotok.nn.dac_blocks import DILATIONS, wn_conv


class ResidualUnit(nn.Module):
    """``x + conv2(act2(conv1(act1(x))))``: a 7-tap convolution dilated ``dilation``, then a 1-tap one."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.act1 = AntiAliasedSnakeBeta(channels)
        self.conv1 = wn_conv(channels, channels, 7, dilation=dilation, padding=3 * dilation)
        self.act2 = AntiAliasedSnakeBeta(channels)
        self.conv2 = wn_conv(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act2(self.conv1(self.act1(x))))


class EncoderBlock(nn.Module):
    """Residual units (dilations 1, 3, 9) at ``channels // 2``, then a ``2 stride``-tap strided convolution."""

    def __init__(self, channels: int, stride: int):
        super().__init__()
        half = channels // 2
        self.res = nn.ModuleList(ResidualUnit(half, d) for d in DILATIONS)
        self.act = AntiAliasedSnakeBeta(half)
        self.down = wn_conv(half, channels, 2 * stride, stride=stride, padding=math.ceil(stride / 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for unit in self.res:
            x = unit(x)
        return self.down(self.act(x))


class AcousticEncoder(nn.Module):
    """Waveform ``(B, 1, T)`` -> ``(B, out_dim, T / prod(strides))``."""

    def __init__(self, dim: int, strides: Sequence[int], out_dim: int):
        super().__init__()
        self.stem = wn_conv(1, dim, 7, padding=3)
        blocks = []
        for stride in strides:
            dim *= 2
            blocks.append(EncoderBlock(dim, int(stride)))
        self.blocks = nn.ModuleList(blocks)
        self.act = AntiAliasedSnakeBeta(dim)
        self.proj = wn_conv(dim, out_dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.proj(self.act(x))


class SemanticAdapter(nn.Module):
    """``(B, C, L)`` -> ``(B, C, L)``: 3-tap convolutions ``conv_in`` (no bias), ``conv1``, ``conv2``,
    ``conv_out`` (no bias) with ``h = relu(conv_in(x))``, ``conv_out(h + conv2(relu(conv1(h))))``.

    The release's residual branch starts with an in-place ReLU, which also rectifies the tensor its
    skip connection adds back; the skip therefore carries ``relu(conv_in(x))``, reproduced here.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.conv_in = nn.Conv1d(dim, dim, 3, padding=1, bias=False)
        self.conv1 = nn.Conv1d(dim, dim, 3, padding=1)
        self.conv2 = nn.Conv1d(dim, dim, 3, padding=1)
        self.conv_out = nn.Conv1d(dim, dim, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv_in(x))
        return self.conv_out(self.conv2(F.relu(self.conv1(h))) + h)
