"""Dimension-wise post-training quantization of a continuous latent (TokenBridge, Wang et al. 2025)."""
from __future__ import annotations

import math

import torch

from vistok.quant.base import Quantizer, QuantOut, Stats, fp32_region, zero_loss


def gaussian_bin_centers(levels: int, std_range: float) -> torch.Tensor:
    """Reconstruction values of ``levels`` equal-probability bins of N(0, 1), in float64.

    Bin edges are the normal quantiles ``Phi^-1(j / levels)`` clipped to ``[-std_range,
    std_range]``; each value is the mean of the standard normal truncated to its bin,
    ``(phi(a) - phi(b)) / (Phi(b) - Phi(a))``.
    """
    q = torch.linspace(0.0, 1.0, levels + 1, dtype=torch.float64)
    edges = torch.special.ndtri(q).clamp(-std_range, std_range)
    a, b = edges[:-1], edges[1:]
    pdf = lambda t: torch.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)  # noqa: E731
    return (pdf(a) - pdf(b)) / (torch.special.ndtr(b) - torch.special.ndtr(a))


class DimwiseQuantizer(Quantizer):
    """Quantizes every channel of a frozen continuous latent independently into ``2**bits``
    Gaussian-quantile bins; no parameters and no training.

    A value ``v`` is scaled as ``u = v * scale / value_range * std_range`` (so
    ``[-value_range, value_range]`` in latent units maps onto ``[-std_range, std_range]``
    standard deviations), clipped, and assigned to the nearest bin centre (see
    :func:`gaussian_bin_centers`); dequantization maps the centre back. ``scale`` is the latent
    scaling of the VAE (0.2325 for MAR's KL-16). Indices keep the input shape: one index in
    ``0..2**bits-1`` per channel, so ``codebook_size`` is the number of bins per channel.
    """

    def __init__(self, bits: int = 6, value_range: float = 5.0, std_range: float = 3.0, scale: float = 1.0):
        super().__init__()
        if not 1 <= bits <= 16:
            raise ValueError(f"bits must be in 1..16, got {bits}")
        if value_range <= 0 or std_range <= 0 or scale <= 0:
            raise ValueError("value_range, std_range and scale must be positive")
        self.bits = bits
        self.codebook_size = 2**bits
        self.value_range = value_range
        self.std_range = std_range
        self.scale = scale
        centers = gaussian_bin_centers(self.codebook_size, std_range)
        self.register_buffer("centers", centers.float(), persistent=False)
        self.register_buffer("_midpoints", ((centers[1:] + centers[:-1]) / 2).float(), persistent=False)

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        """Latent units -> clipped standard-normal units."""
        u = z.float() * (self.scale * self.std_range / self.value_range)
        return u.clamp(-self.std_range, self.std_range)

    def denormalize(self, u: torch.Tensor) -> torch.Tensor:
        return u * (self.value_range / (self.std_range * self.scale))

    def forward(self, z: torch.Tensor) -> QuantOut:
        with fp32_region(z.device):
            u = self.normalize(z)
            indices = torch.bucketize(u.contiguous(), self._midpoints)
            values = self.denormalize(self.centers[indices])
            x = z.float()
            z_q = x + (values - x).detach()
        return QuantOut(z_q.to(z.dtype), indices, zero_loss(z), Stats())

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        with fp32_region(indices.device):
            return self.denormalize(self.centers[indices])

    def nearby_indices(self, z: torch.Tensor, indices: torch.Tensor, k: int) -> torch.Tensor:
        """Per channel: the ``k`` bins whose centres are nearest the value, own bin first."""
        if not 1 <= k <= self.codebook_size:
            raise ValueError(f"k={k} must be in 1..{self.codebook_size}")
        with torch.no_grad():
            u = self.normalize(z)
            offsets = torch.arange(-(k - 1), k, device=z.device)
            cand = indices.unsqueeze(-1) + offsets
            valid = (cand >= 0) & (cand < self.codebook_size)
            dist = (self.centers[cand.clamp(0, self.codebook_size - 1)] - u.unsqueeze(-1)).abs()
            dist = dist.masked_fill(~valid, float("inf"))
            dist[..., k - 1] = -1.0  # offset 0: the own bin ranks first
            order = dist.topk(k, dim=-1, largest=False).indices
            return torch.gather(cand, -1, order)

    def extra_repr(self) -> str:
        return (f"bits={self.bits}, value_range={self.value_range}, std_range={self.std_range}, "
                f"scale={self.scale}")
