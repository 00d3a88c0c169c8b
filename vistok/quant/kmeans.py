"""k-means for codebook initialisation, identical on every rank under torch.distributed."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from vistok.quant import distributed as D
from vistok.quant.search import nearest_code


def sample_rows(x: torch.Tensor, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """``n`` rows of ``x`` drawn without replacement when possible, with replacement otherwise."""
    if x.shape[0] >= n:
        idx = torch.randperm(x.shape[0], device=x.device, generator=generator)[:n]
    else:
        idx = torch.randint(0, x.shape[0], (n,), device=x.device, generator=generator)
    return x[idx]


def kmeans(
    x: torch.Tensor,
    num_clusters: int,
    iters: int = 10,
    *,
    cosine: bool = False,
    sync: bool = False,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means on rows of ``x`` (N, d), fp32.

    Returns ``(centroids (K, d), counts (K,))``. With ``sync`` the initial centroids come from
    rank 0 and every iteration sums assignments over all ranks, so all ranks end identical.
    Empty clusters keep their previous centroid.
    """
    x = x.float()
    if cosine:
        x = F.normalize(x, dim=-1)
    centroids = D.broadcast(sample_rows(x, num_clusters), enabled=sync)
    counts = torch.zeros(num_clusters, device=x.device)
    for _ in range(max(1, iters)):
        assign = nearest_code(x, centroids, cosine=cosine)
        counts = D.all_reduce_sum(torch.bincount(assign, minlength=num_clusters).float(), sync)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        sums = D.all_reduce_sum(sums, sync)
        filled = counts > 0
        new = sums / counts.clamp_min(1).unsqueeze(1)
        if cosine:
            new = F.normalize(new, dim=-1)
        centroids = torch.where(filled.unsqueeze(1), new, centroids)
    return centroids, counts
