"""SNAC's multi-scale residual quantizer: DAC's factorised, l2-normalised levels
(:class:`~audiotok.models.dac.quantizer.FactorizedLevel`, the same search and straight-through
arithmetic) where level ``q`` works at its own temporal stride ``s_q``.

Each level average-pools the residual over windows of ``s_q`` latent steps, quantizes the pooled
sequence with its level, and repeats each quantized step ``s_q`` times back to the latent rate;
the next level quantizes what is left. Ids are laid out by coarsest step (see
:func:`levels_to_slots`): for one position of the coarsest level, level ``q`` has
``r_q = s_0 / s_q`` tokens, and the ``S = sum r_q`` ids of a position are the levels' tokens in
level order (level 0's token, then level 1's ``r_1`` tokens in time order, ...). The first ``k``
levels are then the first ``S_k = r_0 + ... + r_{k-1}`` rows.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from audiotok.models.dac import DROPPED, FactorizedLevel
from vistok.quant.base import Quantizer, QuantOut, Stats, check_last_dim, fp32_region
from vistok.quant.search import DEFAULT_MAX_ELEMENTS


def slot_offsets(repeats: Sequence[int]) -> List[int]:
    """Row where each level's ids start, and the total: ``[0, r_0, r_0 + r_1, ..., S]``."""
    out = [0]
    for r in repeats:
        out.append(out[-1] + int(r))
    return out


def levels_to_slots(codes: Sequence[torch.Tensor], repeats: Sequence[int]) -> torch.Tensor:
    """Per-level ids ``[(B, F * r_q)]`` (the official list) -> ``(B, F, S_k)`` channels last."""
    parts = [c.reshape(c.shape[0], -1, int(r)) for c, r in zip(codes, repeats)]
    return torch.cat(parts, dim=-1)


def slots_to_levels(ids: torch.Tensor, repeats: Sequence[int]) -> List[torch.Tensor]:
    """``(B, F, S_k)`` -> per-level ids ``[(B, F * r_q)]`` for the ``k`` levels whose rows it holds."""
    offsets = slot_offsets(repeats)
    if ids.shape[-1] not in offsets[1:]:
        raise ValueError(f"ids hold {ids.shape[-1]} rows per position; the first k levels hold one of "
                         f"{offsets[1:]} (level repeats {list(repeats)})")
    levels = offsets.index(ids.shape[-1])
    return [ids[..., offsets[q]: offsets[q + 1]].reshape(ids.shape[0], -1) for q in range(levels)]


