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
    import torch.nn.functional as F

    if recon.shape != target.shape:
        raise ValueError(f"ssim: shapes differ, {tuple(recon.shape)} vs {tuple(target.shape)}")
    a, b = to_uint8(recon).double(), to_uint8(target).double()
    coords = torch.arange(window, dtype=torch.float64, device=a.device) - (window - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(a.shape[1], 1, window, window)
    blur = lambda t: F.conv2d(t, kernel, groups=a.shape[1])  # noqa: E731
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)
