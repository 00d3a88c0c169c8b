"""Codec evaluation on a list of audio files, with its protocol: what ``eval/codec.py`` and the demo run.

Each file is loaded at the model's sample rate (soxr HQ when the file's rate differs), mono or with
the codec's channels (EnCodec 48 kHz: stereo, decoded with the loudness scales its encode returns;
the metrics then compare channel means), encoded to ids, decoded (a decoder that draws noise gets a
generator seeded with 0), and the reconstruction (cut to the input length) is compared with the
input: PESQ-WB (16 kHz), STOI, mel distance, SI-SDR and multi-resolution STFT distance
(:mod:`audiotok.metrics`); codebook usage is counted over all files. UTMOS and speaker similarity
are scored only from local model files (see :func:`resolve_model_metrics`).

Written to the output folder: ``results.json`` (protocol, per-file metrics, NaN-free means,
failures, codebook usage, ``model_metrics``) and ``report/`` (``report.md``, ``spectrograms/``,
``audio/``), built in a temporary folder and renamed into place, so an interrupted run leaves no
half-written results. Models run in float32 (WavTokenizer's codes change under lower precision).
"""
from __future__ import annotations

import datetime
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from audiotok import metrics as M
from audiotok.codec_files import decode_file, encode_files, mono, read_clip_for, require_file_codec
from audiotok.models.codec import AudioCodec
from vistok.models.base import require_tokenizer
from audiotok.codec_report import relative_link, write_report_md
from audiotok.data import load_audio

from vistok.fileio import atomic_write_text, replace_directory

METRICS = {
    "pesq_wb": "ITU-T P.862.2 wide-band PESQ (pesq package), both signals resampled to 16 kHz with soxr HQ",
    "stoi": "STOI (pystoi, extended=False) at the model's sample rate; a clip with fewer than 30 non-silent "
            "frames (about 0.4 s of speech) has none (counted under failures, left out of the mean)",
    "mel_distance": "mean |log mel(ref) - log mel(rec)|, n_fft 1024, hop 256, 100 HTK mels, clip 1e-7 "
                    "(WavTokenizer's validation mel loss)",
    "si_sdr": "scale-invariant SDR in dB (zero-mean signals)",
    "mrstft_distance": "spectral convergence + log-magnitude L1, STFTs (1024,120,600), (2048,240,1200), "
                       "(512,50,240), averaged",
}
#: Metrics that need a model file: description, command-line flag, environment variable.
MODEL_METRICS = {
    "utmos": ("UTMOS predicted MOS of the reconstruction (local model file, run on 16 kHz audio, soxr HQ)",
              "--utmos-model", M.UTMOS_ENV),
    "speaker_similarity": ("cosine similarity of speaker embeddings of original and reconstruction (local "
                           "model file, run on 16 kHz audio, soxr HQ)", "--speaker-model", M.SPEAKER_ENV),
}
HIGHER_IS_BETTER = {"pesq_wb": True, "stoi": True, "mel_distance": False, "si_sdr": True, "mrstft_distance": False,
                    "utmos": True, "speaker_similarity": True}


def _draws_noise(model) -> bool:
    import inspect

    return isinstance(model, AudioCodec) and "generator" in inspect.signature(model.decode).parameters


def _model_rate(model) -> int:
    model = require_tokenizer(model, "audio", type(model).__name__)
    if isinstance(model, AudioCodec):  # files are read with its channels, decoded with its scales if it needs them
        require_file_codec(model, type(model).__name__)
    return int(model.sample_rate)


def _usage_counter(model, ids: torch.Tensor) -> Optional[M.CodebookUsage]:
    size = model.codebook_size
    if size is None:
        return None
    return M.CodebookUsage(int(size), ids.shape[1] if ids.dim() == 3 else 1)


def _ids_for_usage(ids: torch.Tensor) -> torch.Tensor:
    return ids.transpose(1, 2) if ids.dim() == 3 else ids  # (B, Q, L) -> (B, L, Q): groups last


def _report_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    return "__".join(rel.parts)


def score(ref: np.ndarray, rec: np.ndarray, sample_rate: int) -> Dict[str, float]:
    """All per-file metrics of one reference / reconstruction pair (1-D arrays of equal length)."""
    return {
        "pesq_wb": M.pesq_wb(ref, rec, sample_rate, on_error="nan")[0],
        "stoi": M.stoi(ref, rec, sample_rate)[0],
        "mel_distance": M.mel_distance(ref, rec, sample_rate)[0],
        "si_sdr": M.si_sdr(ref, rec)[0],
        "mrstft_distance": M.multi_resolution_stft_distance(ref, rec)[0],
    }


