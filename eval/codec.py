"""Evaluate an audio codec on a folder of audio files.

    python eval/codec.py MODEL FOLDER --out DIR [--max-files N] [--device cpu|cuda]
                         [--utmos-model PATH] [--speaker-model PATH]

MODEL is anything ``vistok.hub.loading.load_tokenizer`` accepts (a ``save_pretrained`` directory, a
zoo name, an ``org/name`` repo). Every audio file under FOLDER (wav, flac, ogg; recursive, sorted) is
loaded as mono at the model's sample rate (soxr HQ when the file's rate differs), encoded to ids,
decoded, and the reconstruction (cut to the input length) is compared with the input:
PESQ-WB (16 kHz), STOI, mel distance, SI-SDR and multi-resolution STFT distance
(:mod:`audiotok.metrics`); codebook usage is counted over all files. UTMOS and speaker similarity
are scored only from local model files: ``--utmos-model`` / ``--speaker-model``, else the
``TOKZOO_UTMOS_MODEL`` / ``TOKZOO_SPEAKER_MODEL`` environment variables (a torch.export ``.pt2`` or
TorchScript file, see :func:`audiotok.metrics.utmos`); without one, ``results.json`` says why
under ``model_metrics``. A file that is given but cannot be loaded or run stops the run before any
work.

Written to DIR:

- ``results.json``: the protocol (model, sample rate, resampling, precision, package versions),
  per-file metrics, their means (NaN-free: a file PESQ cannot score is counted under ``failures``),
  codebook usage and ``model_metrics`` (the UTMOS / speaker model used, or the reason there is none);
- ``report/report.md``: the means and a per-file table of metrics with links to the spectrogram,
  the reconstruction and the original file;
- ``report/spectrograms/<file>.png``: log-mel spectrograms, original above reconstruction;
- ``report/audio/<file>.wav``: the reconstructions (16-bit PCM, clipped to [-1, 1]).

The report is built in a temporary folder inside DIR and renamed into place (replacing an older
``report/``), and ``results.json`` is written under a temporary name and renamed, so an interrupted
run leaves no half-written results. Models run in float32 (WavTokenizer's codes change under
lower precision).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import torch

from audiotok import metrics as M  # noqa: F401  (re-exported for callers of this script)
from audiotok.data import audio_extensions
from audiotok.evaluation import METRICS, MODEL_METRICS, evaluate_codec, score  # noqa: F401
from vistok.data.files import list_files


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="save_pretrained directory, zoo name or org/name repo")
    parser.add_argument("folder", type=Path, help="folder of audio files (searched recursively)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (results.json, report/)")
    parser.add_argument("--max-files", type=int, default=None, help="evaluate only the first N files")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--utmos-model", metavar="PATH",
                        help=f"UTMOS model file (.pt2 or TorchScript; default: ${M.UTMOS_ENV}, else not scored)")
    parser.add_argument("--speaker-model", metavar="PATH",
                        help=f"speaker-embedding model file (.pt2 or TorchScript; default: ${M.SPEAKER_ENV}, "
                             "else not scored)")
    args = parser.parse_args(argv)
    if args.max_files is not None and args.max_files < 1:
        parser.error("--max-files must be at least 1")

    from vistok.hub.loading import load_tokenizer

    files = list_files(args.folder, audio_extensions(), what="audio files")[: args.max_files]
    model = load_tokenizer(args.model, device=args.device)
    results = evaluate_codec(model, files, args.folder, args.out, str(args.model), args.device,
                             utmos_model=args.utmos_model, speaker_model=args.speaker_model)
    means = "  ".join(f"{k} {v:.3f}" for k, v in results["mean"].items() if v is not None)
    print(f"{len(files)} files, mean: {means}")
    for key, entry in results["model_metrics"].items():
        if entry["reason"]:
            print(f"{key} {entry['reason'].split('. ')[0]}")
    print(f"wrote {args.out / 'results.json'} and {args.out / 'report'} (report.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
