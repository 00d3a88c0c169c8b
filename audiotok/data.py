"""Audio for codec training: files loaded with soundfile, down-mixed to mono, resampled with soxr,
and a map-style dataset of fixed-length segments whose offsets are a pure function of
(seed, epoch, index), so a resumed run cuts exactly the same segments.

Needs the ``audio`` extra (``soundfile``, ``soxr``)."""
from __future__ import annotations

import math
import operator
import os
from pathlib import Path
from typing import List, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from vistok.data.files import list_files
from vistok.data.seeding import make_generator
from vistok.errors import InputError, UnreadableFileError

PathLike = Union[str, Path]

_PAD = 1024  # native-rate samples read on each side of a partial read, so resampling has no edge


def _soundfile():
    try:
        import soundfile
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("audio loading needs soundfile and soxr: pip install 'tokzoo[audio]'") from None
    return soundfile


def _resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return x
    try:
        import soxr
    except ImportError:  # pragma: no cover
        raise ImportError("audio resampling needs soxr: pip install 'tokzoo[audio]'") from None
    return soxr.resample(x, rate, target, quality="HQ")


def audio_extensions() -> Tuple[str, ...]:
    """Extensions ``AudioFolder`` collects: wav, flac, ogg, and mp3 when this libsndfile reads it."""
    exts = ("wav", "flac", "ogg")
    return exts + ("mp3",) if "MP3" in _soundfile().available_formats() else exts


def _info(path: Path):
    sf = _soundfile()
    if not path.is_file():
        if os.path.lexists(path):  # a folder, a device, a FIFO (opening one could block), a symlink loop
            raise UnreadableFileError(f"{path}: not a regular file")
        raise FileNotFoundError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise UnreadableFileError(f"{path}: empty file")
    try:
        info = sf.info(str(path))
    except (RuntimeError, TypeError, ValueError) as err:  # LibsndfileError is a RuntimeError
        raise UnreadableFileError(f"{path}: not audio soundfile can read ({' '.join(str(err).split())})") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise UnreadableFileError(f"{path}: no audio samples")
    return info


def _read_mono(path: Path, start: int = 0, frames: int = -1) -> np.ndarray:
    """float32 mono samples ``[start, start + frames)`` at the file's own rate, checked finite."""
    try:
        data, _ = _soundfile().read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
    except (RuntimeError, TypeError, ValueError) as err:
        raise UnreadableFileError(f"{path}: not audio soundfile can read ({' '.join(str(err).split())})") from None
    if data.size == 0:
        raise UnreadableFileError(f"{path}: no audio samples")
    if not np.isfinite(data).all():
        raise InputError(f"{path}: contains NaN or infinite samples")
    return np.ascontiguousarray(data.mean(axis=1, dtype=np.float32))


def load_audio(path: PathLike, sample_rate: int) -> torch.Tensor:
    """The whole file as a ``(1, T)`` float32 tensor: channels averaged to mono, resampled with
    soxr (HQ) to ``sample_rate`` when the file's rate differs. Raises FileNotFoundError for a
    missing file and ValueError naming the file when it is empty, unreadable, has no samples, or
    has NaN/inf samples."""
    path = Path(path)
    info = _info(path)
    mono = _resample(_read_mono(path), info.samplerate, int(sample_rate))
    return torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32))[None]


