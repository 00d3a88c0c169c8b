"""Reading clips for a codec and writing its output: checked reads (on top of
:func:`audiotok.data.load_audio`) and atomic WAV writes. Needs the ``audio`` extra."""
from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np
import torch

from audiotok.data import load_audio
from vistok.errors import InputError
from vistok.fileio import atomic_write

PathLike = Union[str, Path]


def read_clip(path: PathLike, sample_rate: int, min_samples: int = 1) -> torch.Tensor:
    """A file as a mono float32 ``(T,)`` tensor at ``sample_rate``. Errors name the file:
    FileNotFoundError when missing; ValueError when empty, unreadable, holding NaN/inf samples,
    or shorter than ``min_samples`` after resampling."""
    wav = load_audio(path, sample_rate)[0]
    if wav.numel() < min_samples:
        raise InputError(f"{path}: too short ({wav.numel()} samples at {sample_rate} Hz; "
                         f"at least {min_samples} needed)")
    return wav


def write_wav(path: PathLike, wav: torch.Tensor, sample_rate: int) -> Path:
    """Write a mono ``(T,)`` or ``(C, T)`` waveform as 32-bit float WAV (no clipping), through a
    temporary file renamed into place, so an interrupted write never leaves a partial file under ``path``."""
    import soundfile as sf

    wav = wav.detach().float().cpu()
    data = np.ascontiguousarray((wav.T if wav.dim() == 2 and wav.shape[0] > 1 else wav.reshape(-1)).numpy())
    return atomic_write(path, lambda tmp: sf.write(tmp, data, int(sample_rate), format="WAV", subtype="FLOAT"))
