"""LlamaGen's VQGAN encoder (image -> latent) and decoder (latent -> image).

Module names follow the release's checkpoint layout (``conv_blocks.{i}.res.{j}``, ``attn``,
``downsample`` / ``upsample``, ``mid.{0,1,2}``), so the converter renames only the codebook.
Attention runs after every residual block of the lowest-resolution level and in the middle.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vistok.models.llamagen.blocks import AttnBlock, Downsample, ResnetBlock, Upsample, group_norm


class Level(nn.Module):
    """The residual blocks (and their attention, if any) of one resolution, then an optional resampling."""

    def __init__(self, in_channels: int, out_channels: int, num_blocks: int, attention: bool, dropout: float):
        super().__init__()
        self.res = nn.ModuleList(ResnetBlock(in_channels if j == 0 else out_channels, out_channels, dropout)
                                 for j in range(num_blocks))
        self.attn = nn.ModuleList(AttnBlock(out_channels) for _ in range(num_blocks if attention else 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for j, block in enumerate(self.res):
            x = block(x)
            if len(self.attn):
                x = self.attn[j](x)
        if hasattr(self, "downsample"):
            x = self.downsample(x)
        if hasattr(self, "upsample"):
            x = self.upsample(x)
        return x


def _middle(channels: int, dropout: float) -> nn.ModuleList:
    return nn.ModuleList([ResnetBlock(channels, channels, dropout), AttnBlock(channels),
                          ResnetBlock(channels, channels, dropout)])


class Encoder(nn.Module):
    """Image ``(B, 3, H, W)`` in [-1, 1] -> latent ``(B, z_channels, H / f, W / f)``, ``f = 2^(levels - 1)``."""

    def __init__(self, ch: int, ch_mult: Sequence[int], num_res_blocks: int, z_channels: int,
                 dropout: float = 0.0, in_channels: int = 3):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        widths = [ch] + [ch * m for m in ch_mult]
        last = len(ch_mult) - 1
        self.conv_blocks = nn.ModuleList()
        for i in range(len(ch_mult)):
            level = Level(widths[i], widths[i + 1], num_res_blocks, attention=i == last, dropout=dropout)
            if i != last:
                level.downsample = Downsample(widths[i + 1])
            self.conv_blocks.append(level)
        top = widths[-1]
        self.mid = _middle(top, dropout)
        self.norm_out = group_norm(top)
        self.conv_out = nn.Conv2d(top, z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.conv_blocks:
            h = level(h)
        for block in self.mid:
            h = block(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """Latent ``(B, z_channels, h, w)`` -> image ``(B, 3, h * f, w * f)`` in about [-1, 1] (unclamped).

    ``conv_blocks[0]`` is the lowest resolution (the reverse of the encoder's order, as in the
    release); each level has ``num_res_blocks + 1`` residual blocks.
    """

    def __init__(self, ch: int, ch_mult: Sequence[int], num_res_blocks: int, z_channels: int,
                 dropout: float = 0.0, out_channels: int = 3):
        super().__init__()
        n = len(ch_mult)
        width = ch * ch_mult[-1]
        self.conv_in = nn.Conv2d(z_channels, width, 3, padding=1)
        self.mid = _middle(width, dropout)
        self.conv_blocks = nn.ModuleList()
        for i in reversed(range(n)):
            out = ch * ch_mult[i]
            level = Level(width, out, num_res_blocks + 1, attention=i == n - 1, dropout=dropout)
            if i != 0:
                level.upsample = Upsample(out)
            self.conv_blocks.append(level)
            width = out
        self.norm_out = group_norm(width)
        self.conv_out = nn.Conv2d(width, out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        for block in self.mid:
            h = block(h)
        for level in self.conv_blocks:
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))
