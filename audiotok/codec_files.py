"""What the file-based tools (``tokzoo audio``, ``eval/codec.py``) need from any audio codec: clips
read with the codec's channels, per-file codes (ids, plus the loudness scales and sample length of a
codec that normalises segments, such as EnCodec 48 kHz) and a reproducible decode of them.

A codec that ``needs_scales`` must offer ``encode_with_scales`` (-> ``(ids, scales, lengths)``)
and ``decode(ids, scales, lengths)``. A codec whose ``decode`` takes a ``generator`` (SNAC's noise
blocks) gets one generator per file seeded with ``seed``, so a file decodes the same alone or in a
batch, and from one run to the next.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import torch

from vistok.errors import InputError

PathLike = Union[str, Path]


@dataclass
class FileCodes:
    """One file's codes: ``ids`` (levels..., L) without padding; for a codec that needs them, its
    ``scales`` ``(S,)`` (one per segment) and ``samples`` (its length at the model rate)."""

    ids: torch.Tensor
    scales: Optional[torch.Tensor] = None
    samples: Optional[int] = None


def require_file_codec(model, where: str):
    """``model`` if the file tools can carry it: an ``AudioCodec`` whose ids decode alone, or one
    needing scales that offers ``encode_with_scales``; else an error naming ``where``."""
    from audiotok.models.codec import AudioCodec

    if not isinstance(model, AudioCodec):
        raise InputError(f"{where}: {type(model).__name__} is not an audiotok.models.codec.AudioCodec")
    if model.needs_scales and not hasattr(model, "encode_with_scales"):
        raise InputError(f"{where}: {model.family} needs per-segment scales but has no encode_with_scales")
    return model


def read_clip_for(model, path: PathLike) -> torch.Tensor:
    """A file at the model's rate: mono ``(T,)`` for a mono codec (channels averaged); ``(C, T)``
    for a ``C``-channel codec (a mono file is copied to every channel; another channel count is an
    error naming the file). At least one hop long."""
    from audiotok.data import _info, _resample, _soundfile
    from audiotok.io import read_clip

    rate, channels = model.sample_rate, model.channels
    if channels == 1:
        return read_clip(path, rate, min_samples=model.hop_length)
    info = _info(Path(path))
    data, _ = _soundfile().read(str(path), dtype="float32", always_2d=True)
    if data.size == 0:
        raise InputError(f"{path}: no audio samples")
    if not np.isfinite(data).all():
        raise InputError(f"{path}: contains NaN or infinite samples")
    if data.shape[1] == 1:
        data = np.repeat(data, channels, axis=1)
    elif data.shape[1] != channels:
        raise InputError(f"{path}: {data.shape[1]} channels; this {model.family} codec codes {channels} "
                         "(or a mono file, copied to each)")
    wav = torch.from_numpy(np.ascontiguousarray(_resample(data, info.samplerate, rate).T, dtype=np.float32))
    if wav.shape[-1] < model.hop_length:
        raise InputError(f"{path}: too short ({wav.shape[-1]} samples at {rate} Hz; at least {model.hop_length} needed)")
    return wav


def mono(wav: torch.Tensor) -> torch.Tensor:
    """``(T,)`` or ``(C, T)`` -> ``(T,)``, the channel mean (what the metrics score)."""
    return wav if wav.dim() == 1 else wav.mean(0)


def encode_files(model, clips: Sequence[torch.Tensor], device: str) -> List[FileCodes]:
    """One batch of clips (``(T,)`` or ``(C, T)`` each, as :func:`read_clip_for` gives) -> the codes
    of each, exactly as if alone (per-item lengths)."""
    lengths = torch.tensor([c.shape[-1] for c in clips])
    batch = torch.zeros(len(clips), *clips[0].shape[:-1], int(lengths.max()))
    for i, clip in enumerate(clips):
        batch[i, ..., : clip.shape[-1]] = clip
    batch, lengths = batch.to(device), lengths.to(device)
    out = []
    if model.needs_scales:
        codes = model.encode_with_scales(batch, lengths=lengths)
        for row, scales, n in zip(codes.ids.cpu(), codes.scales.cpu(), codes.lengths.tolist()):
            tokens = int(model.token_lengths(row[None])[0])
            out.append(FileCodes(row[..., :tokens], scales, int(n)))
        return out
    ids = model.encode(batch, lengths=lengths).cpu()
    # the codec says how many positions each item has (a codec may pad past ceil(n / hop))
    for row, n in zip(ids, model.token_lengths(ids).tolist()):
        out.append(FileCodes(row[..., :n]))
    return out


def decode_batch(model, ids: torch.Tensor, seed: int = 0, scales: Optional[torch.Tensor] = None,
                 samples: Optional[torch.Tensor] = None, **options) -> List[torch.Tensor]:
    """Padded ids ``(B, ...)`` -> each item's waveform, ``(T,)`` mono or ``(C, T)``, cut to its own
    length: ``samples`` when given (a codec with scales), else its tokens x ``hop_length`` (or what
    the decoder returned, when that is shorter)."""
    lengths = model.token_lengths(ids).tolist()
    if model.needs_scales:
        if scales is None or samples is None:
            raise InputError(f"{model.family}: decoding needs the scales and sample lengths encode wrote")
        wav = model.decode(ids, scales, samples, **options)
        cuts = [int(n) for n in samples.tolist()]
    else:
        if "generator" in inspect.signature(model.decode).parameters:
            options = dict(options, generator=[torch.Generator(ids.device).manual_seed(seed) for _ in lengths])
        wav = model.decode(ids, **options)
        cuts = [n * model.hop_length for n in lengths]
    wav = wav.float().cpu()
    if wav.dim() == 3 and wav.shape[1] == 1:
        wav = wav[:, 0]
    return [row[..., : min(n, row.shape[-1])] for row, n in zip(wav, cuts)]


def decode_file(model, codes: FileCodes, device: str, seed: int = 0, **options) -> torch.Tensor:
    """One file's codes -> its waveform at the model rate (see :func:`decode_batch`)."""
    scales = None if codes.scales is None else codes.scales[None].to(device)
    samples = None if codes.samples is None else torch.tensor([codes.samples], device=device)
    return decode_batch(model, codes.ids[None].to(device), seed, scales, samples, **options)[0]
