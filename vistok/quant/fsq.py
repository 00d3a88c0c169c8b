"""Finite scalar quantization (Mentzer et al., 2023)."""
from __future__ import annotations

import itertools
from typing import Sequence

import torch

from vistok.quant.base import Quantizer, QuantOut, Stats, check_last_dim, fp32_region, zero_loss


class FSQ(Quantizer):
    """Each channel is bounded and rounded to one of ``levels[i]`` values; the implicit codebook
    is the product grid of ``prod(levels)`` codes, no parameters, no loss.

    Codes lie in [-1, 1]: channel i takes values ``(j - L_i // 2) / (L_i // 2)`` for
    ``j = 0..L_i-1`` (for even L the grid is shifted by half a step, e.g. L=8 gives
    -1, -0.75, ..., 0.75). The index is mixed-radix with the first channel least significant:
    ``index = sum_i j_i * prod_{m<i} L_m`` (so index 0 is the all-minimum code). This matches the
    FSQ paper and the FlexTok release, whose checkpoints depend on it.

    That grid cannot use a level of 2 (it collapses onto one value), so ``symmetric=True``
    offers the symmetric grid ``-1 + 2 j / (L_i - 1)`` (e.g. {-1, 1} for L=2) instead; the
    index formula is the same.
    """

    def __init__(self, levels: Sequence[int], eps: float = 1e-3, symmetric: bool = False):
        super().__init__()
        levels = [int(level) for level in levels]
        if not levels or min(levels) < 2:
            raise ValueError(f"FSQ levels must be a non-empty list of ints >= 2, got {levels}")
        if 2 in levels and not symmetric:
            raise ValueError(f"FSQ levels {levels}: a level of 2 collapses on the standard grid; "
                             "use symmetric=True (or LFQ/BSQ for binary codes)")
        self.symmetric = symmetric
        self.levels_list = levels
        self.dim = len(levels)
        self.codebook_size = 1
        for level in levels:
            self.codebook_size *= level
        self.eps = eps
        basis = [1]
        for level in levels[:-1]:
            basis.append(basis[-1] * level)
        self.register_buffer("_levels", torch.tensor(levels, dtype=torch.float32), persistent=False)
        self.register_buffer("_basis", torch.tensor(basis, dtype=torch.long), persistent=False)

    @property
    def half_width(self) -> torch.Tensor:
        return torch.div(self._levels, 2, rounding_mode="floor")

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """Squash each channel into a range that rounds to exactly ``L_i`` integers."""
        half_l = (self._levels - 1) * (1 + self.eps) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset

    def continuous(self, z: torch.Tensor) -> torch.Tensor:
        """The bounded latent in code units, before rounding."""
        if self.symmetric:
            return torch.tanh(z)
        return self.bound(z) / self.half_width

    def levels_to_codes(self, j: torch.Tensor) -> torch.Tensor:
        if self.symmetric:
            return j.float() * (2 / (self._levels - 1)) - 1
        return (j.float() - self.half_width) / self.half_width

    def codes_to_levels(self, codes: torch.Tensor) -> torch.Tensor:
        if self.symmetric:
            return ((codes.float() + 1) * (self._levels - 1) / 2).round().long()
        return (codes.float() * self.half_width + self.half_width).round().long()

    def forward(self, z: torch.Tensor) -> QuantOut:
        check_last_dim(z, self.dim, type(self).__name__)
        with fp32_region(z.device):
            if self.symmetric:
                bounded = torch.tanh(z.float())
                j = torch.floor((self._levels - 1) * (bounded + 1) / 2 + 0.5)
                j = torch.minimum(j, self._levels - 1)
                z_q = bounded + (self.levels_to_codes(j) - bounded).detach()
            else:
                bounded = self.bound(z.float())
                rounded = bounded + (bounded.round() - bounded).detach()
                z_q = rounded / self.half_width
            indices = self.codes_to_indices(z_q.detach())
        return QuantOut(z_q.to(z.dtype), indices, zero_loss(z), Stats())

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        return (self.codes_to_levels(codes) * self._basis).sum(-1)

    def indices_to_levels(self, indices: torch.Tensor) -> torch.Tensor:
        """Per-channel level numbers ``j_i`` in ``0..L_i-1`` -> ``indices.shape + (dim,)``."""
        return torch.remainder(torch.div(indices.unsqueeze(-1), self._basis, rounding_mode="floor"),
                               self._levels.long())

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        with fp32_region(indices.device):
            return self.levels_to_codes(self.indices_to_levels(indices))

    def nearby_indices(self, z: torch.Tensor, indices: torch.Tensor, k: int) -> torch.Tensor:
        """Nearest grid codes to the bounded latent among the codes at most one level step away
        in every channel (the 3^dim neighbourhood; single-channel steps only when dim > 8)."""
        with fp32_region(z.device), torch.no_grad():
            point = self.continuous(z.float())
            own = self.indices_to_levels(indices)
            steps = self._neighbour_steps(z.device)  # (S, dim), first row all zeros
            if k > steps.shape[0]:
                raise ValueError(f"FSQ perturbation strength k={k} exceeds the {steps.shape[0]} "
                                 "codes within one level step; use a smaller delta")
            cand_levels = own.unsqueeze(-2) + steps  # (..., S, dim)
            valid = ((cand_levels >= 0) & (cand_levels < self._levels.long())).all(-1)
            cand_codes = self.levels_to_codes(cand_levels)
            dist = (cand_codes - point.unsqueeze(-2)).pow(2).sum(-1)
            dist = dist.masked_fill(~valid, float("inf"))
            dist[..., 0] = -1.0  # the own code always ranks first
            order = dist.topk(k, dim=-1, largest=False).indices
            chosen = torch.gather(cand_levels, -2, order.unsqueeze(-1).expand(*order.shape, self.dim))
            chosen_valid = torch.gather(valid, -1, order)
            idx = (chosen * self._basis).sum(-1)
            # Too few valid neighbours at a grid corner: fall back to the own code.
            return torch.where(chosen_valid, idx, indices.unsqueeze(-1))

    def _neighbour_steps(self, device: torch.device) -> torch.Tensor:
        if self.dim <= 8:
            steps = list(itertools.product((0, -1, 1), repeat=self.dim))
        else:
            steps = [tuple(0 for _ in range(self.dim))]
            for i in range(self.dim):
                for s in (-1, 1):
                    steps.append(tuple(s if j == i else 0 for j in range(self.dim)))
        return torch.tensor(steps, dtype=torch.long, device=device)

    def extra_repr(self) -> str:
        return f"levels={self.levels_list}, codebook_size={self.codebook_size}, symmetric={self.symmetric}"
