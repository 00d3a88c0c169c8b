"""The discriminator TiTok's stage-2 and single-stage training use (a StyleGAN-flavoured N-layer
design): "same"-padded convs, blur-pool downsampling, GroupNorm, LeakyReLU(0.1), and logits on a
max-pooled 16x16 grid, so the logit map has the same size at any input resolution."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vistok.nn.conv import SameConv2d

_BINOMIAL = {3: (1.0, 2.0, 1.0), 4: (1.0, 3.0, 3.0, 1.0), 5: (1.0, 4.0, 6.0, 4.0, 1.0)}


class BlurDownsample(nn.Module):
    """Depthwise binomial blur with stride 2 ("same" padding as a 4-tap, stride-2 conv would get)."""

    def __init__(self, taps: int = 4):
        super().__init__()
        if taps not in _BINOMIAL:
            raise ValueError(f"BlurDownsample: taps must be one of {sorted(_BINOMIAL)}, got {taps}")
        row = torch.tensor(_BINOMIAL[taps])
        kernel = row[:, None] * row[None, :]
        self.register_buffer("kernel", (kernel / kernel.sum())[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size in (x.shape[-1], x.shape[-2]):
            total = max((-(-size // 2) - 1) * 2 + 4 - size, 0)  # padding of a k=4, s=2 "same" conv
            pads += [total // 2, total - total // 2]
        x = F.pad(x, pads)
        weight = self.kernel.to(x.dtype).expand(x.shape[1], 1, -1, -1)
        return F.conv2d(x, weight, stride=2, groups=x.shape[1])


class BlurPoolDiscriminator(nn.Module):
    """Images in [0, 1] ``(B, 3, H, W)`` -> logits ``(B, 1, 16, 16)``.

    ``channels`` wide after the 5x5 stem; the first downsampling stage keeps the width and each
    later one doubles it (TiTok trains with 128 and 3 stages: 128 -> 128 -> 256 -> 512)."""

    def __init__(self, in_channels: int = 3, channels: int = 128, num_stages: int = 3, blur_taps: int = 4,
                 pooled_size: int = 16):
        super().__init__()
        act = lambda: nn.LeakyReLU(0.1)  # noqa: E731
        self.stem = nn.Sequential(SameConv2d(in_channels, channels, 5), act())
        widths: Sequence[int] = [channels] + [channels * 2**i for i in range(num_stages)]
        self.stages = nn.ModuleList(
            nn.Sequential(SameConv2d(widths[i], widths[i + 1], 3), BlurDownsample(blur_taps),
                          nn.GroupNorm(32, widths[i + 1]), act())
            for i in range(num_stages))
        self.pool = nn.AdaptiveMaxPool2d(pooled_size)
        self.head = nn.Sequential(SameConv2d(widths[-1], widths[-1], 1), act(), SameConv2d(widths[-1], 1, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for stage in self.stages:
            h = stage(h)
        return self.head(self.pool(h))
