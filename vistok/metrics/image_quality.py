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


def ssim(recon: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """SSIM per image (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, valid
    region only) of two ``(B, C, H, W)`` [0, 1] batches after uint8 rounding, averaged over channels."""
    if recon.shape != target.shape:
        raise ValueError(f"ssim: shapes differ, {tuple(recon.shape)} vs {tuple(target.shape)}")
    if min(recon.shape[-2:]) < window:
        raise ValueError(f"ssim: {tuple(recon.shape[-2:])} images are smaller than the {window}-pixel window")
    a, b = to_uint8(recon).double(), to_uint8(target).double()
    channels = a.shape[1]
    coords = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = (g / g.sum()).tolist()
    # The Gaussian is separable: two 1D passes of shifted-slice sums. A float64 conv2d takes
    # PyTorch's slow path on the CPU (~17x slower here) and float32 loses the 1e-9 agreement.
    moments = _blur(_blur(torch.cat([a, b, a * a, b * b, a * b], 1), g, 3), g, 2)
    mu_a, mu_b, aa, bb, ab = moments.split(channels, 1)
    var_a = aa - mu_a**2
    var_b = bb - mu_b**2
    cov = ab - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)


def _blur(t: torch.Tensor, weights, dim: int) -> torch.Tensor:
    """Valid-region 1D filtering of ``t`` along ``dim`` with ``weights``."""
    n = t.shape[dim] - len(weights) + 1
    out = t.narrow(dim, 0, n) * weights[0]
    for k, w in enumerate(weights[1:], start=1):
        out.add_(t.narrow(dim, k, n), alpha=w)
    return out
