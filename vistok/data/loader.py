"""An endless, resumable stream of batches for one training process.

Resume contract
---------------
A loader's position is ``(epoch, position)``: the epoch it is in and how many of this rank's
batches of that epoch have been *returned by* ``next()``. ``state_dict()`` captures it (plain ints,
safe to pickle into a checkpoint); ``start_step=n`` or ``load_state_dict(state)`` on a freshly
built loader with the same dataset, batch size, seed, rank, world size, ``drop_last`` and
``num_workers`` makes its next ``next()`` return exactly the batch the uninterrupted loader returned
as its ``(n+1)``-th (same indices, same crops and flips), across epoch boundaries too.

* Map-style datasets: the batches come from ``ResumableSampler``; epoch ``e`` has
  ``batches_per_epoch()`` batches on every rank, and ``start_step=n`` means epoch
  ``n // batches_per_epoch()``, position ``n % batches_per_epoch()``. Resuming costs nothing (the
  skipped batches are never loaded). ``num_workers`` does not change the stream.
* Iterable datasets (``ImageShards``): the stream depends on ``num_workers`` too (each worker
  batches its own shards; the DataLoader takes them round-robin). Datasets that provide
  ``worker_sample_counts``/``set_skip`` resume by skipping samples before decoding; others are
  replayed and the skipped batches discarded. An epoch ends when this rank's shards run out, so
  ranks' epochs may differ in length.
* Any rank's state resumes every rank (accelerate saves custom objects from the main process
  only): map-style ``(epoch, position)`` is the same on all ranks, and iterable loaders restore
  from ``step`` (batches consumed, equal on all ranks) using this rank's own sample counts.

Before each epoch the loader calls ``dataset.set_epoch(epoch)`` (when the dataset has it) and then
starts a new DataLoader iterator (workers are not persistent, so they see the new epoch). It never
draws from the global torch RNG: worker base seeds come from ``(seed, epoch, rank)``."""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from torch.utils.data import DataLoader, IterableDataset

from vistok.data.sampler import ResumableSampler, warn_if_resumed_differently
from vistok.data.seeding import make_generator
from vistok.errors import TokzooError

__all__ = ["ResumableLoader", "ResumableSampler", "build_image_loader", "default_num_workers"]


def default_num_workers(world_size: int = 1) -> int:
    """DataLoader workers per process that fit this machine: the CPUs this process may use
    divided among ``world_size`` processes, minus one for the training loop, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return min(8, max(0, cpus // max(1, int(world_size)) - 1))


def _resume_plan(batches: List[int], position: int) -> Tuple[List[int], int]:
    """Where batch ``position`` of a DataLoader over an iterable dataset comes from, given each
    worker's batch count: the DataLoader takes one batch from each still-running worker in turn,
    round after round, always starting a round at worker 0. Returns the batches each worker must
    skip (the whole rounds before ``position``) and how many batches of the next round a fresh
    DataLoader must then discard (fewer than the number of workers)."""
    if position > sum(batches):
        raise ValueError(f"position {position} is past the end of the epoch ({sum(batches)} batches)")
    skipped = [0] * len(batches)
    remaining, round_ = position, 0
    while True:
        active = [w for w, count in enumerate(batches) if count > round_]
        if not active or remaining < len(active):
            return skipped, remaining
        for w in active:
            skipped[w] += 1
        remaining -= len(active)
        round_ += 1


def _worker_message(err: BaseException) -> Optional[str]:
    """The original message of an error a DataLoader worker raised, which the main process re-raises
    as the same type with the worker's whole traceback as its message; None for any other error."""
    text = str(err)
    if not text.startswith("Caught ") or "Original Traceback" not in text:
        return None
    for name in (f"{type(err).__module__}.{type(err).__qualname__}: ", f"{type(err).__qualname__}: "):
        at = text.rfind("\n" + name)
        if at >= 0:
            return text[at + 1 + len(name):].strip()
    return None


