"""Binary quantizers with implicit ``2^dim`` codebooks: LFQ (MAGVIT-v2) and BSQ.

Each channel becomes one bit. Bit order is explicit: with ``bit_order="lsb"`` channel 0 is the
least significant bit of the index (the MAGVIT-v2 paper's formula), with ``"msb"`` channel 0 is
the most significant (the official BSQ code and vector-quantize-pytorch). Checkpoints and token
streams depend on this choice, so it is part of the config.

Entropy losses use the fact that the soft assignment ``softmax(-tau * |z - c|^2)`` over a binary
product codebook factorises into independent per-bit Bernoullis with ``p(bit=1) =
sigmoid(4 * tau * scale * z_i)``. The per-sample entropy is therefore the exact sum of per-bit
entropies; the codebook (batch-average) entropy is exact over groups of ``group_size`` bits and
summed over groups (exact when one group holds every bit).
"""
from __future__ import annotations

import math
from typing import List, Optional

import torch
import torch.nn.functional as F

from vistok.quant.base import Quantizer, QuantOut, Stats, check_last_dim, fp32_region

BIT_ORDERS = ("lsb", "msb")


def _binary_entropy(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(1e-7, 1 - 1e-7)
    return -(p * p.log() + (1 - p) * (1 - p).log())


def _group_sizes(dim: int, group_size: int) -> List[int]:
    sizes = [group_size] * (dim // group_size)
    if dim % group_size:
        sizes.append(dim % group_size)
    return sizes


def grouped_codebook_entropy(p_one: torch.Tensor, group_size: int) -> torch.Tensor:
    """Sum over bit groups of the entropy of the batch-averaged sub-code distribution.

    ``p_one``: (N, dim) per-bit probabilities of bit 1. Each group's per-sample distribution over
    ``2^g`` sub-codes is the product of its bits' Bernoullis.
    """
    total = p_one.new_zeros(())
    start = 0
    for size in _group_sizes(p_one.shape[-1], group_size):
        dist = p_one.new_ones(p_one.shape[0], 1)
        for j in range(start, start + size):
            pj = p_one[:, j : j + 1]
            dist = torch.cat([dist * (1 - pj), dist * pj], dim=-1)
        avg = dist.mean(0)
        total = total - (avg * avg.clamp_min(1e-12).log()).sum()
        start += size
    return total


class _BinaryQuantizer(Quantizer):
    """Shared machinery of LFQ and BSQ (sign quantization, indices, entropy, perturbation)."""

    spherical: bool = False

    def __init__(
        self,
        dim: int,
        *,
        bit_order: str,
        commitment: float,
        entropy_weight: float,
        sample_weight: float,
        codebook_weight: float,
        inv_temperature: float,
        group_size: int,
    ):
        super().__init__()
        if not 1 <= dim <= 62:
            raise ValueError(f"binary quantizers need 1 <= dim <= 62 (int64 indices), got {dim}")
        if bit_order not in BIT_ORDERS:
            raise ValueError(f"bit_order must be one of {BIT_ORDERS}, got {bit_order!r}")
        if group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {group_size}")
        self.dim = dim
        self.codebook_size = 2**dim
        self.bit_order = bit_order
        self.commitment = commitment
        self.entropy_weight = entropy_weight
        self.sample_weight = sample_weight
        self.codebook_weight = codebook_weight
        self.inv_temperature = inv_temperature
        self.group_size = min(group_size, dim)
        self.scale = 1.0 / math.sqrt(dim) if self.spherical else 1.0
        exponents = torch.arange(dim) if bit_order == "lsb" else torch.arange(dim - 1, -1, -1)
        self.register_buffer("_basis", (2**exponents).long(), persistent=False)

    def _prepare(self, z: torch.Tensor) -> torch.Tensor:
        x = z.float()
        return F.normalize(x, dim=-1) if self.spherical else x

    def _commitment(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _entropy_term(self, sample_h: torch.Tensor, codebook_h: torch.Tensor) -> torch.Tensor:
        return self.entropy_weight * (self.sample_weight * sample_h - self.codebook_weight * codebook_h)

    def forward(self, z: torch.Tensor) -> QuantOut:
        check_last_dim(z, self.dim, type(self).__name__)
        with fp32_region(z.device):
            x = self._prepare(z)
            bits = x > 0
            codes = torch.where(bits, self.scale, -self.scale)
            z_q = x + (codes - x).detach()
            indices = (bits.long() * self._basis).sum(-1)
            commit = self._commitment(x, codes)
            loss = self.commitment * commit
            stats = {"commitment": commit.detach()}
            if self.training and self.entropy_weight > 0:
                flat = x.reshape(-1, self.dim)
                p_one = torch.sigmoid(4 * self.inv_temperature * self.scale * flat)
                sample_h = _binary_entropy(p_one).sum(-1).mean()
                codebook_h = grouped_codebook_entropy(p_one, self.group_size)
                loss = loss + self._entropy_term(sample_h, codebook_h)
                stats.update(sample_entropy=sample_h.detach(), codebook_entropy=codebook_h.detach())
        return QuantOut(z_q.to(z.dtype), indices, loss, Stats(stats))

    def indices_to_bits(self, indices: torch.Tensor) -> torch.Tensor:
        return torch.remainder(torch.div(indices.unsqueeze(-1), self._basis, rounding_mode="floor"), 2)

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        with fp32_region(indices.device):
            bits = self.indices_to_bits(indices).float()
            return (2 * bits - 1) * self.scale

    def nearby_indices(self, z: torch.Tensor, indices: torch.Tensor, k: int) -> torch.Tensor:
        """Own code, then the codes that flip one of the ``k-1`` least confident bits (smallest
        |z_i|), nearest first: the nearest single-flip neighbours in Hamming space."""
        if not 1 <= k <= self.dim + 1:
            raise ValueError(f"perturbation strength k={k} must be in 1..{self.dim + 1} for dim={self.dim}")
        with torch.no_grad():
            x = self._prepare(z)
            order = x.abs().argsort(dim=-1)[..., : k - 1]
            flips = self._basis[order]
            neighbours = torch.bitwise_xor(indices.unsqueeze(-1), flips)
            return torch.cat([indices.unsqueeze(-1), neighbours], dim=-1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, codebook_size=2**{self.dim}, bit_order={self.bit_order!r}"


class LFQ(_BinaryQuantizer):
    """Lookup-free quantization (Yu et al., MAGVIT-v2): ``sign(z)`` per channel, codes in
    {-1, +1}^dim. Loss: ``commitment * mse(z, code) + entropy_weight * (H_sample -
    codebook_weight * H_codebook)``. ``group_size=None`` computes the codebook entropy exactly
    for ``dim <= 12`` and over groups of 9 bits beyond. Default bit order: LSB-first (paper)."""

    def __init__(
        self,
        dim: int,
        *,
        bit_order: str = "lsb",
        commitment: float = 0.25,
        entropy_weight: float = 0.1,
        codebook_weight: float = 1.0,
        inv_temperature: float = 100.0,
        group_size: Optional[int] = None,
    ):
        super().__init__(
            dim, bit_order=bit_order, commitment=commitment, entropy_weight=entropy_weight,
            sample_weight=1.0, codebook_weight=codebook_weight, inv_temperature=inv_temperature,
            group_size=group_size or (dim if dim <= 12 else 9),
        )

    def _commitment(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(x, codes)


class BSQ(_BinaryQuantizer):
    """Binary spherical quantization (Zhao et al., 2024): the input is L2-normalised and
    quantized to ``sign(u) / sqrt(dim)`` on the unit sphere. Loss: ``commitment * mean |u -
    code|^2 + entropy_weight * (sample_weight * H_sample - codebook_weight * H_codebook) /
    inv_temperature`` with grouped codebook entropy (``group_size`` bits per group, 9 in the
    paper). Default bit order: MSB-first (the official code)."""

    spherical = True

    def __init__(
        self,
        dim: int,
        *,
        bit_order: str = "msb",
        commitment: float = 0.25,
        entropy_weight: float = 0.1,
        sample_weight: float = 1.0,
        codebook_weight: float = 1.0,
        inv_temperature: float = 1.0,
        group_size: int = 9,
    ):
        super().__init__(
            dim, bit_order=bit_order, commitment=commitment, entropy_weight=entropy_weight,
            sample_weight=sample_weight, codebook_weight=codebook_weight,
            inv_temperature=inv_temperature, group_size=group_size,
        )

    def _commitment(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        return (x - codes).pow(2).sum(-1).mean()

    def _entropy_term(self, sample_h: torch.Tensor, codebook_h: torch.Tensor) -> torch.Tensor:
        return super()._entropy_term(sample_h, codebook_h) / self.inv_temperature
