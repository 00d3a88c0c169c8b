"""Mimi's split residual VQ: a semantic residual VQ (``num_semantic`` levels, in the release one,
distilled from WavLM during training) and an acoustic one (the other levels), each reading the same
latent through its own 1x1 projection and writing back through another; the two outputs add up.

Each side is a :class:`vistok.quant.ResidualVQ` of EMA codebooks. The official layout stores a
codebook as EMA sums: the code vectors are ``embedding_sum / cluster_usage.clamp(min=1e-5)``, which
the converter computes once into each level's ``embed`` (``embed_avg`` / ``cluster_size`` keep the
sums). The search is the official one (:func:`nearest_code_as_official`); ids depend on its fp32
arithmetic at near-ties.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from vistok.quant import ResidualVQ
from vistok.quant.base import fp32_region
from vistok.quant.search import DEFAULT_MAX_ELEMENTS

#: The official codebook's epsilon: code vectors are sums over ``cluster_usage.clamp(min=EPS)``.
EPS = 1e-5


def nearest_code_as_official(x: torch.Tensor, codebook: torch.Tensor,
                             max_elements: int = DEFAULT_MAX_ELEMENTS) -> torch.Tensor:
    """Nearest code per row of ``x`` ``(N, d)`` by ``torch.cdist`` (p=2) and argmin, as moshi's
    ``EuclideanCodebook`` searches, in chunks of at most ``max_elements`` distances. ``cdist`` picks
    its arithmetic from the sizes (a matrix product when either side has more than 25 rows); the
    mode is fixed from the whole problem so that chunking does not change it."""
    mode = "use_mm_for_euclid_dist" if x.shape[0] > 25 or codebook.shape[0] > 25 else "donot_use_mm_for_euclid_dist"
    rows = max(26, max_elements // max(1, codebook.shape[0]))
    out = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    for start in range(0, x.shape[0], rows):
        part = x[start: start + rows]
        out[start: start + rows] = torch.cdist(part[None], codebook[None], p=2, compute_mode=mode)[0].argmin(-1)
    return out


class SplitRVQ(nn.Module):
    """``(B, dim, L)`` latent -> ids ``(B, Q, L)`` and back; levels ``0..num_semantic - 1`` are the
    semantic side's, the rest the acoustic side's."""

    def __init__(self, dim: int, codebook_dim: int, codebook_size: int, num_quantizers: int, num_semantic: int):
        super().__init__()
        self.num_quantizers, self.num_semantic, self.codebook_size = num_quantizers, num_semantic, codebook_size
        self.semantic_in = nn.Conv1d(dim, codebook_dim, 1, bias=False)
        self.semantic = ResidualVQ(num_semantic, codebook_size, codebook_dim, ema_decay=0.99)
        self.semantic_out = nn.Conv1d(codebook_dim, dim, 1, bias=False)
        self.acoustic_in = nn.Conv1d(dim, codebook_dim, 1, bias=False)
        self.acoustic = ResidualVQ(num_quantizers - num_semantic, codebook_size, codebook_dim, ema_decay=0.99)
        self.acoustic_out = nn.Conv1d(codebook_dim, dim, 1, bias=False)

    def level(self, i: int):
        """The :class:`~vistok.quant.VectorQuantizer` of level ``i`` (0-based over both sides)."""
        return self.semantic.level(i) if i < self.num_semantic else self.acoustic.level(i - self.num_semantic)

    @staticmethod
    def _codes(rvq: ResidualVQ, z: torch.Tensor, levels: int) -> torch.Tensor:
        """``(B, d, L)`` projected latent -> ids ``(B, levels, L)`` of the first ``levels`` of ``rvq``."""
        with fp32_region(z.device):
            residual = z.transpose(1, 2).reshape(-1, z.shape[1]).float()
            codes = []
            for i in range(levels):
                codebook = rvq.level(i).codebook()
                idx = nearest_code_as_official(residual, codebook)
                residual = residual - F.embedding(idx, codebook)
                codes.append(idx.view(z.shape[0], z.shape[2]))
        return torch.stack(codes, dim=1)

    def encode(self, z: torch.Tensor, levels: Optional[int] = None) -> torch.Tensor:
        """Latent ``(B, dim, L)`` -> ids ``(B, levels, L)`` (default: all levels)."""
        levels = self.num_quantizers if levels is None else levels
        ids = self._codes(self.semantic, self.semantic_in(z), min(levels, self.num_semantic))
        if levels > self.num_semantic:
            ids = torch.cat([ids, self._codes(self.acoustic, self.acoustic_in(z), levels - self.num_semantic)], 1)
        return ids

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """ids ``(B, k, L)``, the first ``k`` levels (no padding) -> the latent ``(B, dim, L)``."""
        out = self.semantic_out(self.semantic.decode_indices(ids[:, : self.num_semantic].transpose(1, 2)).transpose(1, 2))
        if ids.shape[1] > self.num_semantic:
            rest = self.acoustic.decode_indices(ids[:, self.num_semantic:].transpose(1, 2)).transpose(1, 2)
            out = out + self.acoustic_out(rest)
        return out
