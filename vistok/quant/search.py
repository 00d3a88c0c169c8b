"""Chunked nearest-neighbour search against a codebook.

A naive search materialises an ``N x K`` distance matrix; at K=16384 and N=65536 that is 4 GiB
in fp32. Here rows are processed in chunks so no more than ``max_elements`` distances exist at
once, whatever N is.
"""
from __future__ import annotations

import torch

DEFAULT_MAX_ELEMENTS = 1 << 24  # 16M distances = 64 MiB in fp32 per chunk


def _chunk_rows(num_codes: int, max_elements: int) -> int:
    return max(1, max_elements // max(1, num_codes))


def _scores(x: torch.Tensor, codebook: torch.Tensor, code_sq: torch.Tensor | None) -> torch.Tensor:
    """Higher is nearer. With ``code_sq`` it is ``-(|e|^2 - 2 x.e)`` (|x|^2 is constant per row);
    without it, a plain inner product (for unit-norm codes)."""
    if code_sq is None:
        return x @ codebook.t()
    return torch.addmm(code_sq, x, codebook.t(), beta=-1.0, alpha=2.0)


def nearest_code(
    x: torch.Tensor,
    codebook: torch.Tensor,
    *,
    cosine: bool = False,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> torch.Tensor:
    """Index of the nearest code for each row of ``x`` (N, d) -> (N,) int64.

    ``cosine=True`` expects unit-norm rows and codes and maximises the inner product (same
    argmin as squared L2 on the sphere).
    """
    code_sq = None if cosine else codebook.pow(2).sum(1)
    rows = _chunk_rows(codebook.shape[0], max_elements)
    out = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    for start in range(0, x.shape[0], rows):
        out[start : start + rows] = _scores(x[start : start + rows], codebook, code_sq).argmax(1)
    return out


def nearest_codes_topk(
    x: torch.Tensor,
    codebook: torch.Tensor,
    k: int,
    *,
    cosine: bool = False,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> torch.Tensor:
    """The ``k`` nearest codes per row, nearest first: (N, k) int64."""
    if not 1 <= k <= codebook.shape[0]:
        raise ValueError(f"k={k} must be between 1 and the codebook size {codebook.shape[0]}")
    code_sq = None if cosine else codebook.pow(2).sum(1)
    rows = _chunk_rows(codebook.shape[0], max_elements)
    out = torch.empty(x.shape[0], k, dtype=torch.long, device=x.device)
    for start in range(0, x.shape[0], rows):
        scores = _scores(x[start : start + rows], codebook, code_sq)
        out[start : start + rows] = scores.topk(k, dim=1, largest=True, sorted=True).indices
    return out