class MultiScaleQuantizer(Quantizer):
    """``len(strides)`` :class:`FactorizedLevel` s (``levels.<q>``), level ``q`` at stride
    ``strides[q]``; channels last: ``forward(z (B, L, dim)) -> QuantOut(z_q (B, L, dim), indices
    (B, L / s_0, S))`` with ``L`` a multiple of ``s_0 = strides[0]``.

    Training: the first ``int(B * dropout)`` items are coded with a random number of levels in
    ``1..Q`` (DAC's quantizer dropout; skipped levels get index -1 and add nothing); ``loss`` is
    ``commitment_weight`` x commitment + ``codebook_weight`` x codebook loss, each summed over the
    levels of the batch mean of the per-item losses, measured on the pooled sequences.
    """

    def __init__(self, strides: Sequence[int], codebook_size: int, dim: int, codebook_dim: int = 8,
                 dropout: float = 0.0, commitment_weight: float = 0.25, codebook_weight: float = 1.0,
                 max_search_elements: int = DEFAULT_MAX_ELEMENTS):
        super().__init__()
        self.strides = [int(s) for s in strides]
        self.repeats = [self.strides[0] // s for s in self.strides]
        self.offsets = slot_offsets(self.repeats)
        self.num_quantizers, self.codebook_size, self.dim, self.codebook_dim = (len(self.strides), codebook_size,
                                                                                dim, codebook_dim)
        self.dropout = float(dropout)
        self.commitment_weight, self.codebook_weight = commitment_weight, codebook_weight
        self.levels = nn.ModuleList(FactorizedLevel(dim, codebook_size, codebook_dim, max_search_elements)
                                    for _ in self.strides)

    @property
    def num_slots(self) -> int:
        """Ids per coarsest position with all levels."""
        return self.offsets[-1]

    def slots(self, levels: int) -> int:
        """Ids per coarsest position with the first ``levels`` levels."""
        return self.offsets[levels]

    def _levels_per_item(self, batch: int, num_levels: Optional[int], device: torch.device) -> torch.Tensor:
        count = torch.full((batch,), self.num_quantizers if num_levels is None else num_levels, dtype=torch.long)
        if self.training and self.dropout > 0 and num_levels is None:
            drawn = torch.randint(1, self.num_quantizers + 1, (batch,))
            n = int(batch * self.dropout)
            count[:n] = drawn[:n]
        return count.to(device)

    def _check(self, z: torch.Tensor) -> None:
        check_last_dim(z, self.dim, type(self).__name__)
        if z.dim() != 3:
            raise ValueError(f"{type(self).__name__} takes (B, L, {self.dim}), got shape {tuple(z.shape)}")
        if z.shape[1] % self.strides[0]:
            raise ValueError(f"{type(self).__name__}: {z.shape[1]} latent steps are not a multiple of the coarsest "
                             f"stride {self.strides[0]}")

    def _pool(self, x: torch.Tensor, q: int) -> torch.Tensor:
        s = self.strides[q]
        return F.avg_pool1d(x, s, s) if s > 1 else x

    def _unpool(self, x: torch.Tensor, q: int) -> torch.Tensor:
        s = self.strides[q]
        return x.repeat_interleave(s, dim=-1) if s > 1 else x

    def forward(self, z: torch.Tensor, num_levels: Optional[int] = None) -> QuantOut:
        """Quantize channels-last ``z`` ``(B, L, dim)`` with all levels or the first ``num_levels``
        (a fixed count also turns training dropout off); rows of skipped levels are -1."""
        self._check(z)
        if num_levels is not None and not 1 <= num_levels <= self.num_quantizers:
            raise ValueError(f"num_levels must be in 1..{self.num_quantizers}, got {num_levels}")
        with fp32_region(z.device):
            x = z.float().transpose(1, 2)
            batch, frames = x.shape[0], x.shape[-1] // self.strides[0]
            per_item = self._levels_per_item(batch, num_levels, x.device)
            run = self.num_quantizers if self.training else int(per_item.max())
            total, residual = 0, x
            commitment, codebook = x.new_zeros(()), x.new_zeros(())
            codes = []
            for q in range(self.num_quantizers):
                if q >= run:
                    codes.append(torch.full((batch, frames, self.repeats[q]), DROPPED, dtype=torch.long,
                                            device=x.device))
                    continue
                value, idx, commit_q, book_q = self.levels[q](self._pool(residual, q))
                value = self._unpool(value, q)
                keep = q < per_item
                total = total + value * keep[:, None, None]
                residual = residual - value
                commitment = commitment + (commit_q * keep).mean()
                codebook = codebook + (book_q * keep).mean()
                idx = torch.where(keep[:, None], idx, torch.full_like(idx, DROPPED))
                codes.append(idx.reshape(batch, frames, self.repeats[q]))
            loss = self.commitment_weight * commitment + self.codebook_weight * codebook
        stats = Stats({"commitment": commitment.detach(), "codebook": codebook.detach(),
                       "active_levels": per_item.float().mean()})
        return QuantOut(total.transpose(1, 2).to(z.dtype), torch.cat(codes, dim=-1), loss, stats)

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Ids ``(B, F, S_k)`` of the first ``k`` levels -> the quantized latent ``(B, F * s_0, dim)``
        (fp32): each level's projected code repeated to the latent rate, summed in level order; -1
        entries add nothing."""
        if indices.dim() != 3:
            raise ValueError(f"indices must be (B, F, S_k), got shape {tuple(indices.shape)}")
        with fp32_region(indices.device):
            total = 0.0
            for q, idx in enumerate(slots_to_levels(indices, self.repeats)):
                level = self.levels[q]
                value = level.out_proj(level.lookup(idx.clamp_min(0)))
                dropped = idx == DROPPED
                if bool(dropped.any()):
                    value = value * (~dropped)[:, None, :]
                total = total + self._unpool(value, q)
        return total.transpose(1, 2)

    def nearby_indices(self, z: torch.Tensor, indices: torch.Tensor, k: int) -> torch.Tensor:
        """Per id: the ``k`` codes nearest to its level's pooled, projected residual, own code first
        -> ``(B, F, S, k)`` (-1 for dropped levels)."""
        if not 1 <= k <= self.codebook_size:
            raise ValueError(f"k={k} must be between 1 and the codebook size {self.codebook_size}")
        with fp32_region(z.device), torch.no_grad():
            residual = z.float().transpose(1, 2)
            batch = residual.shape[0]
            out = []
            for q, idx in enumerate(slots_to_levels(indices, self.repeats)):
                level = self.levels[q]
                pooled = self._pool(residual, q)
                cand = level.topk(pooled, k)
                cand = torch.where((idx == DROPPED)[..., None], torch.full_like(cand, DROPPED), cand)
                out.append(cand.reshape(batch, -1, self.repeats[q], k))
                z_e = level.in_proj(pooled)
                value = level.out_proj(z_e + (level.lookup(idx.clamp_min(0)) - z_e))
                residual = residual - self._unpool(value * (idx != DROPPED)[:, None, :], q)
        return torch.cat(out, dim=-2)

    def extra_repr(self) -> str:
        return (f"strides={self.strides}, codebook_size={self.codebook_size}, dim={self.dim}, "
                f"codebook_dim={self.codebook_dim}, dropout={self.dropout}")
