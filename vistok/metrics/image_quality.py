"""Per-image reconstruction quality on 8-bit images (what a user sees after saving)."""
from __future__ import annotations

import torch

from vistok.data.images import to_uint8


def psnr(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image of two ``(B, 3, H, W)`` [0, 1] batches, after uint8 rounding of both;
    identical images give +inf."""
    if recon.shape != target.shape:
        raise ValueError(f"psnr: shapes differ, {tuple(recon.shape)} vs {tuple(target.shape)}")
    a, b = to_uint8(recon).double(), to_uint8(target).double()
    mse = (a - b).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(255.0**2 / mse)