def _model_metric(key: str, model_path: Optional[str], ref: np.ndarray, rec: np.ndarray, rate: int) -> float:
    if key == "utmos":
        return M.utmos(rec, rate, model_path)[0]
    return M.speaker_similarity(ref, rec, rate, model_path)[0]


def resolve_model_metrics(utmos_model: Optional[str] = None,
                          speaker_model: Optional[str] = None) -> Dict[str, Dict[str, Any]]:
    """For each of UTMOS and speaker similarity: the model file to use (the argument, else its
    environment variable), checked by running it on 1 s of silence, or the reason it is not scored
    (``reason``) when neither names a file. A named file that is missing, unreadable or fails to run
    raises, naming the flag or variable and the file."""
    out: Dict[str, Dict[str, Any]] = {}
    probe = np.zeros((1, M.PESQ_RATE))
    for key, given in (("utmos", utmos_model), ("speaker_similarity", speaker_model)):
        description, flag, env = MODEL_METRICS[key]
        chosen = str(given) if given else os.environ.get(env)
        entry: Dict[str, Any] = {"description": description, "model": None, "source": None, "reason": None}
        if not chosen:
            try:
                _model_metric(key, None, probe, probe, M.PESQ_RATE)
            except FileNotFoundError as err:
                entry["reason"] = f"not scored: no {flag} given and {env} not set. {err}"
            out[key] = entry
            continue
        source = flag if given else env
        try:
            _model_metric(key, chosen, probe, probe, M.PESQ_RATE)
        except (FileNotFoundError, ValueError) as err:
            raise type(err)(f"{source}: {err}") from None
        except Exception as err:  # the model itself failed on the probe input
            raise ValueError(f"{source}: {chosen}: the {key} model failed on 1 s of 16 kHz silence "
                             f"({type(err).__name__}: {' '.join(str(err).split())[:300]})") from None
        entry.update(model=str(Path(chosen).expanduser()), source=source)
        out[key] = entry
    return out


