"""Images streamed from webdataset-style tar shards (no ``webdataset`` dependency): shards split
across distributed ranks and DataLoader workers, a seeded shuffle buffer, and the same resize /
crop / flip as ``ImageFolder`` with per-sample seeds, so every stream is reproducible."""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Union

import torch
from torch.utils.data import IterableDataset, get_worker_info

from vistok.data.braces import expand_braces
from vistok.data.images import open_rgb
from vistok.data.seeding import make_generator
from vistok.data.tar_samples import iter_tar_samples
from vistok.data.transforms import crop_and_flip
from vistok.errors import InputError

SHARD_IMAGE_KEYS = ("jpg", "jpeg", "png", "webp")
SHARD_SUFFIXES = (".tar", ".tar.gz", ".tgz")


def resolve_shards(urls_or_pattern: Union[str, Path, Sequence[Union[str, Path]]]) -> List[str]:
    """Shard paths from a brace pattern (``data/train-{0000..0009}.tar``), a folder (its
    ``*.tar``/``*.tar.gz``/``*.tgz`` files, sorted), or a list of either. A ``file:`` prefix is
    accepted; other URL schemes are not (shards must be local files). Missing shards raise
    FileNotFoundError naming them."""
    items = [urls_or_pattern] if isinstance(urls_or_pattern, (str, Path)) else list(urls_or_pattern)
    shards: List[str] = []
    for item in items:
        text = str(item)
        if text.startswith("file:"):
            text = text[len("file:"):]
        if "://" in text or text.startswith("pipe:"):
            raise InputError(f"{text}: only local tar shards are supported")
        if os.path.isdir(text):
            found = sorted(p for p in Path(text).iterdir() if p.name.endswith(SHARD_SUFFIXES))
            if not found:
                raise InputError(f"{text}: no tar shards in this folder (looked for {', '.join(SHARD_SUFFIXES)})")
            shards.extend(str(p) for p in found)
        else:
            shards.extend(expand_braces(text))
    if not shards:
        raise InputError("no tar shards given")
    missing = [s for s in shards if not os.path.isfile(s)]
    if missing:
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        raise FileNotFoundError(f"missing tar shards: {', '.join(missing[:3])}{more}")
    return shards


def _shuffled(samples: Iterator[dict], size: int, generator: torch.Generator) -> Iterator[dict]:
    """Reservoir-style shuffle buffer: fill ``size`` samples, then emit a random one per arrival."""
    if size <= 1:
        yield from samples
        return
    buffer: List[dict] = []
    for sample in samples:
        if len(buffer) < size:
            buffer.append(sample)
            continue
        i = int(torch.randint(0, size, (1,), generator=generator))
        buffer[i], sample = sample, buffer[i]
        yield sample
    for i in torch.randperm(len(buffer), generator=generator).tolist():
        yield buffer[i]


