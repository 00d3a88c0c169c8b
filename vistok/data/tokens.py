"""Pre-tokenized datasets for generator training: token shards on disk and a map-style reader.

A token shard directory holds ``meta.json`` and, per shard ``k``, ``ids-k.npy`` ``(n, L)``
(uint16 when the codebook fits, else int32), ``labels-k.npy`` ``(n,)`` int32, and with
horizontal-flip augmentation ``ids_flip-k.npy`` (the ids of the mirrored images). It is written
in a hidden staging folder that is renamed into place when complete, so a directory with
``meta.json`` is always whole.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from vistok.data.seeding import derive_seed
from vistok.errors import InputError, UnreadableFileError
from vistok.fileio import replace_directory

PathLike = Union[str, Path]
FORMAT = "tokzoo-token-shards-1"
META_NAME = "meta.json"
VIEWS = ("ids", "ids_flip")


def config_sha256(model: torch.nn.Module) -> str:
    """A hash of a tokzoo model's family and config: shards record which tokenizer wrote them."""
    record = {"family": model.family, "config": model.config.to_dict()}
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


def _shard_file(root: Path, view: str, shard: int) -> Path:
    return root / f"{view}-{shard:05d}.npy"


class TokenShardWriter:
    """Appends ``(ids, labels[, ids_flip])`` batches and writes them as token shards.

    ``close()`` writes ``meta.json`` (``meta`` plus format, counts, shapes, dtype) and moves the
    staging folder to ``root``; leaving a ``with`` block by an exception discards everything. An
    existing ``root`` is an error unless ``overwrite``."""

    def __init__(self, root: PathLike, num_tokens: int, codebook_size: int, meta: Optional[Dict[str, Any]] = None,
                 shard_size: int = 100_000, overwrite: bool = False):
        self.root = Path(root)
        if self.root.exists() and not overwrite:
            raise FileExistsError(f"{self.root}: already exists (pass overwrite to replace it)")
        if shard_size < 1:
            raise ValueError(f"shard_size must be positive, got {shard_size}")
        self.num_tokens, self.codebook_size, self.shard_size = int(num_tokens), int(codebook_size), int(shard_size)
        self.dtype = np.uint16 if self.codebook_size <= 2**16 else np.int32
        self.meta = dict(meta or {})
        self.root.parent.mkdir(parents=True, exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(dir=self.root.parent, prefix=f".{self.root.name}.", suffix=".tmp"))
        self.views: Optional[Tuple[str, ...]] = None
        self.pending: Dict[str, List[np.ndarray]] = {}
        self.pending_count = 0
        self.shards: List[int] = []

    def _array(self, name: str, ids: Any) -> np.ndarray:
        ids = np.asarray(ids.cpu() if isinstance(ids, torch.Tensor) else ids)
        if ids.ndim != 2 or ids.shape[1] != self.num_tokens:
            raise InputError(f"{name} must be shaped (n, {self.num_tokens}), got {ids.shape}")
        if not np.issubdtype(ids.dtype, np.integer):
            raise InputError(f"{name} must be integer token ids, got {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.codebook_size):
            raise InputError(f"{name}: ids outside 0..{self.codebook_size - 1}")
        return ids.astype(self.dtype)

    def add(self, ids: Any, labels: Any, ids_flip: Any = None) -> None:
        """Append ``n`` rows: ids ``(n, num_tokens)``, labels ``(n,)``, optionally ``ids_flip``."""
        views = ("ids",) if ids_flip is None else VIEWS
        if self.views is None:
            self.views = views
        elif views != self.views:
            raise ValueError("every batch must come with ids_flip, or none")
        arrays = {"ids": self._array("ids", ids)}
        if ids_flip is not None:
            arrays["ids_flip"] = self._array("ids_flip", ids_flip)
        labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels).astype(np.int32)
        if labels.shape != (len(arrays["ids"]),) or any(len(a) != len(labels) for a in arrays.values()):
            raise ValueError(f"labels must be shaped ({len(arrays['ids'])},), got {labels.shape}")
        arrays["labels"] = labels
        for name, array in arrays.items():
            self.pending.setdefault(name, []).append(array)
        self.pending_count += len(labels)
        while self.pending_count >= self.shard_size:
            self._flush(self.shard_size)

    def _flush(self, count: int) -> None:
        shard = len(self.shards)
        for name in list(self.pending):
            joined = np.concatenate(self.pending[name])
            np.save(_shard_file(self.staging, name, shard), joined[:count])
            self.pending[name] = [joined[count:]]
        self.pending_count -= count
        self.shards.append(count)

    def close(self) -> Path:
        """Write the last shard and ``meta.json``, then move the directory into place."""
        if self.pending_count:
            self._flush(self.pending_count)
        if not self.shards:
            self.abort()
            raise InputError(f"{self.root}: no tokens were added")
        meta = {**self.meta, "format": FORMAT, "count": sum(self.shards), "num_tokens": self.num_tokens,
                "codebook_size": self.codebook_size, "dtype": np.dtype(self.dtype).name,
                "views": list(self.views), "shards": self.shards}
        (self.staging / META_NAME).write_text(json.dumps(meta, indent=2) + "\n")
        replace_directory(self.staging, self.root)
        return self.root

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self) -> "TokenShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def read_meta(root: PathLike) -> Dict[str, Any]:
    """``meta.json`` of a token shard directory, checked."""
    path = Path(root) / META_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{root}: not a token shard directory (no {META_NAME}; `tokzoo tokenize` "
                                "writes one when it finishes)")
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UnreadableFileError(f"{path}: unreadable ({err})") from None
    found = meta.get("format") if isinstance(meta, dict) else None
    if found != FORMAT:
        raise UnreadableFileError(f"{path}: not a {FORMAT} meta file (format {found!r})")
    return meta


