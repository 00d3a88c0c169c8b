"""Reconstruction metrics for audio codecs, one float per item.

Inputs are torch tensors or numpy arrays of shape ``(B, T)``, ``(B, 1, T)`` or ``(T,)`` (one item);
reference and estimate must have the same shape and finite samples, otherwise a ValueError says
which. Every function returns a list of floats, one per item.

- :func:`pesq_wb`: ITU-T P.862.2 wide-band PESQ (``pesq`` package) after resampling to 16 kHz with soxr.
- :func:`stoi`: STOI (``pystoi``) at the given rate (pystoi resamples to 10 kHz itself).
- :func:`mel_distance`: L1 between log-mel spectrograms, the WavTokenizer validation mel loss.
- :func:`si_sdr`: scale-invariant SDR in dB.
- :func:`multi_resolution_stft_distance`: spectral convergence + log-magnitude L1 over three STFTs.
- :func:`codebook_utilization`: usage statistics of token ids (``vistok.quant.stats.CodebookUsage``).
- :func:`utmos`, :func:`speaker_similarity`: need model files on local disk (see their docs).
"""
from __future__ import annotations

import os
import warnings
import zipfile
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from vistok.quant.stats import CodebookUsage

Audio = Union[torch.Tensor, np.ndarray, Sequence[float]]

PESQ_RATE = 16000
UTMOS_ENV = "TOKZOO_UTMOS_MODEL"
SPEAKER_ENV = "TOKZOO_SPEAKER_MODEL"


def _as_batch(x: Audio, name: str) -> np.ndarray:
    """``(B, T)`` float64 numpy copy of ``x``, checked finite and non-empty."""
    if isinstance(x, torch.Tensor):
        arr = x.detach().to("cpu", torch.float64).numpy()
    else:
        arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 3 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected audio of shape (T,), (B, T) or (B, 1, T), got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: empty audio, shape {arr.shape}")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise ValueError(f"{name}: item(s) {np.flatnonzero(bad).tolist()} contain NaN or infinite samples")
    return arr


def _pair(ref: Audio, est: Audio) -> Tuple[np.ndarray, np.ndarray]:
    r, e = _as_batch(ref, "ref"), _as_batch(est, "est")
    if r.shape != e.shape:
        raise ValueError(f"ref {r.shape} and est {e.shape} differ in shape (batch, samples); "
                         "trim or pad the reconstruction to the reference length first")
    return r, e


def _rate(sample_rate: int) -> int:
    if int(sample_rate) != sample_rate or int(sample_rate) <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    return int(sample_rate)


def resample(x: np.ndarray, sample_rate: int, target: int) -> np.ndarray:
    """soxr (HQ) resampling of ``(B, T)`` float64 rows; identity when the rates match."""
    from audiotok.data import _resample

    return x if sample_rate == target else np.stack([_resample(row, sample_rate, target) for row in x])


def pesq_wb(ref: Audio, est: Audio, sample_rate: int, on_error: str = "raise") -> List[float]:
    """Wide-band PESQ (MOS-LQO, about 1.04 to 4.64) per item, both signals resampled to 16 kHz with
    soxr (HQ). ``on_error="nan"`` returns NaN for an item PESQ cannot score (e.g. no speech found)
    instead of raising."""
    if on_error not in ("raise", "nan"):
        raise ValueError(f"on_error must be 'raise' or 'nan', got {on_error!r}")
    from pesq import pesq

    r, e = _pair(ref, est)
    rate = _rate(sample_rate)
    r, e = resample(r, rate, PESQ_RATE), resample(e, rate, PESQ_RATE)
    out = []
    for i, (a, b) in enumerate(zip(r, e)):
        try:
            out.append(float(pesq(PESQ_RATE, a, b, "wb")))
        except (RuntimeError, ValueError) as err:  # pesq's PesqError subclasses RuntimeError
            if on_error == "raise":
                raise ValueError(f"pesq_wb: item {i}: {type(err).__name__}: {err}") from None
            out.append(float("nan"))
    return out


