"""The MaskGIT-VQGAN convolutional pixel decoder (f16), as TiTok's two-stage decoder uses it.

Reproduces what the released weights depend on: TensorFlow-style "same" padding, bias-free
residual convolutions, and the shortcut of a channel-changing residual block applied to the
block's *output* rather than its input (an oddity of the port the weights were trained with).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding (extra pixel on the bottom/right when odd)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s, d in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride),
                                 reversed(self.dilation)):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = F.pad(x, pads)
        return super().forward(x)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, plus a shortcut (see the module note on ``nin_shortcut``)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(32, in_channels, eps=1e-6)
        self.conv1 = SameConv2d(in_channels, out_channels, 3, bias=False)
        self.norm2 = nn.GroupNorm(32, out_channels, eps=1e-6)
        self.conv2 = SameConv2d(out_channels, out_channels, 3, bias=False)
        self.changes_channels = in_channels != out_channels
        if self.changes_channels:
            self.nin_shortcut = SameConv2d(out_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        shortcut = self.nin_shortcut(h) if self.changes_channels else x
        return h + shortcut


class UpLevel(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, num_blocks: int, upsample: bool):
        super().__init__()
        blocks = []
        for _ in range(num_blocks):
            blocks.append(ResBlock(in_channels, out_channels))
            in_channels = out_channels
        self.block = nn.ModuleList(blocks)
        self.upsample = upsample
        if upsample:
            self.upsample_conv = SameConv2d(out_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block:
            x = block(x)
        if self.upsample:
            x = self.upsample_conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return x


@dataclass(frozen=True)
class VQGANDecoderConfig:
    """Channel plan of the decoder; the defaults are MaskGIT-VQGAN ImageNet f16."""

    hidden_channels: int = 128
    channel_mult: Tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    z_channels: int = 256
    out_channels: int = 3


class VQGANDecoder(nn.Module):
    """Latent ``(B, z_channels, h, w)`` -> image ``(B, 3, h * 2^(levels-1), ...)``.

    ``up[i]`` is the level at resolution ``i`` (0 = full resolution); levels run from the last
    to the first, as in the checkpoint layout.
    """

    def __init__(self, config: VQGANDecoderConfig = VQGANDecoderConfig()):
        super().__init__()
        self.config = config
        mult: Sequence[int] = config.channel_mult
        ch = config.hidden_channels
        top = ch * mult[-1]
        self.conv_in = SameConv2d(config.z_channels, top, 3)
        self.mid = nn.ModuleList(ResBlock(top, top) for _ in range(config.num_res_blocks))
        levels = []
        for i in range(len(mult)):
            in_ch = ch * (mult[-1] if i == len(mult) - 1 else mult[i + 1])
            levels.append(UpLevel(in_ch, ch * mult[i], config.num_res_blocks, upsample=i != 0))
        self.up = nn.ModuleList(levels)
        self.norm_out = nn.GroupNorm(32, ch * mult[0], eps=1e-6)
        self.conv_out = SameConv2d(ch * mult[0], config.out_channels, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(z)
        for block in self.mid:
            x = block(x)
        for level in reversed(self.up):
            x = level(x)
        return self.conv_out(F.silu(self.norm_out(x)))
