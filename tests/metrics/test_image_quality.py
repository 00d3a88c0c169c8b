"""PSNR and SSIM against independent computations."""
import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from vistok.metrics import psnr, ssim


def _reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM with scipy's Gaussian filter (truncate so the window is 11 wide), valid region only."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for ch in range(a.shape[0]):
        x, y = a[ch].astype(np.float64), b[ch].astype(np.float64)
        f = lambda t: gaussian_filter(t, 1.5, truncate=5 / 1.5, mode="constant")[5:-5, 5:-5]  # noqa: E731
        mx, my = f(x), f(y)
        vx, vy, cxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        values.append(s.mean())
    return float(np.mean(values))


def test_ssim_matches_reference_and_bounds():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 32, 32, generator=g)
    b = (a + 0.1 * torch.randn(2, 3, 32, 32, generator=g)).clamp(0, 1)
    ours = ssim(b, a)
    ua, ub = (torch.round(t * 255).numpy() for t in (a, b))
    for i in range(2):
        assert ours[i].item() == pytest.approx(_reference_ssim(ub[i], ua[i]), abs=1e-9)
    assert torch.allclose(ssim(a, a), torch.ones(2, dtype=torch.float64))
    assert (ours < 1).all()


def test_psnr_on_uint8_images():
    a = torch.zeros(1, 3, 8, 8)
    b = a.clone()
    b[0, 0, 0, 0] = 10 / 255
    mse = 100 / (3 * 64)
    assert psnr(b, a).item() == pytest.approx(10 * np.log10(255**2 / mse))
    assert psnr(a, a).item() == float("inf")
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a, a[:, :, :4])