def stoi(ref: Audio, est: Audio, sample_rate: int, extended: bool = False) -> List[float]:
    """STOI (or ESTOI with ``extended``) per item, from ``pystoi`` at ``sample_rate`` (it resamples to
    10 kHz internally). Range about 0 to 1; identical signals give 1. NaN for an item too short to
    score: pystoi needs 30 non-silent 25.6 ms frames (about 0.4 s of speech after dropping frames
    40 dB below the loudest) and otherwise returns 1e-5 with a warning, which would count as a
    catastrophic score."""
    from pystoi import stoi as _stoi

    r, e = _pair(ref, est)
    rate = _rate(sample_rate)
    scores = []
    for a, b in zip(r, e):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = float(_stoi(a, b, rate, extended=extended))
        too_short = any("Not enough STFT frames" in str(w.message) for w in caught)
        scores.append(float("nan") if too_short else value)
    return scores


def si_sdr(ref: Audio, est: Audio, eps: float = 1e-10) -> List[float]:
    """Scale-invariant SDR in dB per item (both signals made zero-mean; the reference is scaled by the
    least-squares gain onto the estimate)."""
    r, e = _pair(ref, est)
    r = r - r.mean(axis=1, keepdims=True)
    e = e - e.mean(axis=1, keepdims=True)
    gain = (e * r).sum(axis=1, keepdims=True) / ((r * r).sum(axis=1, keepdims=True) + eps)
    target = gain * r
    noise = e - target
    ratio = ((target**2).sum(axis=1) + eps) / ((noise**2).sum(axis=1) + eps)
    return [float(v) for v in 10 * np.log10(ratio)]


