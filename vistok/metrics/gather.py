"""Splitting an evaluation set over processes and gathering per-image results back, through
accelerate (``accelerate launch`` / ``torchrun`` set the process group up; nothing is created here).

Each rank takes one contiguous block of images and keeps each result row with its image index;
:class:`RowCollector` gathers the rows of all ranks and sorts them by index, so a multi-process
run yields exactly the rows (and hence the FID) of a single-process run.
"""
from __future__ import annotations

import os
from typing import Dict, List, Tuple

import torch
import torch.distributed as dist


def _distributed() -> bool:
    """Launched as several processes (accelerate/torchrun set WORLD_SIZE) or a group already exists.
    A plain single process never touches accelerate's global state."""
    return (dist.is_available() and dist.is_initialized()) or int(os.environ.get("WORLD_SIZE", "1")) > 1


def _state():
    from accelerate.state import PartialState

    return PartialState()


def process_info() -> Tuple[int, int]:
    """(rank, world size) of the current accelerate state (0, 1 when not launched distributed)."""
    if not _distributed():
        return 0, 1
    state = _state()
    return state.process_index, state.num_processes


def default_device() -> torch.device:
    """This process's device: accelerate's when distributed, else CUDA when available, else the CPU."""
    if _distributed():
        return _state().device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def shard(n: int) -> Tuple[int, int]:
    """This rank's block ``[start, stop)`` of ``n`` items (sizes differ by at most one)."""
    rank, world = process_info()
    return rank * n // world, (rank + 1) * n // world


def gather_rows(x: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``(n_rank, ...)`` tensor along dim 0 in rank order (CPU result)."""
    if process_info()[1] == 1:
        return x.cpu()
    from accelerate.utils import gather, pad_across_processes

    device = _state().device
    counts = gather(torch.tensor([x.shape[0]], device=device)).cpu().tolist()
    padded = pad_across_processes(x.to(device).contiguous(), dim=0)
    everything = gather(padded).cpu()
    width = padded.shape[0]
    return torch.cat([everything[r * width : r * width + c] for r, c in enumerate(counts)])


class RowCollector:
    """Per-image rows (features, scores) under named streams, keyed by image index."""

    def __init__(self):
        self._indices: List[torch.Tensor] = []
        self._rows: Dict[str, List[torch.Tensor]] = {}

    def add(self, indices: torch.Tensor, **rows: torch.Tensor) -> None:
        if self._rows and set(rows) != set(self._rows):
            raise ValueError(f"RowCollector: streams changed from {sorted(self._rows)} to {sorted(rows)}")
        self._indices.append(indices.detach().long().cpu())
        for name, value in rows.items():
            if value.shape[0] != indices.shape[0]:
                raise ValueError(f"RowCollector: {name} has {value.shape[0]} rows for {indices.shape[0]} indices")
            self._rows.setdefault(name, []).append(value.detach().cpu())

    def gathered(self) -> Dict[str, torch.Tensor]:
        """Every rank's rows, sorted by image index (call on all ranks together)."""
        if not self._indices:
            raise ValueError("RowCollector: nothing collected")
        indices = gather_rows(torch.cat(self._indices))
        order = torch.argsort(indices)
        out = {"index": indices[order]}
        for name, parts in self._rows.items():
            out[name] = gather_rows(torch.cat(parts))[order]
        if torch.unique(out["index"]).numel() != out["index"].numel():
            raise RuntimeError("RowCollector: an image index was evaluated twice (overlapping shards)")
        return out