class ResumableLoader:
    """Endless iterator of batches for ``rank`` of ``world_size``, resumable exactly (see the
    module docstring for the contract).

    ``next(loader)`` returns a collated batch; ``epoch``, ``position`` (batches returned in this
    epoch) and ``step`` (batches returned since epoch 0, position 0) say where it is;
    ``state_dict()``/``load_state_dict()`` save and restore that; ``batches_per_epoch()`` is exact
    for map-style datasets and ``num_samples() // (batch_size * world_size)`` (the same on every
    rank) for shard datasets. ``close()`` stops the workers."""

    def __init__(self, dataset, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 num_workers: int = 0, drop_last: bool = True, start_step: int = 0, shuffle: bool = True,
                 collate_fn: Optional[Callable] = None, pin_memory: bool = False,
                 prefetch_factor: Optional[int] = None, timeout: float = 0):
        self.dataset = dataset
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.num_workers, self.drop_last = int(num_workers), bool(drop_last)
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        self._loader_kwargs = dict(num_workers=self.num_workers, collate_fn=collate_fn, pin_memory=pin_memory,
                                   timeout=timeout)
        if self.num_workers > 0 and prefetch_factor is not None:
            self._loader_kwargs["prefetch_factor"] = prefetch_factor
        self.iterable = isinstance(dataset, IterableDataset)
        if self.iterable:
            if self.batch_size < 1:
                raise ValueError(f"batch_size must be >= 1, got {batch_size}")
            if hasattr(dataset, "set_distributed"):
                dataset.set_distributed(self.rank, self.world_size)
            self.sampler = None
            self._epoch, self._position, self._step = 0, 0, 0
        else:
            self.sampler = ResumableSampler(len(dataset), self.batch_size, self.seed, self.rank, self.world_size,
                                            self.drop_last, shuffle)
        self._iterator: Optional[Iterator] = None
        self._iterator_epoch = -1
        if start_step:
            self.seek(start_step)

    # ----- position -----

    @property
    def epoch(self) -> int:
        return self.sampler.epoch if self.sampler is not None else self._epoch

    @property
    def position(self) -> int:
        return self.sampler.position if self.sampler is not None else self._position

    @property
    def step(self) -> int:
        return self.sampler.step if self.sampler is not None else self._step

    def batches_per_epoch(self) -> int:
        if self.sampler is not None:
            return self.sampler.batches_per_epoch()
        if not hasattr(self.dataset, "num_samples"):
            raise TypeError(f"{type(self.dataset).__name__} has no num_samples(): "
                            "the number of batches per epoch is unknown (set it explicitly)")
        return max(1, self.dataset.num_samples() // (self.batch_size * self.world_size))

    def seek(self, step: int) -> None:
        """Go to the position after ``step`` batches counted from the start of epoch 0."""
        step = int(step)
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        self._close_iterator()
        if self.sampler is not None:
            self.sampler.seek(step)
            return
        epoch, position = 0, step
        if hasattr(self.dataset, "worker_sample_counts"):  # whole epochs can be counted, not replayed
            while True:
                per_epoch = sum(self._worker_batches(epoch))
                if per_epoch == 0:
                    raise RuntimeError(f"rank {self.rank}: epoch {epoch} of {self.dataset!r} has no full batch")
                if position < per_epoch:
                    break
                epoch, position = epoch + 1, position - per_epoch
        self._epoch, self._position, self._step = epoch, position, step

    def state_dict(self) -> Dict[str, Any]:
        """``epoch``, ``position``, ``step`` and the settings an exact resume needs to match."""
        state = self.sampler.state_dict() if self.sampler is not None else {
            "epoch": self._epoch, "position": self._position, "seed": self.seed,
            "batch_size": self.batch_size, "world_size": self.world_size, "drop_last": self.drop_last}
        state.update(step=self.step, rank=self.rank, num_workers=self.num_workers, iterable=self.iterable)
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Continue from ``state`` (from ``state_dict()``): the next batch is the one that followed it.

        The state of any rank will do (accelerate saves custom objects from the main process only
        and loads that file on every rank): for map-style datasets ``(epoch, position)`` is the
        same on all ranks; for iterable datasets, whose epochs differ per rank, the loader seeks to
        ``step`` (batches consumed, equal on all ranks) with this rank's own sample counts."""
        self._close_iterator()
        if self.sampler is not None:
            self.sampler.load_state_dict(state)
            return
        warn_if_resumed_differently(self, state, ("seed", "batch_size", "world_size", "drop_last", "num_workers"))
        step = int(state.get("step", 0))
        if hasattr(self.dataset, "worker_sample_counts") or int(state.get("rank", self.rank)) != self.rank:
            self.seek(step)
        else:
            self._epoch, self._position, self._step = int(state["epoch"]), int(state["position"]), step

    # ----- iteration -----

    def __iter__(self) -> "ResumableLoader":
        return self

    def __next__(self):
        try:
            return self._next()
        except StopIteration:
            raise RuntimeError("ResumableLoader: unexpected end of stream") from None
        except (TokzooError, OSError) as err:
            self._close_iterator()
            original = _worker_message(err)
            if original is None:
                raise
            raise type(err)(original) from None  # a user error in a worker: its own one-line message
        except BaseException:
            self._close_iterator()  # stop workers now, not whenever the traceback is collected
            raise

    def _next(self):
        if self.sampler is not None:
            for _ in range(2):
                if self._iterator is None or self._iterator_epoch != self.sampler.epoch:
                    self._open_map_style()
                try:
                    batch = next(self._iterator)
                except StopIteration:  # only if a restored position was at/after the epoch's end
                    self.sampler.set_epoch(self.sampler.epoch + 1)
                    continue
                self.sampler.advance()
                return batch
            raise RuntimeError("ResumableLoader: the sampler produced no batch")  # unreachable: epochs are never empty
        empty_epochs = 0
        while True:
            if self._iterator is None:
                self._open_iterable()
            try:
                batch = next(self._iterator)
            except StopIteration:
                self._close_iterator()
                empty_epochs = empty_epochs + 1 if self._position == 0 else 0
                if empty_epochs >= 3:
                    raise RuntimeError(f"rank {self.rank}: {self.dataset!r} yields no batch in epoch {self._epoch}")
                self._epoch, self._position = self._epoch + 1, 0
                continue
            self._position += 1
            self._step += 1
            return batch

    def _generator(self, epoch: int):
        return make_generator(self.seed, epoch, self.rank, "workers")

    def _set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def _open_map_style(self) -> None:
        self._close_iterator()
        epoch = self.sampler.epoch
        self._set_epoch(epoch)
        batches = self.sampler.epoch_batches(epoch)[self.sampler.position:]
        loader = DataLoader(self.dataset, batch_sampler=batches, generator=self._generator(epoch),
                            **self._loader_kwargs)
        self._iterator, self._iterator_epoch = iter(loader), epoch

    def _worker_batches(self, epoch: int) -> List[int]:
        self._set_epoch(epoch)
        counts = self.dataset.worker_sample_counts(self.num_workers)
        if self.drop_last:
            return [n // self.batch_size for n in counts]
        return [-(-n // self.batch_size) for n in counts]

    def _open_iterable(self) -> None:
        """A DataLoader iterator positioned at (epoch, position); with sample counts the skipped
        part is dropped before decoding (whole rounds) plus at most num_workers - 1 decoded
        batches, without them the skipped batches are replayed (rolling over epochs if needed)."""
        self._close_iterator()
        can_skip = hasattr(self.dataset, "worker_sample_counts") and hasattr(self.dataset, "set_skip")
        while True:
            epoch, position = self._epoch, self._position
            discard = position
            if position and can_skip:
                skipped, discard = _resume_plan(self._worker_batches(epoch), position)
                self.dataset.set_skip([n * self.batch_size for n in skipped])
            self._set_epoch(epoch)
            loader = DataLoader(self.dataset, batch_size=self.batch_size, drop_last=self.drop_last,
                                generator=self._generator(epoch), **self._loader_kwargs)
            try:
                self._iterator = iter(loader)  # workers start (and copy the dataset) here
            finally:
                if can_skip:
                    self.dataset.set_skip(None)
            for done in range(discard):
                try:
                    next(self._iterator)
                except StopIteration:  # a start_step beyond this epoch (only without sample counts)
                    self._close_iterator()
                    if can_skip or done == 0:
                        why = "the sample counts disagree with the stream" if can_skip else "the epoch has no batch"
                        raise RuntimeError(f"rank {self.rank}: cannot reach batch {position} of epoch {epoch} "
                                           f"of {self.dataset!r}: {why}") from None
                    self._epoch, self._position = epoch + 1, position - done
                    break
            else:
                return

    def _close_iterator(self) -> None:
        iterator, self._iterator = self._iterator, None
        self._iterator_epoch = -1
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()

    def close(self) -> None:
        """Stop the worker processes (the position is kept; ``next()`` starts new ones)."""
        self._close_iterator()

    def __del__(self):
        try:
            self._close_iterator()
        except Exception:
            pass


def build_image_loader(dataset, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                       num_workers: Optional[int] = None, start_step: int = 0, **kwargs) -> ResumableLoader:
    """``ResumableLoader`` with ``num_workers=None`` meaning ``default_num_workers(world_size)``;
    ``start_step`` batches of this rank are treated as already consumed."""
    workers = default_num_workers(world_size) if num_workers is None else num_workers
    return ResumableLoader(dataset, batch_size, seed=seed, rank=rank, world_size=world_size, num_workers=workers,
                           start_step=start_step, **kwargs)
