"""The Snake activation (Ziyin et al., 2020) with a learned frequency per channel, as BigVGAN and
DAC use it: ``x + sin(alpha * x)^2 / alpha``."""
from __future__ import annotations

import torch
from torch import nn


def snake(x: torch.Tensor, alpha: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """``x + sin(alpha * x)^2 / (alpha + eps)`` for ``x`` ``(B, C, ...)`` and ``alpha`` ``(1, C, 1)``.

    The order of operations (a reciprocal of ``alpha + eps`` times the squared sine) is DAC's, so
    released weights give the same values to the last bit; trailing dimensions are flattened into
    one time axis for the computation."""
    shape = x.shape
    flat = x.reshape(shape[0], shape[1], -1)
    out = flat + (alpha + eps).reciprocal() * torch.sin(alpha * flat).pow(2)
    return out.reshape(shape)


class Snake1d(nn.Module):
    """Snake over ``(B, C, T)`` with one learned ``alpha`` per channel (parameter ``alpha``,
    ``(1, C, 1)``, initialised to 1)."""

    def __init__(self, channels: int):
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be positive, got {channels}")
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return snake(x, self.alpha)

    def extra_repr(self) -> str:
        return f"channels={self.alpha.shape[1]}"