def mel_distance(ref: Audio, est: Audio, sample_rate: int, n_fft: int = 1024, hop_length: int = 256,
                 n_mels: int = 100) -> List[float]:
    """Mean absolute difference of natural-log mel spectrograms (magnitude, clipped at 1e-7) per item:
    WavTokenizer's validation mel loss (24 kHz defaults: n_fft 1024, hop 256, 100 HTK mels to Nyquist)."""
    from audiotok.dsp import MelSpectrogram, safe_log

    r, e = _pair(ref, est)
    if r.shape[1] <= n_fft // 2:  # the centred STFT reflect-pads n_fft // 2 samples on each side
        raise ValueError(f"mel_distance: {r.shape[1]} samples, too short for n_fft {n_fft} "
                         f"(more than {n_fft // 2} needed)")
    mel = MelSpectrogram(sample_rate=_rate(sample_rate), n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
    with torch.no_grad():
        a = safe_log(mel(torch.from_numpy(r).float()))
        b = safe_log(mel(torch.from_numpy(e).float()))
    return [float(v) for v in (a - b).abs().flatten(1).mean(dim=1)]


def multi_resolution_stft_distance(ref: Audio, est: Audio,
                                   resolutions: Optional[Sequence[Tuple[int, int, int]]] = None) -> List[float]:
    """Spectral convergence + log-magnitude L1 averaged over STFT resolutions (n_fft, hop, win),
    default Parallel WaveGAN's (1024, 120, 600), (2048, 240, 1200), (512, 50, 240): the value of
    :class:`audiotok.losses.MultiResolutionSTFTLoss` per item. 0 for identical signals."""
    from audiotok.losses import DEFAULT_STFT_RESOLUTIONS, MultiResolutionSTFTLoss

    r, e = _pair(ref, est)
    loss = MultiResolutionSTFTLoss(resolutions or DEFAULT_STFT_RESOLUTIONS)
    with torch.no_grad():
        return [float(v) for v in loss.per_item(torch.from_numpy(r), torch.from_numpy(e))]


def codebook_utilization(ids: Union[torch.Tensor, np.ndarray, Sequence[torch.Tensor]], codebook_size: int,
                         num_groups: int = 1) -> Dict[str, float]:
    """Utilization, perplexity, entropy and dead codes of token ``ids`` (one tensor or a list of them,
    e.g. one per file); see :class:`vistok.quant.stats.CodebookUsage` (use it directly to accumulate
    over a data set). Negative ids (dropped residual levels) are ignored."""
    usage = CodebookUsage(codebook_size, num_groups)
    for t in ids if isinstance(ids, (list, tuple)) else [ids]:
        usage.update(torch.as_tensor(np.asarray(t) if not isinstance(t, torch.Tensor) else t))
    return usage.compute(sync=False)


# ----- model-based metrics: weights from local files only -----

_FORMATS = ("a torch.export archive (.pt2, exported with a dynamic length dimension) or a TorchScript file "
            "(any other suffix)")
_UTMOS_HOW = (
    f"a model file that maps a (B, T) float32 batch of 16 kHz waveforms to (B,) MOS scores: {_FORMATS}. "
    "For the UTMOS22 strong learner, on a machine with network access: "
    "model = torch.hub.load('tarepan/SpeechMOS:v1.2.0', 'utmos22_strong', trust_repo=True), wrap it in a "
    "module whose forward(x) returns model(x, 16000), export that and save it. Then pass model_path= or set "
    f"{UTMOS_ENV}")
_SPEAKER_HOW = (
    f"a model file that maps a (B, T) float32 batch of 16 kHz waveforms to (B, D) speaker embeddings: {_FORMATS}. "
    "For WavLM-base-plus-sv (Hugging Face microsoft/wavlm-base-plus-sv, transformers WavLMForXVector), on a "
    "machine with network access wrap the model in a module whose forward(x) returns "
    "model(input_values=x).embeddings, export that and save it. Then pass model_path= or set "
    f"{SPEAKER_ENV}")


@lru_cache(maxsize=4)
def _load_file(path: str, mtime: float) -> Callable[[torch.Tensor], torch.Tensor]:
    if path.endswith(".pt2"):
        return torch.export.load(path).module()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated but still loads
        return torch.jit.load(path, map_location="cpu").eval()


def _local_model(model_path: Optional[Union[str, Path]], env: str, what: str,
                 how: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model file named by ``model_path`` or the environment variable ``env``; never downloads."""
    chosen = model_path or os.environ.get(env)
    if not chosen:
        raise FileNotFoundError(f"{what} needs model weights on local disk and none were given. It needs {how}.")
    path = Path(chosen).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (the {what} model). It needs {how}.")
    try:
        return _load_file(str(path), path.stat().st_mtime)
    except (RuntimeError, ValueError, zipfile.BadZipFile) as err:
        kind = "torch.export archive" if path.suffix == ".pt2" else "TorchScript archive"
        raise ValueError(f"{path}: not a {kind} ({' '.join(str(err).split())[:200]}). "
                         f"The {what} metric needs {how}.") from None


def _run_16k(model: Callable[[torch.Tensor], torch.Tensor], audio: np.ndarray, sample_rate: int) -> List[torch.Tensor]:
    x = resample(audio, _rate(sample_rate), PESQ_RATE)
    with torch.no_grad():
        return [model(torch.from_numpy(row[None]).float()).reshape(-1).float() for row in x]


def utmos(est: Audio, sample_rate: int, model_path: Optional[Union[str, Path]] = None) -> List[float]:
    """Predicted MOS (UTMOS) per item from a local model file (``model_path`` or the
    ``TOKZOO_UTMOS_MODEL`` environment variable; torch.export ``.pt2`` or TorchScript), run on 16 kHz
    audio (soxr). Nothing is downloaded: without a file a FileNotFoundError explains which file is
    needed and how to make it."""
    model = _local_model(model_path, UTMOS_ENV, "UTMOS", _UTMOS_HOW)
    scores = _run_16k(model, _as_batch(est, "est"), sample_rate)
    return [float(s.mean()) for s in scores]


def speaker_similarity(ref: Audio, est: Audio, sample_rate: int,
                       model_path: Optional[Union[str, Path]] = None) -> List[float]:
    """Cosine similarity of speaker embeddings of reference and estimate per item, from a local
    embedding model file (``model_path`` or ``TOKZOO_SPEAKER_MODEL``; torch.export ``.pt2`` or
    TorchScript), at 16 kHz (soxr). Nothing is downloaded: without a file a FileNotFoundError
    explains which file is needed."""
    model = _local_model(model_path, SPEAKER_ENV, "speaker similarity", _SPEAKER_HOW)
    r, e = _pair(ref, est)
    a, b = _run_16k(model, r, sample_rate), _run_16k(model, e, sample_rate)
    return [float(torch.nn.functional.cosine_similarity(x, y, dim=0)) for x, y in zip(a, b)]


def metric_versions() -> Dict[str, str]:
    """Versions of the packages the metrics depend on (``"missing"`` when not installed)."""
    out = {}
    for name in ("tokzoo", "torch", "numpy", "pesq", "pystoi", "soxr", "soundfile"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "missing"
    return out
