"""Sources of images to score: a folder, an ADM-style ``.npz`` (``arr_0``, uint8 NHWC), or anything
else (a generator sampling on the fly) that implements :class:`SampleSource`."""
from __future__ import annotations

import abc
import zipfile
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from vistok.errors import InputError, UnreadableFileError

Batch = Tuple[torch.Tensor, torch.Tensor]  # (sample indices (b,), uint8 images (b, 3, H, W))


class SampleSource(abc.ABC):
    """A fixed-size, indexable stream of uint8 ``(3, H, W)`` images.

    ``batches(start, stop, batch_size)`` yields the samples ``start..stop-1`` in order; ranks of a
    multi-process run each ask for one contiguous range. A generator plugs in by producing sample
    ``i`` from a seed derived from ``i``, so the set does not depend on the number of processes.
    """

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def batches(self, start: int, stop: int, batch_size: int) -> Iterator[Batch]: ...

    @abc.abstractmethod
    def describe(self) -> Dict[str, object]:
        """What the protocol records about the samples (path, count, preprocessing, ...)."""

    def fingerprint(self) -> Optional[str]:
        """A content hash that, with the preprocessing, identifies the images (the key of cached
        reference statistics); None when the samples cannot be cached (e.g. generated ones)."""
        return None


class DatasetSource(SampleSource):
    """A map-style dataset whose items are ``(index, uint8 image)`` (e.g. ``EvalImages``)."""

    def __init__(self, dataset: Dataset, num_workers: int = 0, description: Optional[Dict[str, object]] = None):
        self.dataset = dataset
        self.num_workers = num_workers
        self.description = description or getattr(dataset, "describe", lambda: {})()

    def __len__(self) -> int:
        return len(self.dataset)

    def batches(self, start: int, stop: int, batch_size: int) -> Iterator[Batch]:
        subset = Subset(self.dataset, range(start, stop))
        loader = DataLoader(subset, batch_size=batch_size, num_workers=self.num_workers,
                            persistent_workers=False, pin_memory=torch.cuda.is_available())
        for indices, images in loader:
            yield indices, images

    def describe(self) -> Dict[str, object]:
        return dict(self.description)

    def fingerprint(self) -> Optional[str]:
        content = getattr(self.dataset, "content_sha256", None)
        return content() if content else None


class NpzSource(SampleSource):
    """``arr_0`` of an ADM-style ``.npz`` (uint8, ``(N, H, W, 3)``), read as a stream from the zip
    member, so a 50k x 256 x 256 file is never loaded whole."""

    def __init__(self, path: Union[str, Path], key: str = "arr_0", limit: Optional[int] = None):
        self.path = Path(path)
        self.member = f"{key}.npy"
        with zipfile.ZipFile(self.path) as zf, zf.open(self._find(zf)) as f:
            shape, dtype = self._header(f)
        if dtype != np.uint8 or len(shape) != 4 or shape[-1] != 3:
            raise InputError(f"{self.path}: {key} must be uint8 images shaped (N, H, W, 3), got {dtype} {shape}")
        if limit is not None:
            if limit > shape[0]:
                raise InputError(f"{self.path}: asked for {limit} samples, {key} holds only {shape[0]}")
            shape = (limit, *shape[1:])
        self.shape = shape

    def _find(self, zf: zipfile.ZipFile) -> str:
        if self.member not in zf.namelist():
            raise UnreadableFileError(f"{self.path}: no {self.member[:-4]!r} array (has {[n[:-4] for n in zf.namelist()]})")
        return self.member

    def _header(self, f) -> Tuple[tuple, np.dtype]:
        fmt = np.lib.format
        version = fmt.read_magic(f)
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read(f)
        if fortran:
            raise ValueError(f"{self.path}: Fortran-ordered arrays are not supported")
        return shape, dtype

    def __len__(self) -> int:
        return self.shape[0]

    def batches(self, start: int, stop: int, batch_size: int) -> Iterator[Batch]:
        row = int(np.prod(self.shape[1:]))
        with zipfile.ZipFile(self.path) as zf, zf.open(self.member) as f:
            self._header(f)
            f.seek(f.tell() + start * row)
            for lo in range(start, stop, batch_size):
                n = min(batch_size, stop - lo)
                data = f.read(n * row)
                if len(data) != n * row:
                    raise ValueError(f"{self.path}: {self.member} ends early (row {lo})")
                images = torch.from_numpy(np.frombuffer(data, np.uint8).reshape(n, *self.shape[1:]).copy())
                yield torch.arange(lo, lo + n), images.permute(0, 3, 1, 2).contiguous()

    def fingerprint(self) -> Optional[str]:
        from vistok.hub.download import sha256_of

        return f"{sha256_of(self.path)}:{self.member}:{len(self)}"

    def describe(self) -> Dict[str, object]:
        return {"path": str(self.path), "count": len(self), "format": "npz arr_0 uint8 NHWC",
                "image_size": list(self.shape[1:3]), "preprocessing": "none (stored pixels)"}


def open_samples(path: Union[str, Path], size: Optional[int] = None, preprocessing: str = "none",
                 num_workers: int = 0, limit: Optional[int] = None) -> SampleSource:
    """A folder of images or an ``.npz`` file of samples."""
    from vistok.metrics.eval_images import EvalImages

    path = Path(path)
    if path.is_file() and path.suffix == ".npz":
        if preprocessing != "none":
            raise ValueError(f"{path}: .npz samples are scored as stored; preprocessing must be 'none'")
        return NpzSource(path, limit=limit)
    if path.is_dir():
        return DatasetSource(EvalImages(path, size, preprocessing, limit), num_workers)
    raise FileNotFoundError(f"{path}: samples must be a folder of images or an .npz file with arr_0")