def _spectrogram_png(path: Path, ref: np.ndarray, rec: np.ndarray, sample_rate: int, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from audiotok.dsp import MelSpectrogram, safe_log

    mel = MelSpectrogram(sample_rate=sample_rate)
    with torch.no_grad():
        specs = [safe_log(mel(torch.from_numpy(x).float())).numpy() for x in (ref, rec)]
    lo, hi = min(s.min() for s in specs), max(s.max() for s in specs)
    lo = max(lo, hi - 12.0)  # natural-log range ~ 100 dB; quieter bins would only add noise to the picture
    seconds = len(ref) / sample_rate
    fig, axes = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True, constrained_layout=True)
    for ax, spec, label in zip(axes, specs, ("original", "reconstruction")):
        im = ax.imshow(spec, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="magma",
                       extent=(0.0, seconds, 0, spec.shape[0]))
        ax.set_ylabel(f"{label}\nmel bin")
    axes[-1].set_xlabel("time (s)")
    axes[0].set_title(title, fontsize=9)
    fig.colorbar(im, ax=axes, label="log magnitude")
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    import soundfile as sf

    sf.write(str(path), np.clip(audio, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")


def _mean(rows: List[Dict[str, Any]], key: str) -> Optional[float]:
    values = [r[key] for r in rows if r[key] is not None and not math.isnan(r[key])]
    return float(np.mean(values)) if values else None


def _atomic_json(path: Path, payload: Dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")


@torch.no_grad()
def evaluate_codec(model, files: Sequence[Path], root: Path, out_dir: Path, model_name: str,
                   device: str = "cpu", log=print, utmos_model: Optional[str] = None,
                   speaker_model: Optional[str] = None) -> Dict[str, Any]:
    """Evaluate ``model`` (``encode(wav, sample_rate) -> ids``, ``decode(ids) -> wav``,
    ``config.sample_rate``; ``config.codebook_size`` enables usage counts) on ``files`` under
    ``root`` and write ``out_dir/results.json`` and ``out_dir/report/`` (with ``report.md``).
    ``utmos_model`` / ``speaker_model``: local model files (see :func:`resolve_model_metrics`).
    Returns the results."""
    rate = _model_rate(model)
    model_metrics = resolve_model_metrics(utmos_model, speaker_model)
    scored = {k: v["model"] for k, v in model_metrics.items() if v["model"]}
    keys = list(METRICS) + list(scored)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".report."))
    rows: List[Dict[str, Any]] = []
    names: List[str] = []
    usage = None
    try:
        (staging / "spectrograms").mkdir()
        (staging / "audio").mkdir()
        for path in files:
            start = time.perf_counter()
            if isinstance(model, AudioCodec):
                clip = read_clip_for(model, path)
                codes = encode_files(model, [clip], device)[0]
                ids = codes.ids[None]
                rec_all = decode_file(model, codes, device)  # (T,) or (C, T); seeded noise, if any
                wav, rec = mono(clip)[None], mono(rec_all)[None]
            else:
                wav = load_audio(path, rate)
                ids = model.encode(wav.to(device), rate)
                rec = model.decode(ids).float().reshape(1, -1)
                rec_all = None
            if rec.shape[-1] < wav.shape[-1]:
                raise ValueError(f"{path}: the model decoded {rec.shape[-1]} samples from {wav.shape[-1]}")
            ref_np = wav[0].double().numpy()
            rec_np = rec[0, : wav.shape[-1]].cpu().double().numpy()
            if usage is None:
                usage = _usage_counter(model, ids)
            if usage is not None:
                usage.update(_ids_for_usage(ids).cpu())
            row = {"file": str(path.relative_to(root)), "seconds": len(ref_np) / rate,
                   "tokens": int(ids.shape[-1]), **score(ref_np, rec_np, rate)}
            row.update({k: _model_metric(k, p, ref_np, rec_np, rate) for k, p in scored.items()})
            row = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            name = _report_name(path, root)
            metrics_line = "  ".join(f"{k} {row[k]:.3f}" for k in keys if row[k] is not None)
            _spectrogram_png(staging / "spectrograms" / f"{name}.png", ref_np, rec_np, rate,
                             f"{row['file']}  ({model_name})\n{metrics_line}")
            _write_wav(staging / "audio" / f"{name}.wav", rec_np if rec_all is None or rec_all.dim() == 1 else
                       rec_all[:, : wav.shape[-1]].T.double().numpy(), rate)
            rows.append(row)
            names.append(name)
            log(f"[{len(rows)}/{len(files)}] {row['file']}: {metrics_line} ({time.perf_counter() - start:.1f} s)")
        results = _results(model, model_name, rate, device, root, rows, usage, keys, model_metrics)
        originals = [relative_link(Path(root) / r["file"], out_dir / "report") for r in rows]
        write_report_md(staging / "report.md", results, names, originals, keys)
        replace_directory(staging, out_dir / "report")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _atomic_json(out_dir / "results.json", results)
    return results


def _results(model, model_name: str, rate: int, device: str, root: Path, rows: List[Dict[str, Any]],
             usage, keys: Sequence[str], model_metrics: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    versions = M.metric_versions()
    channels = int(getattr(model, "channels", 1))
    return {
        "protocol": {
            "model": model_name,
            "family": model.family,
            "model_config": model.config.to_dict(),
            "sample_rate": rate,
            "channels": channels,
            "input": ("mono (channel mean), resampled to the model's sample rate with soxr HQ when needed" if channels == 1
                      else f"{channels} channels (a mono file copied to each), resampled to the model's sample rate "
                           "with soxr HQ when needed; metrics on the channel mean of input and reconstruction"),
            "reconstruction": "decode(encode(x)) cut to the input length" + (
                ", with the per-segment loudness scales encode returned" if getattr(model, "needs_scales", False)
                else "") + (", decoder noise from a generator seeded with 0" if _draws_noise(model) else ""),
            "pesq_resampling": "soxr HQ to 16 kHz",
            "precision": "float32",
            "device": str(device),
            "folder": str(root),
            "files": len(rows),
            "metrics": METRICS,
            "higher_is_better": HIGHER_IS_BETTER,
            "versions": versions,
            "tokzoo_version": versions.get("tokzoo"),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        },
        "mean": {k: _mean(rows, k) for k in keys},
        "failures": {k: sum(r[k] is None for r in rows) for k in keys},
        "model_metrics": model_metrics,
        "codebook": usage.compute(sync=False) if usage is not None else None,
        "files": rows,
    }
