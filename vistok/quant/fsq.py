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
    """

    def __init__(self, levels: Sequence[int], eps: float = 1e-3):
        super().__init__()
        levels = [int(level) for level in levels]
        if not levels or min(levels) < 2:
            raise ValueError(f"FSQ levels must be a non-empty list of ints >= 2, got {levels}")
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

    def forward(self, z: torch.Tensor) -> QuantOut:
        check_last_dim(z, self.dim, type(self).__name__)
        with fp32_region(z.device):
            bounded = self.bound(z.float())
            rounded = bounded + (bounded.round() - bounded).detach()
            z_q = rounded / self.half_width
            indices = self.codes_to_indices(z_q.detach())
        return QuantOut(z_q.to(z.dtype), indices, zero_loss(z), Stats())

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        shifted = (codes.float() * self.half_width + self.half_width).round().long()
        return (shifted * self._basis).sum(-1)

    def indices_to_levels(self, indices: torch.Tensor) -> torch.Tensor:
        """Per-channel level numbers ``j_i`` in ``0..L_i-1`` -> ``indices.shape + (dim,)``."""
        return torch.remainder(torch.div(indices.unsqueeze(-1), self._basis, rounding_mode="floor"),
                               self._levels.long())

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        with fp32_region(indices.device):
            return (self.indices_to_levels(indices).float() - self.half_width) / self.half_width

    def nearby_indices(self, z: torch.Tensor, indices: torch.Tensor, k: int) -> torch.Tensor:
        """Nearest grid codes to the bounded latent among the codes at most one level step away
        in every channel (the 3^dim neighbourhood; single-channel steps only when dim > 8)."""
        with fp32_region(z.device), torch.no_grad():
            point = self.bound(z.float()) / self.half_width  # continuous position in code units
            own = self.indices_to_levels(indices)
            steps = self._neighbour_steps(z.device)  # (S, dim), first row all zeros
            if k > steps.shape[0]:
                raise ValueError(f"FSQ perturbation strength k={k} exceeds the {steps.shape[0]} "
                                 "codes within one level step; use a smaller delta")
            cand_levels = own.unsqueeze(-2) + steps  # (..., S, dim)
            valid = ((cand_levels >= 0) & (cand_levels < self._levels.long())).all(-1)
            cand_codes = (cand_levels.float() - self.half_width) / self.half_width
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
        return f"levels={self.levels_list}, codebook_size={self.codebook_size}"
