"""Evaluate an audio codec on a folder of audio files.

    python eval/codec.py MODEL FOLDER --out DIR [--max-files N] [--device cpu|cuda]

MODEL is anything ``vistok.hub.loading.load_tokenizer`` accepts (a ``save_pretrained`` directory, a
zoo name, an ``org/name`` repo). Every audio file under FOLDER (wav, flac, ogg; recursive, sorted) is
loaded as mono at the model's sample rate (soxr HQ when the file's rate differs), encoded to ids,
decoded, and the reconstruction (cut to the input length) is compared with the input:
PESQ-WB (16 kHz), STOI, mel distance, SI-SDR and multi-resolution STFT distance
(:mod:`audiotok.metrics`); codebook usage is counted over all files.

Written to DIR:

- ``results.json``: the protocol (model, sample rate, resampling, precision, package versions),
  per-file metrics, their means (NaN-free: a file PESQ cannot score is counted under ``failures``)
  and codebook usage;
- ``report/spectrograms/<file>.png``: log-mel spectrograms, original above reconstruction;
- ``report/audio/<file>.wav``: the reconstructions (16-bit PCM, clipped to [-1, 1]).

The report is built in a temporary folder inside DIR and renamed into place (replacing an older
``report/``), and ``results.json`` is written under a temporary name and renamed, so an interrupted
run leaves no half-written results. Models run in float32 (WavTokenizer's codes change under
lower precision).
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from audiotok import metrics as M
from audiotok.data import audio_extensions, load_audio
from vistok.data.files import list_files

METRICS = {
    "pesq_wb": "ITU-T P.862.2 wide-band PESQ (pesq package), both signals resampled to 16 kHz with soxr HQ",
    "stoi": "STOI (pystoi, extended=False) at the model's sample rate",
    "mel_distance": "mean |log mel(ref) - log mel(rec)|, n_fft 1024, hop 256, 100 HTK mels, clip 1e-7 "
                    "(WavTokenizer's validation mel loss)",
    "si_sdr": "scale-invariant SDR in dB (zero-mean signals)",
    "mrstft_distance": "spectral convergence + log-magnitude L1, STFTs (1024,120,600), (2048,240,1200), "
                       "(512,50,240), averaged",
}
HIGHER_IS_BETTER = {"pesq_wb": True, "stoi": True, "mel_distance": False, "si_sdr": True, "mrstft_distance": False}


def _model_rate(model) -> int:
    config = getattr(model, "config", None)
    rate = getattr(config, "sample_rate", None)
    if rate is None:
        raise TypeError(f"{type(model).__name__}: a codec needs config.sample_rate")
    return int(rate)


def _usage_counter(model, ids: torch.Tensor) -> Optional[M.CodebookUsage]:
    size = getattr(getattr(model, "config", None), "codebook_size", None)
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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _replace_dir(staging: Path, target: Path) -> None:
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old."))
        os.replace(target, old / target.name)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, target)


@torch.no_grad()
def evaluate_codec(model, files: Sequence[Path], root: Path, out_dir: Path, model_name: str,
                   device: str = "cpu", log=print) -> Dict[str, Any]:
    """Evaluate ``model`` (``encode(wav, sample_rate) -> ids``, ``decode(ids) -> wav``,
    ``config.sample_rate``; ``config.codebook_size`` enables usage counts) on ``files`` under
    ``root`` and write ``out_dir/results.json`` and ``out_dir/report/``. Returns the results."""
    rate = _model_rate(model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".report."))
    rows: List[Dict[str, Any]] = []
    usage = None
    try:
        (staging / "spectrograms").mkdir()
        (staging / "audio").mkdir()
        for path in files:
            start = time.perf_counter()
            wav = load_audio(path, rate)
            ids = model.encode(wav.to(device), rate)
            rec = model.decode(ids).float().reshape(1, -1)
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
            row = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            name = _report_name(path, root)
            metrics_line = "  ".join(f"{k} {row[k]:.3f}" for k in METRICS if row[k] is not None)
            _spectrogram_png(staging / "spectrograms" / f"{name}.png", ref_np, rec_np, rate,
                             f"{row['file']}  ({model_name})\n{metrics_line}")
            _write_wav(staging / "audio" / f"{name}.wav", rec_np, rate)
            rows.append(row)
            log(f"[{len(rows)}/{len(files)}] {row['file']}: {metrics_line} ({time.perf_counter() - start:.1f} s)")
        _replace_dir(staging, out_dir / "report")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    versions = M.metric_versions()
    results = {
        "protocol": {
            "model": model_name,
            "family": getattr(model, "family", type(model).__name__),
            "model_config": model.config.to_dict() if hasattr(model.config, "to_dict") else None,
            "sample_rate": rate,
            "input": "mono (channel mean), resampled to the model's sample rate with soxr HQ when needed",
            "reconstruction": "decode(encode(x)) cut to the input length",
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
        "mean": {k: _mean(rows, k) for k in METRICS},
        "failures": {k: sum(r[k] is None for r in rows) for k in METRICS},
        "codebook": usage.compute(sync=False) if usage is not None else None,
        "files": rows,
    }
    _atomic_json(out_dir / "results.json", results)
    return results


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="save_pretrained directory, zoo name or org/name repo")
    parser.add_argument("folder", type=Path, help="folder of audio files (searched recursively)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (results.json, report/)")
    parser.add_argument("--max-files", type=int, default=None, help="evaluate only the first N files")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if args.max_files is not None and args.max_files < 1:
        parser.error("--max-files must be at least 1")

    from vistok.hub.loading import load_tokenizer

    files = list_files(args.folder, audio_extensions(), what="audio files")[: args.max_files]
    model = load_tokenizer(args.model, device=args.device)
    results = evaluate_codec(model, files, args.folder, args.out, str(args.model), args.device)
    means = "  ".join(f"{k} {v:.3f}" for k, v in results["mean"].items() if v is not None)
    print(f"{len(files)} files, mean: {means}")
    print(f"wrote {args.out / 'results.json'} and {args.out / 'report'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
