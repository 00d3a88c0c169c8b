"""Thin wrappers over the default torch.distributed process group (set up by accelerate/torchrun).

Quantizer state that is not a gradient (EMA statistics, k-means centroids, dead-code
replacements, dropout cut-offs) must be reduced or broadcast explicitly so that every rank
holds the same codebook. These helpers are no-ops when not distributed.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.distributed as dist


def world_size() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def rank() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return 0


def should_sync(sync: Optional[bool]) -> bool:
    """``sync=None`` means: synchronise whenever more than one process is running."""
    if sync is None:
        return world_size() > 1
    return bool(sync) and world_size() > 1


def all_reduce_sum(tensor: torch.Tensor, enabled: bool = True) -> torch.Tensor:
    """Sum over ranks, returned as a new contiguous tensor (never reduces a temporary view)."""
    if not enabled or world_size() == 1:
        return tensor
    out = tensor.contiguous().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def broadcast(tensor: torch.Tensor, src: int = 0, enabled: bool = True) -> torch.Tensor:
    """Rank ``src``'s value on every rank."""
    if not enabled or world_size() == 1:
        return tensor
    out = tensor.contiguous().clone()
    dist.broadcast(out, src=src)
    return out


def all_gather_cat(tensor: torch.Tensor, enabled: bool = True) -> torch.Tensor:
    """Concatenate equally-shaped tensors of all ranks along dim 0 (rank order)."""
    if not enabled or world_size() == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)
