"""DAC's residual quantizer with factorised, l2-normalised codebooks (the Improved VQGAN tricks).

Each level projects the residual (``dim`` channels) to ``codebook_dim`` with a weight-normed 1x1
convolution, finds the code whose direction is nearest (inputs and codes l2-normalised for the
search only), and projects the *raw* code vector back to ``dim``; the next level quantizes what is
left. :class:`vistok.quant.VectorQuantizer` with ``l2_norm`` cannot express this: it looks up and
returns the normalised codes and measures its losses on them, and :class:`vistok.quant.ResidualVQ`
has no per-level projections and one estimator on the sum of the levels, so this module keeps
DAC's arithmetic (each level's straight-through value ``z_e + (e - z_e)`` is what the next level's
residual subtracts, and the search uses the official ``|x|^2 - 2 x.e + |e|^2`` in fp32), on which
the released codes depend.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from audiotok.nn.dac_blocks import wn_conv
from vistok.quant.base import Quantizer, QuantOut, Stats, check_last_dim, fp32_region
from vistok.quant.search import DEFAULT_MAX_ELEMENTS

DROPPED = -1  # index of a level that quantizer dropout (or a level count) left out


def _rows(z_e: torch.Tensor) -> torch.Tensor:
    """``(B, d, L)`` -> ``(B * L, d)`` rows, laid out as the official code lays them out (a view for
    one item, a copy for several), so the search's matrix products see the same operands."""
    return z_e.permute(0, 2, 1).reshape(-1, z_e.shape[1])


