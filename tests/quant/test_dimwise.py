import numpy as np
import pytest
import torch
from scipy import stats as st

from vistok.quant import DimwiseQuantizer, gaussian_bin_centers


@pytest.mark.parametrize("bits,std_range", [(6, 3.0), (3, 2.5)])
def test_centers_match_truncated_normal_means(bits, std_range):
    levels = 2**bits
    edges = np.clip(st.norm.ppf(np.linspace(0, 1, levels + 1)), -std_range, std_range)
    expected = [st.truncnorm.mean(a, b) for a, b in zip(edges[:-1], edges[1:])]
    np.testing.assert_allclose(gaussian_bin_centers(levels, std_range).numpy(), expected, rtol=1e-9, atol=1e-12)
    q = DimwiseQuantizer(bits=bits, std_range=std_range)
    np.testing.assert_allclose(q.centers.numpy(), expected, rtol=1e-6, atol=1e-7)


def test_small_error_on_gaussian_data_and_nearest_assignment():
    q = DimwiseQuantizer(bits=6, value_range=5.0, std_range=3.0)
    z = torch.randn(20000, 16) * (5.0 / 3.0)  # unit variance in normalised units
    out = q(z)
    assert out.indices.shape == z.shape and out.indices.max() < 64
    rel = (out.z_q - z).pow(2).mean() / z.pow(2).mean()
    assert rel < 5e-3  # ~-24 dB; equal-probability bins trade tail accuracy for uniform use
    usage = torch.bincount(out.indices.flatten(), minlength=64).float() / out.indices.numel()
    assert (usage - 1 / 64).abs().max() < 0.003  # every bin is equally likely under N(0, 1)
    u = q.normalize(z[:500])
    brute = (u.unsqueeze(-1) - q.centers).abs().argmin(-1)
    assert torch.equal(out.indices[:500], brute)
    assert torch.allclose(q.decode_indices(out.indices), out.z_q)


def test_scale_maps_latent_units():
    scaled = DimwiseQuantizer(bits=4, value_range=5.0, std_range=3.0, scale=0.2325)
    plain = DimwiseQuantizer(bits=4, value_range=5.0, std_range=3.0)
    z = torch.randn(1000, 4) * 7
    a, b = scaled(z), plain(z * 0.2325)
    assert torch.equal(a.indices, b.indices)
    assert torch.allclose(a.z_q * 0.2325, b.z_q, atol=1e-5)
