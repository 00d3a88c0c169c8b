"""PatchGAN discriminator of the VQGAN family (pix2pix's N-layer design as used by taming-transformers)."""
from __future__ import annotations

import torch
import torch.nn as nn

_NORMS = ("batch", "group", "none")


def _norm_layer(norm: str, channels: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "group":
        groups = max(g for g in range(1, 33) if channels % g == 0)  # 32 groups when the width allows
        return nn.GroupNorm(groups, channels)
    return nn.Identity()


class PatchDiscriminator(nn.Module):
    """PatchGAN: 4x4 convs, stride 2 for the first ``num_layers`` convs, LeakyReLU(0.2), one-channel
    logit map (one logit per overlapping patch; 70x70 receptive field for ``num_layers=3``).

    Input is an image batch in [0, 1], mapped to [-1, 1] inside. Widths are ``channels * min(2**n, 8)``.
    Conv weights ~ N(0, 0.02) and norm weights ~ N(1, 0.02), biases 0 (taming-transformers' init);
    convs followed by a norm have no bias. Output for ``(B, C, H, W)`` is ``(B, 1, H/2**L - 2, W/2**L - 2)``
    with ``L = num_layers`` (e.g. 32x32 -> 2x2, 256x256 -> 30x30 for L=3).

    With DDP, ``norm="batch"`` keeps per-rank BatchNorm statistics unless the module is converted with
    ``torch.nn.SyncBatchNorm.convert_sync_batchnorm`` (the engine does that for multi-process runs)."""

    def __init__(self, in_channels: int = 3, channels: int = 64, num_layers: int = 3, norm: str = "batch"):
        super().__init__()
        if norm not in _NORMS:
            raise ValueError(f"PatchDiscriminator: norm must be one of {_NORMS}, got {norm!r}")
        if num_layers < 1:
            raise ValueError(f"PatchDiscriminator: num_layers must be >= 1, got {num_layers}")
        layers = [nn.Conv2d(in_channels, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        width = channels
        for n in range(1, num_layers + 1):
            out = channels * min(2**n, 8)
            stride = 2 if n < num_layers else 1
            layers += [nn.Conv2d(width, out, 4, stride=stride, padding=1, bias=norm == "none"),
                       _norm_layer(norm, out), nn.LeakyReLU(0.2, inplace=True)]
            width = out
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.main = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """taming-transformers init: conv N(0, 0.02); norm weight N(1, 0.02); all biases zero."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.normal_(m.weight, 1.0, 0.02)
            else:
                continue
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Patch logits ``(B, 1, h, w)`` for images ``x`` in [0, 1]."""
        return self.main(x * 2 - 1)