def _distributed_defaults() -> tuple:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class ImageShards(IterableDataset):
    """``(3, image_size, image_size)`` [0, 1] tensors (or ``(tensor, key)`` with ``return_key``)
    from the image member (first of .jpg .jpeg .png .webp) of each sample in tar shards; samples
    without an image are skipped.

    Each epoch the shard list is permuted from ``(seed, epoch)`` (``shuffle_shards``), dealt to
    ranks (``order[rank::world_size]``) and then to DataLoader workers (``[worker::num_workers]``);
    each worker streams its shards through a ``shuffle_buffer``-sample buffer seeded from
    ``(seed, epoch, rank, worker)`` (raw bytes are buffered, decoding happens on the way out).
    Crops/flips use a generator seeded from ``(seed, epoch, shard file name, key)``. So for a given
    (seed, epoch, rank, world_size, num_workers, batch_size) the batch stream is fixed, which is
    what ``ResumableLoader`` relies on; it also uses ``worker_sample_counts`` and ``set_skip`` to
    resume mid-epoch without decoding the skipped images.

    ``rank``/``world_size`` default to ``torch.distributed``'s when it is initialized (else 0/1);
    ``set_distributed`` changes them. Every rank needs at least one shard (ValueError otherwise);
    ranks may get different sample counts, so their epochs can differ in length. A corrupt or
    truncated shard raises ValueError naming it; a missing one FileNotFoundError."""

    def __init__(self, urls_or_pattern, image_size: int, random_crop: bool = True, random_flip: bool = True,
                 shuffle_buffer: int = 1000, seed: int = 0, shuffle_shards: bool = True,
                 rank: Optional[int] = None, world_size: Optional[int] = None, return_key: bool = False):
        super().__init__()
        if int(image_size) <= 0:
            raise ValueError(f"image_size must be positive, got {image_size}")
        if int(shuffle_buffer) < 0:
            raise ValueError(f"shuffle_buffer must be >= 0, got {shuffle_buffer}")
        self.shards = resolve_shards(urls_or_pattern)
        self.image_size = int(image_size)
        self.random_crop = bool(random_crop)
        self.random_flip = bool(random_flip)
        self.shuffle_buffer = int(shuffle_buffer)
        self.shuffle_shards = bool(shuffle_shards)
        self.seed = int(seed)
        self.return_key = bool(return_key)
        self.epoch = 0
        self._skip: Optional[List[int]] = None
        self._counts: Dict[str, int] = {}
        default_rank, default_world = _distributed_defaults()
        self.set_distributed(default_rank if rank is None else rank,
                             default_world if world_size is None else world_size)

    # ----- the plan: which shards this rank/worker reads this epoch -----

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch: shard order, shuffle buffer and crops all depend on it."""
        self.epoch = int(epoch)

    def set_distributed(self, rank: int, world_size: int) -> None:
        """Read the part of every epoch that belongs to ``rank`` of ``world_size``."""
        rank, world_size = int(rank), int(world_size)
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"bad rank {rank} for world_size {world_size}")
        if len(self.shards) < world_size:
            raise InputError(f"{len(self.shards)} tar shards cannot feed {world_size} ranks: "
                             "every rank needs at least one shard")
        self.rank, self.world_size = rank, world_size

    def shard_order(self, epoch: Optional[int] = None) -> List[str]:
        """All shards in the order of ``epoch`` (default: the current one)."""
        epoch = self.epoch if epoch is None else int(epoch)
        if not self.shuffle_shards:
            return list(self.shards)
        perm = torch.randperm(len(self.shards), generator=make_generator(self.seed, epoch, "shards"))
        return [self.shards[i] for i in perm.tolist()]

    def worker_shards(self, worker: int = 0, num_workers: int = 1) -> List[str]:
        """The shards worker ``worker`` of ``num_workers`` reads on this rank this epoch."""
        return self.shard_order()[self.rank::self.world_size][worker::max(1, num_workers)]

    # ----- counting and resuming -----

    def count_samples(self, shard: str) -> int:
        """Samples with an image in ``shard`` (headers only; cached)."""
        if shard not in self._counts:
            self._counts[shard] = sum(1 for s in iter_tar_samples(shard, read=False)
                                      if any(k in s for k in SHARD_IMAGE_KEYS))
        return self._counts[shard]

    def num_samples(self) -> int:
        """Samples with an image across all shards (every rank together)."""
        return sum(self.count_samples(s) for s in self.shards)

    def worker_sample_counts(self, num_workers: int) -> List[int]:
        """Samples each of ``num_workers`` workers (1 for ``num_workers=0``) yields on this rank
        this epoch."""
        workers = max(1, int(num_workers))
        return [sum(self.count_samples(s) for s in self.worker_shards(w, workers)) for w in range(workers)]

    def set_skip(self, per_worker: Optional[Sequence[int]]) -> None:
        """Make the next iterator(s) drop the first ``per_worker[w]`` samples of worker ``w``'s
        stream (after shuffling, before decoding); ``None`` clears it. Set before the DataLoader
        iterator is created: workers copy the dataset then."""
        self._skip = None if per_worker is None else [int(n) for n in per_worker]

    # ----- iteration -----

    def __iter__(self) -> Iterator:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        skip = self._skip[worker] if self._skip is not None and worker < len(self._skip) else 0
        return self._stream(self.worker_shards(worker, workers), self.epoch, worker, skip)

    def _stream(self, shards: List[str], epoch: int, worker: int, skip: int) -> Iterator:
        def raw() -> Iterator[dict]:
            for shard in shards:
                for sample in iter_tar_samples(shard):
                    if any(k in sample for k in SHARD_IMAGE_KEYS):
                        yield sample

        buffer_rng = make_generator(self.seed, epoch, self.rank, worker, "buffer")
        random = self.random_crop or self.random_flip
        for i, sample in enumerate(_shuffled(raw(), self.shuffle_buffer, buffer_rng)):
            if i < skip:
                continue
            shard, key = sample["__shard__"], sample["__key__"]
            ext = next(k for k in SHARD_IMAGE_KEYS if k in sample)
            img = open_rgb(io.BytesIO(sample[ext]), name=f"{shard}: sample {key}.{ext}")
            generator = make_generator(self.seed, epoch, os.path.basename(shard), key) if random else None
            image = crop_and_flip(img, self.image_size, generator, self.random_crop, self.random_flip)
            yield (image, key) if self.return_key else image

    def __repr__(self) -> str:
        return (f"ImageShards({len(self.shards)} shards, image_size={self.image_size}, "
                f"rank {self.rank}/{self.world_size}, shuffle_buffer={self.shuffle_buffer}, seed={self.seed})")