class AudioFolder(Dataset):
    """Fixed-length mono segments from every audio file under ``root`` (recursive; .wav .flac .ogg,
    and .mp3 when libsndfile reads it; any case; hidden files skipped; sorted by relative path).

    Item ``i`` is a ``(1, segment_samples)`` float32 tensor, ``segment_samples =
    round(segment_seconds * sample_rate)``, at ``sample_rate`` (mono, soxr-resampled). A file
    longer than the segment is cut at a random offset (``random_crop``; drawn from a generator
    seeded with ``(seed, epoch, i)``, never from global RNG state; call ``set_epoch`` each epoch)
    or at its center; a shorter one is zero-padded at the end. With ``return_length`` the item is
    ``(audio, valid)`` where ``valid`` is the number of real (unpadded) samples; ``valid_length(i)``
    gives it too. Long files are read partially (only the segment plus a margin for the resampler).

    Raises FileNotFoundError for a missing ``root``, ValueError naming ``root`` and the extensions
    when it holds no audio, and ValueError naming the file for an unreadable, empty or NaN/inf file."""

    def __init__(self, root: PathLike, sample_rate: int, segment_seconds: float, random_crop: bool = True,
                 seed: int = 0, return_length: bool = False):
        if int(sample_rate) <= 0 or not float(segment_seconds) > 0:
            raise InputError(f"sample_rate and segment_seconds must be positive, got {sample_rate}, {segment_seconds}")
        self.root = Path(root)
        self.sample_rate = int(sample_rate)
        self.segment_seconds = float(segment_seconds)
        self.segment_samples = max(1, round(self.segment_seconds * self.sample_rate))
        self.random_crop = bool(random_crop)
        self.seed = int(seed)
        self.return_length = bool(return_length)
        self.epoch = 0
        self.paths: List[Path] = list_files(self.root, audio_extensions(), what="audio files")

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose segment offsets ``__getitem__`` uses."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.paths)

    def _index(self, index: int) -> int:
        index = operator.index(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} audio files under {self.root}")
        return index % len(self)

    def _offset(self, index: int, span: int) -> int:
        """An offset in ``[0, span]``: random from (seed, epoch, index), or the middle."""
        if span <= 0:
            return 0
        if not self.random_crop:
            return span // 2
        generator = make_generator(self.seed, self.epoch, index)
        return int(torch.randint(0, span + 1, (1,), generator=generator))

    def segment(self, index: int) -> Tuple[torch.Tensor, int]:
        """``(audio, valid)`` for item ``index``; see the class docstring."""
        index = self._index(index)
        path = self.paths[index]
        info = _info(path)
        rate, target, seg = info.samplerate, self.sample_rate, self.segment_samples
        step = rate // math.gcd(rate, target)  # native offsets on this grid map to whole target samples
        seg_native = math.ceil(seg * rate / target)
        if info.frames > seg_native + 2 * _PAD + step:  # long: read only the segment and a margin
            start = self._offset(index, (info.frames - seg_native) // step) * step
            lo = max(0, start - _PAD)
            hi = min(info.frames, start + seg_native + _PAD)
            chunk = _resample(_read_mono(path, lo, hi - lo), rate, target)
            first = (start - lo) * target // rate
            wave = chunk[first:first + seg]
        else:
            wave = _resample(_read_mono(path), rate, target)
            start = self._offset(index, len(wave) - seg)
            wave = wave[start:start + seg]
        valid = len(wave)
        out = torch.zeros(1, seg, dtype=torch.float32)
        out[0, :valid] = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
        return out, valid

    def valid_length(self, index: int) -> int:
        """Real (unpadded) samples in item ``index``."""
        return self.segment(index)[1]

    def __getitem__(self, index: int):
        audio, valid = self.segment(index)
        return (audio, valid) if self.return_length else audio

    def __repr__(self) -> str:
        return (f"AudioFolder({str(self.root)!r}, {len(self)} files, sample_rate={self.sample_rate}, "
                f"segment_samples={self.segment_samples}, random_crop={self.random_crop}, seed={self.seed})")


def recipe_dataset(recipe, root: str, train: bool) -> "AudioFolder":
    """``data.kind: audio`` for the training engine: segments of ``data.segment_seconds`` at
    ``data.sample_rate``, cut at random offsets when training and at the centre for evaluation."""
    cfg = recipe.data
    return AudioFolder(root, cfg.sample_rate, cfg.segment_seconds, random_crop=train, seed=recipe.experiment.seed)