def _scores(rows: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """``-(|x|^2 - 2 x.e + |e|^2)`` of l2-normalised rows and codes (higher is nearer)."""
    x = F.normalize(rows)
    codes = F.normalize(codebook)
    dist = x.pow(2).sum(1, keepdim=True) - 2 * x @ codes.t() + codes.pow(2).sum(1, keepdim=True).t()
    return -dist


class FactorizedLevel(nn.Module):
    """One level: ``in_proj`` (``dim -> codebook_dim``), ``codebook`` (an ``nn.Embedding`` of
    ``codebook_size`` raw vectors) and ``out_proj`` (``codebook_dim -> dim``)."""

    def __init__(self, dim: int, codebook_size: int, codebook_dim: int,
                 max_search_elements: int = DEFAULT_MAX_ELEMENTS):
        super().__init__()
        self.codebook_size, self.codebook_dim = codebook_size, codebook_dim
        self.in_proj = wn_conv(dim, codebook_dim, 1)
        self.out_proj = wn_conv(codebook_dim, dim, 1)
        self.codebook = nn.Embedding(codebook_size, codebook_dim)
        self.max_search_elements = max_search_elements

    def search(self, z_e: torch.Tensor) -> torch.Tensor:
        """Projected latents ``(B, codebook_dim, L)`` -> nearest codes ``(B, L)``, in row chunks of at
        most ``max_search_elements`` scores."""
        rows = _rows(z_e)
        step = max(1, self.max_search_elements // self.codebook_size)
        codebook = self.codebook.weight
        out = torch.empty(rows.shape[0], dtype=torch.long, device=rows.device)
        for start in range(0, rows.shape[0], step):
            out[start: start + step] = _scores(rows[start: start + step], codebook).max(1)[1]
        return out.reshape(z_e.shape[0], z_e.shape[2])

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, L)`` -> raw code vectors ``(B, codebook_dim, L)``."""
        return F.embedding(indices, self.codebook.weight).transpose(1, 2)

    def forward(self, residual: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(B, dim, L)`` -> (its quantized value ``(B, dim, L)`` with a straight-through gradient,
        codes ``(B, L)``, per-item commitment and codebook losses ``(B,)``)."""
        z_e = self.in_proj(residual)
        with torch.no_grad():
            indices = self.search(z_e)
        code = self.lookup(indices)
        commitment = F.mse_loss(z_e, code.detach(), reduction="none").mean([1, 2])
        codebook = F.mse_loss(code, z_e.detach(), reduction="none").mean([1, 2])
        value = z_e + (code - z_e).detach()
        return self.out_proj(value), indices, commitment, codebook

    def topk(self, residual: torch.Tensor, k: int) -> torch.Tensor:
        """The ``k`` nearest codes of each frame of ``(B, dim, L)``, nearest first: ``(B, L, k)``."""
        z_e = self.in_proj(residual)
        rows = _rows(z_e)
        top = _scores(rows, self.codebook.weight).topk(k, dim=1).indices
        return top.reshape(z_e.shape[0], z_e.shape[2], k)


class DACQuantizer(Quantizer):
    """``num_quantizers`` :class:`FactorizedLevel` s in residual order (``levels.<q>``), channels
    last: ``forward(z (B, L, dim)) -> QuantOut(z_q (B, L, dim), indices (B, L, Q))``.

    In training, the first ``int(B * dropout)`` items of a batch are coded with a random number of
    levels in ``1..Q`` (the others with all) and every level runs on every item; skipped levels get
    index -1 and add nothing. ``loss``: ``commitment_weight`` x the commitment loss plus
    ``codebook_weight`` x the codebook loss, each summed over the levels of the batch mean of the
    per-item losses (zero where a level is skipped), as the official objective weighs them.
    """

    def __init__(self, num_quantizers: int, codebook_size: int, dim: int, codebook_dim: int = 8,
                 dropout: float = 0.0, commitment_weight: float = 0.25, codebook_weight: float = 1.0,
                 max_search_elements: int = DEFAULT_MAX_ELEMENTS):
        super().__init__()
        self.num_quantizers, self.codebook_size, self.dim, self.codebook_dim = (num_quantizers, codebook_size,
                                                                                dim, codebook_dim)
        self.dropout = float(dropout)
        self.commitment_weight, self.codebook_weight = commitment_weight, codebook_weight
        self.levels = nn.ModuleList(FactorizedLevel(dim, codebook_size, codebook_dim, max_search_elements)
                                    for _ in range(num_quantizers))

    def _levels_per_item(self, batch: int, num_levels: Optional[int], device: torch.device) -> torch.Tensor:
        """Levels each item uses: ``num_levels`` (or all) for every item, except in training with
        dropout, where the first ``int(batch * dropout)`` items draw theirs."""
        count = torch.full((batch,), self.num_quantizers if num_levels is None else num_levels, dtype=torch.long)
        if self.training and self.dropout > 0 and num_levels is None:
            drawn = torch.randint(1, self.num_quantizers + 1, (batch,))
            n = int(batch * self.dropout)
            count[:n] = drawn[:n]
        return count.to(device)

    def forward(self, z: torch.Tensor, num_levels: Optional[int] = None) -> QuantOut:
        """Quantize channels-last ``z`` ``(B, L, dim)`` with all levels or the first ``num_levels``
        (a fixed count also turns training dropout off)."""
        check_last_dim(z, self.dim, type(self).__name__)
        if z.dim() != 3:
            raise ValueError(f"{type(self).__name__} takes (B, L, {self.dim}), got shape {tuple(z.shape)}")
        if num_levels is not None and not 1 <= num_levels <= self.num_quantizers:
            raise ValueError(f"num_levels must be in 1..{self.num_quantizers}, got {num_levels}")
        with fp32_region(z.device):
            x = z.float().transpose(1, 2)
            per_item = self._levels_per_item(x.shape[0], num_levels, x.device)
            run = self.num_quantizers if self.training else int(per_item.max())
            total, residual = 0, x
            commitment, codebook = x.new_zeros(()), x.new_zeros(())
            codes = []
            for i in range(run):
                value, idx, commit_i, book_i = self.levels[i](residual)
                keep = i < per_item
                total = total + value * keep[:, None, None]
                residual = residual - value
                commitment = commitment + (commit_i * keep).mean()
                codebook = codebook + (book_i * keep).mean()
                codes.append(torch.where(keep[:, None], idx, torch.full_like(idx, DROPPED)))
            codes += [torch.full_like(codes[0], DROPPED)] * (self.num_quantizers - run)
            loss = self.commitment_weight * commitment + self.codebook_weight * codebook
        stats = Stats({"commitment": commitment.detach(), "codebook": codebook.detach(),
                       "active_levels": per_item.float().mean()})
        return QuantOut(total.transpose(1, 2).to(z.dtype), torch.stack(codes, dim=-1), loss, stats)

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Ids ``(B, L, k)`` of the first ``k`` levels -> the quantized latent ``(B, L, dim)`` (fp32):
        the sum of each level's projected code, in level order; -1 entries add nothing."""
        if indices.dim() != 3 or not 1 <= indices.shape[-1] <= self.num_quantizers:
            raise ValueError(f"indices must be (B, L, k) with 1 <= k <= {self.num_quantizers}, "
                             f"got shape {tuple(indices.shape)}")
        with fp32_region(indices.device):
            total = 0.0
            for i in range(indices.shape[-1]):
                idx = indices[..., i]
                level = self.levels[i]
                value = level.out_proj(level.lookup(idx.clamp_min(0)))
                dropped = idx == DROPPED
                if bool(dropped.any()):
                    value = value * (~dropped)[:, None, :]
                total = total + value
        return total.transpose(1, 2)

    def nearby_indices(self, z: torch.Tensor, indices: torch.Tensor, k: int) -> torch.Tensor:
        """Per level: the ``k`` codes nearest to that level's projected residual, own code first ->
        ``(B, L, Q, k)`` (-1 for dropped levels)."""
        if not 1 <= k <= self.codebook_size:
            raise ValueError(f"k={k} must be between 1 and the codebook size {self.codebook_size}")
        with fp32_region(z.device), torch.no_grad():
            residual = z.float().transpose(1, 2)
            out = []
            for i in range(indices.shape[-1]):
                idx = indices[..., i]
                level = self.levels[i]
                cand = level.topk(residual, k)
                out.append(torch.where((idx == DROPPED)[..., None], torch.full_like(cand, DROPPED), cand))
                z_e = level.in_proj(residual)
                value = level.out_proj(z_e + (level.lookup(idx.clamp_min(0)) - z_e))
                residual = residual - value * (idx != DROPPED)[:, None, :]
        return torch.stack(out, dim=-2)

    def extra_repr(self) -> str:
        return (f"num_quantizers={self.num_quantizers}, codebook_size={self.codebook_size}, dim={self.dim}, "
                f"codebook_dim={self.codebook_dim}, dropout={self.dropout}")
