"""Which dataset indices form batch ``j`` of epoch ``e`` on rank ``r``: a pure function of
(seed, epoch, dataset length, batch size, world size), plus a position counter that can be saved
and restored."""
from __future__ import annotations

import math
import warnings
from typing import Any, Dict, Iterator, List, Tuple

import torch

from vistok.data.seeding import make_generator
from vistok.errors import InputError


class ResumableSampler:
    """Batch sampler for map-style datasets with a resumable position.

    Epoch ``e`` permutes ``range(dataset_len)`` with a generator seeded from ``(seed, e)`` (identity
    when ``shuffle=False``); rank ``r`` takes ``perm[r::world_size]``, so global batch ``j`` (the
    union over ranks of their batch ``j``) is the contiguous chunk ``perm[j*B*W:(j+1)*B*W]`` and
    ranks never share an index. With ``drop_last`` the tail that does not fill a global batch is
    dropped; without it the permutation is padded by wrapping around to a multiple of
    ``world_size`` and the last batch may be short. Every rank has the same number of batches.

    ``epoch`` and ``position`` (batches of this epoch already *consumed*) are the state;
    ``state_dict()``/``load_state_dict()`` carry them. Iterating yields the rest of the current
    epoch from ``position`` but does not move it, because a DataLoader reads its sampler ahead of
    what training has used: the consumer calls ``advance()`` once per batch it actually used
    (``ResumableLoader`` does), which rolls over to ``(epoch + 1, 0)`` after the last batch."""

    def __init__(self, dataset_len: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 drop_last: bool = True, shuffle: bool = True):
        self.dataset_len, self.batch_size = int(dataset_len), int(batch_size)
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.drop_last, self.shuffle = bool(drop_last), bool(shuffle)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(f"bad rank {rank} for world_size {world_size}")
        if self.dataset_len < 1:
            raise InputError("the dataset is empty")
        if self.batches_per_epoch() == 0:
            raise InputError(f"{self.dataset_len} samples do not fill one global batch of {self.batch_size} x "
                             f"{self.world_size} ranks with drop_last=True: use a smaller batch or more data")
        self.epoch = 0
        self.position = 0

    def batches_per_epoch(self) -> int:
        """Batches each rank gets per epoch."""
        if self.drop_last:
            return self.dataset_len // (self.batch_size * self.world_size)
        return math.ceil(math.ceil(self.dataset_len / self.world_size) / self.batch_size)

    __len__ = batches_per_epoch

    def epoch_batches(self, epoch: int) -> List[List[int]]:
        """Every batch of this rank in ``epoch`` (lists of dataset indices)."""
        n, b, w = self.dataset_len, self.batch_size, self.world_size
        if self.shuffle:
            perm = torch.randperm(n, generator=make_generator(self.seed, int(epoch), "permutation")).tolist()
        else:
            perm = list(range(n))
        if self.drop_last:
            perm = perm[: (n // (b * w)) * b * w]
        else:
            total = math.ceil(n / w) * w
            perm = (perm * math.ceil(total / n))[:total]
        mine = perm[self.rank::w]
        batches = [mine[i:i + b] for i in range(0, len(mine), b)]
        return batches[: self.batches_per_epoch()]

    def __iter__(self) -> Iterator[List[int]]:
        return iter(self.epoch_batches(self.epoch)[self.position:])

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` from its first batch."""
        self.epoch, self.position = int(epoch), 0

    def advance(self, batches: int = 1) -> None:
        """Record ``batches`` more consumed batches (rolling over epochs)."""
        total = self.position + int(batches)
        per_epoch = self.batches_per_epoch()
        self.epoch += total // per_epoch
        self.position = total % per_epoch

    def seek(self, step: int) -> None:
        """Position after ``step`` consumed batches counted from epoch 0."""
        self.epoch, self.position = 0, 0
        self.advance(step)

    @property
    def step(self) -> int:
        """Batches consumed since epoch 0 (``epoch * batches_per_epoch + position``)."""
        return self.epoch * self.batches_per_epoch() + self.position

    def state_dict(self) -> Dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed,
                "dataset_len": self.dataset_len, "batch_size": self.batch_size,
                "world_size": self.world_size, "drop_last": self.drop_last}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore ``epoch``/``position``. If the saved run had a different seed, dataset length,
        batch size or world size, an exact continuation is impossible: a warning says so, the epoch
        is kept and the position becomes the same fraction of samples into it."""
        epoch, position = int(state["epoch"]), int(state["position"])
        changed = warn_if_resumed_differently(self, state, ("seed", "dataset_len", "batch_size", "world_size",
                                                           "drop_last"))
        if changed:
            seen = position * int(state.get("batch_size", self.batch_size)) * int(state.get("world_size", self.world_size))
            position = seen // (self.batch_size * self.world_size)
            if position >= self.batches_per_epoch():
                epoch, position = epoch + 1, 0
        self.epoch, self.position = epoch, position


def warn_if_resumed_differently(owner: Any, state: Dict[str, Any], keys: Tuple[str, ...]) -> List[str]:
    """The settings among ``keys`` whose saved value in ``state`` differs from ``owner``'s now; a
    warning names them (the resumed batch stream will not continue the interrupted one exactly)."""
    changed = [k for k in keys if k in state and state[k] != getattr(owner, k)]
    if changed:
        detail = ", ".join(f"{k} {state[k]} -> {getattr(owner, k)}" for k in changed)
        warnings.warn(f"{type(owner).__name__}: resuming with a different {detail}; "
                      "the batch stream will not match the interrupted run exactly", stacklevel=3)
    return changed
