"""Patchify/unpatchify, positional embeddings and the timestep embedding of FlexTok.

Layouts follow the released weights: a patch vector is ordered (row in patch, column in patch,
channel) with the channel fastest; positional tables live in a parameter called ``posembs`` with
the shapes the official checkpoints store (fixed sin-cos tables are stored too, as a parameter
that is not trained).
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

POSEMB_KINDS = ("sincos", "learnable_sum", "learnable_prod")


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, H/p * W/p, p*p*C)``, patches in row-major order."""
    b, c, h, w = x.shape
    if h % p or w % p:
        raise ValueError(f"latent size {h}x{w} is not a multiple of the patch size {p}")
    x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(b, (h // p) * (w // p), p * p * c)


def unpatchify(x: torch.Tensor, p: int, grid: Tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``(B, gh*gw, p*p*C)`` -> ``(B, C, gh*p, gw*p)``."""
    b, _, d = x.shape
    gh, gw = grid
    c = d // (p * p)
    x = x.reshape(b, gh, gw, p, p, c).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(b, c, gh * p, gw * p)


def sincos_table(h: int, w: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """The fixed 2D sin-cos table of the release, ``(1, dim, h, w)``.

    Quarters of the channels hold sin/cos of the first grid coordinate, then sin/cos of the
    second. The grid is enumerated with the *width* axis outermost and the result read back as
    (h, w), as the release does; for square grids (all released configs) that is simply
    "first quarter pair = row, second = column".
    """
    if dim % 4:
        raise ValueError(f"a 2D sin-cos embedding needs a dimension divisible by 4, got {dim}")
    quarter = dim // 4
    omega = 1.0 / temperature ** (torch.arange(quarter, dtype=torch.float32) / quarter)
    outer, inner = torch.meshgrid(torch.arange(w, dtype=torch.float32), torch.arange(h, dtype=torch.float32),
                                  indexing="ij")
    a = outer.reshape(-1, 1) * omega
    b = inner.reshape(-1, 1) * omega
    table = torch.cat([a.sin(), a.cos(), b.sin(), b.cos()], dim=1)  # (w*h, dim)
    return table.reshape(h, w, dim).permute(2, 0, 1).unsqueeze(0)


class PositionalEmbedding(nn.Module):
    """Positions for a 1D (registers) or 2D (patches) token grid: ``forward(sizes) -> (1, *sizes, dim)``.

    ``kind``: ``"sincos"`` (fixed, 2D only), ``"learnable_sum"`` / ``"learnable_prod"`` (one learned
    vector per index along each axis, summed or multiplied). ``scaling``: ``"absolute"`` crops the
    table to the requested size, ``"interpolate"`` resizes it (bilinear, 2D).
    """

    def __init__(self, kind: str, dim: int, max_sizes: Sequence[int], scaling: str = "absolute"):
        super().__init__()
        if kind not in POSEMB_KINDS:
            raise ValueError(f"positional embedding kind must be one of {POSEMB_KINDS}, got {kind!r}")
        if scaling not in ("absolute", "interpolate"):
            raise ValueError(f"posemb scaling must be 'absolute' or 'interpolate', got {scaling!r}")
        self.kind, self.scaling, self.max_sizes = kind, scaling, tuple(int(s) for s in max_sizes)
        if kind == "sincos":
            if len(self.max_sizes) != 2:
                raise ValueError("the sin-cos embedding is 2D only")
            self.posembs = nn.Parameter(sincos_table(*self.max_sizes, dim), requires_grad=False)
        else:
            if len(set(self.max_sizes)) != 1:
                raise ValueError(f"learned embeddings need equal max sizes per axis, got {self.max_sizes}")
            self.posembs = nn.Parameter(torch.empty(len(self.max_sizes), 1, dim, self.max_sizes[0]))
            nn.init.trunc_normal_(self.posembs, std=0.02)

    def forward(self, sizes: Sequence[int]) -> torch.Tensor:
        if self.kind == "sincos":
            table = self.posembs
        elif len(self.max_sizes) == 1:
            table = self.posembs[0]
        else:
            rows, cols = self.posembs[0].unsqueeze(-1), self.posembs[1].unsqueeze(-2)
            table = rows + cols if self.kind == "learnable_sum" else rows * cols
        if self.scaling == "interpolate" and tuple(sizes) != self.max_sizes:
            table = F.interpolate(table, size=tuple(sizes), mode="bilinear", align_corners=True)
        else:
            if any(s > m for s, m in zip(sizes, self.max_sizes)):
                raise ValueError(f"grid {tuple(sizes)} exceeds the positional table {self.max_sizes}")
            table = table[(slice(None), slice(None)) + tuple(slice(0, s) for s in sizes)]
        return table.movedim(1, -1)


class TimestepEmbedding(nn.Module):
    """DiT-style timestep embedding: cos/sin features of ``t`` then an MLP (Linear-SiLU-Linear).

    The release fixes the period base at 256 and scales frequencies by ``1000 / max_timestep``.
    """

    def __init__(self, dim: int, frequency_dim: int = 256, max_timestep: float = 1000.0, max_period: float = 256.0):
        super().__init__()
        self.frequency_dim, self.max_timestep, self.max_period = frequency_dim, float(max_timestep), max_period
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def features(self, t: torch.Tensor) -> torch.Tensor:
        half = self.frequency_dim // 2
        freqs = (1000.0 / self.max_timestep) * torch.exp(
            -math.log(self.max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = t.float()[:, None] * freqs[None]
        emb = torch.cat([args.cos(), args.sin()], dim=-1)
        if self.frequency_dim % 2:
            emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
        return emb

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.features(t))