class TokenShards(Dataset):
    """The rows of a token shard directory as ``(ids, label)``: ids ``(num_tokens,)`` int64 and a
    0-d int64 label, so a DataLoader batch is ``[ids (B, L), labels (B,)]``.

    Shards are memory-mapped (workers share the pages). With ``flip`` and flipped ids on disk,
    item ``i`` of epoch ``e`` is the mirrored view for half of the (seed, e, i) triples, decided
    by a hash (no global RNG; call ``set_epoch``, as ``ResumableLoader`` does)."""

    def __init__(self, root: PathLike, flip: bool = True, seed: int = 0):
        self.root = Path(root)
        self.meta = read_meta(self.root)
        self.seed, self.epoch = int(seed), 0
        views = self.meta["views"]
        self.flip = bool(flip) and "ids_flip" in views
        self.arrays: Dict[str, List[np.ndarray]] = {}
        for name in [*views, "labels"]:
            self.arrays[name] = [self._open(name, k, n) for k, n in enumerate(self.meta["shards"])]
        self.starts = np.cumsum([0, *self.meta["shards"]]).tolist()

    def _open(self, name: str, shard: int, count: int) -> np.ndarray:
        path = _shard_file(self.root, name, shard)
        try:
            array = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as err:
            raise UnreadableFileError(f"{path}: missing or unreadable shard ({err})") from None
        want = (count,) if name == "labels" else (count, self.meta["num_tokens"])
        if array.shape != want:
            raise UnreadableFileError(f"{path}: shape {array.shape}, {META_NAME} says {want}")
        return array

    @property
    def num_tokens(self) -> int:
        return int(self.meta["num_tokens"])

    @property
    def codebook_size(self) -> int:
        return int(self.meta["codebook_size"])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.starts[-1]

    def _locate(self, index: int) -> Tuple[int, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} rows in {self.root}")
        index %= len(self)
        shard = bisect.bisect_right(self.starts, index) - 1
        return shard, index - self.starts[shard]

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        shard, row = self._locate(int(index))
        view = "ids"
        if self.flip and derive_seed(self.seed, self.epoch, int(index) % len(self)) & 1:
            view = "ids_flip"
        ids = torch.from_numpy(np.asarray(self.arrays[view][shard][row], dtype=np.int64))
        return ids, torch.tensor(int(self.arrays["labels"][shard][row]), dtype=torch.long)

    def __repr__(self) -> str:
        return (f"TokenShards({str(self.root)!r}, {len(self)} rows x {self.num_tokens} tokens, "
                f"codebook {self.codebook_size}, flip={self.flip})")
