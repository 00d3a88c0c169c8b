"""Ship a tokenizer trained by a ``train/demo/`` recipe as an embedded zoo model.

    python eval/package_demo_tokenizer.py RUN_DIR --name NAME --package vistok|audiotok \\
        --commit SHA --hardware "..." [--data CORPUS] [--description "..."]

RUN_DIR is the training run's output folder (``recipe.yaml``, ``export/``). This script

1. writes the export's weights as fp16 safetensors to ``<package>/assets/weights/NAME.safetensors``;
2. writes ``zoo/NAME.yaml``: the packaged source with its sha256 pinned, the config, the recipe, the
   commit it was trained at, the data and its licence, the hardware and the training time;
3. loads NAME through the zoo (``load_tokenizer``, as a user would) and measures it on the corpus
   val split, adding the numbers with their protocol to the card (``measured``): images get PSNR /
   SSIM / rFID at several token counts and pFID; codecs get PESQ-WB / STOI / SI-SDR / mel distance.

Every file is written whole, then renamed.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, List

import torch
import yaml
from safetensors.torch import save_file

from vistok.fileio import atomic_write

REPO = Path(__file__).resolve().parents[1]
TOKEN_COUNTS = (8, 32, 128)
DATA = {
    "vistok": ("images/train", "images/val",
               "tokzoo corpus images (crops of Debian wallpapers: plasma-workspace-wallpapers, gnome-backgrounds, "
               "mate-backgrounds; Debian main, DFSG-free; each package's debian/copyright gives its licences)"),
    "audiotok": ("audio/speech/train", "audio/speech/val",
                 "tokzoo corpus speech (English voice acting from Debian's fillets-ng-data, main, DFSG-free; its "
                 "debian/copyright gives the licence), mono 24 kHz"),
}


def _write_card(path: Path, card: Dict[str, Any]) -> None:
    text = yaml.safe_dump(card, sort_keys=False, width=110)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _write_fp16(export: Path, target: Path) -> None:
    from vistok.models.state_dict import read_state_dict

    state = read_state_dict(export / "model.safetensors")
    half = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    target.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: str) -> None:
        save_file(half, tmp, metadata={"format": "pt", "storage": "fp16"})
        os.chmod(tmp, 0o644)  # package data: readable by every user of the install

    atomic_write(target, write)


def _training_seconds(run: Path) -> float:
    """From the run's resolved recipe (written at the start) to its export (written at the end)."""
    return round((run / "export" / "config.json").stat().st_mtime - (run / "recipe.yaml").stat().st_mtime, 0)


def _stages(run: Path) -> List[Path]:
    """The run and the runs it continued from, earliest first: a stage whose ``model.init`` is
    another run's ``export/`` folder follows that run."""
    chain = [run]
    while True:
        init = (yaml.safe_load((chain[0] / "recipe.yaml").read_text())["model"].get("init") or "")
        previous = (REPO / init).parent if init else None
        if previous is None or not (previous / "recipe.yaml").is_file() or Path(init).name != "export":
            return chain
        chain.insert(0, previous)


def _training_block(run: Path, commits: List[str]) -> Dict[str, Any]:
    """Recipe, commit, steps and seconds of each stage (one stage: flat, as before)."""
    stages = _stages(run)
    if len(commits) != len(stages):
        raise SystemExit(f"{run}: {len(stages)} training stage(s) ({', '.join(str(s) for s in stages)}) "
                         f"need as many --commit values, got {len(commits)}")
    rows = []
    for stage, commit in zip(stages, commits):
        recipe = yaml.safe_load((stage / "recipe.yaml").read_text())
        rows.append({"recipe": f"train/demo/{recipe['experiment']['name'].replace('-', '_')}.yaml", "commit": commit,
                     "steps": recipe["training"]["max_steps"], "seconds": _training_seconds(stage)})
    if len(rows) == 1:
        return rows[0]
    return {"recipe": " then ".join(r["recipe"] for r in rows), "commit": commits[-1],
            "steps": sum(r["steps"] for r in rows), "seconds": sum(r["seconds"] for r in rows), "stages": rows}


def _measure_images(name: str, val: Path, out: Path) -> Dict[str, Any]:
    from tokzoo.demo.images import evaluate_val
    from vistok.hub.loading import load_tokenizer

    model = load_tokenizer(name)
    results = evaluate_val(model, name, val, None, TOKEN_COUNTS, out, print)
    rfid, pfid = results["rfid"], results["pfid"]
    return {
        "val": {"by_k": [{k: p[k] for k in ("num_tokens", "psnr", "ssim", "rfid")} for p in rfid["points"]],
                "pfid_mean": pfid["metrics"]["pfid_mean"],
                "pfid_grid": [{k: p[k] for k in ("alpha", "delta", "pfid")} for p in pfid["points"]],
                "protocol": _short_protocol(rfid["protocol"], results["caveat"], pfid["protocol"]["definition"])},
    }


def _short_protocol(protocol: Dict[str, Any], caveat: str, pfid_definition: Dict[str, Any]) -> Dict[str, Any]:
    feature = protocol["feature_network"]
    return {"data": {k: protocol["dataset"].get(k) for k in ("path", "split", "count", "preprocessing_detail")},
            "data_sha256": protocol["reference"].get("content_sha256"),
            "reference": protocol["reference"].get("source"),
            "feature_network": {k: feature.get(k) for k in ("name", "layer", "weights_sha256", "weights_source")
                                if k in feature},
            "fid_method": protocol["fid_method"], "precision": protocol["precision"], "seed": 0,
            "pfid": pfid_definition["name"], "caveat": caveat,
            "tokzoo_version": protocol["environment"]["tokzoo_version"],
            "torch": protocol["environment"]["torch"]}


def _measure_speech(name: str, val: Path, out: Path) -> Dict[str, Any]:
    from audiotok.data import audio_extensions
    from audiotok.evaluation import evaluate_codec
    from vistok.data.files import list_files
    from vistok.hub.loading import load_tokenizer

    model = load_tokenizer(name)
    files = list_files(val, audio_extensions(), what="audio files")
    results = evaluate_codec(model, files, val, out, name, "cpu")
    p = results["protocol"]
    return {"val": {"mean": {k: results["mean"][k] for k in ("pesq_wb", "stoi", "si_sdr", "mel_distance")},
                    "codebook": results["codebook"],
                    "protocol": {"data": {"path": str(val), "split": "val", "count": len(files),
                                          "seconds": round(sum(r["seconds"] for r in results["files"]), 1)},
                                 "input": p["input"], "reconstruction": p["reconstruction"], "metrics": p["metrics"],
                                 "precision": p["precision"], "versions": p["versions"]}}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="the training run's output folder (recipe.yaml, export/)")
    parser.add_argument("--name", required=True)
    parser.add_argument("--package", required=True, choices=sorted(DATA))
    parser.add_argument("--commit", required=True, action="append",
                        help="the commit each stage's recipe was trained at (once per stage, earliest first)")
    parser.add_argument("--hardware", required=True, help="what it trained on, e.g. '1 thread of an AMD EPYC ...'")
    parser.add_argument("--description", required=True)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "package", help="evaluation reports")
    args = parser.parse_args()
    training = _training_block(args.run, args.commit)
    weights = REPO / args.package / "assets" / "weights" / f"{args.name}.safetensors"
    _write_fp16(args.run / "export", weights)
    record = json.loads((args.run / "export" / "config.json").read_text())
    from vistok.hub.download import sha256_of

    with torch.device("meta"):  # parameters only (buffers such as EMA codebook statistics are not counted)
        model_params = sum(p.numel() for p in _build(record).parameters())
    train_split, val_split, data_text = DATA[args.package]
    card = {
        "name": args.name, "family": record["family"], "description": args.description,
        "source": {"package": f"{args.package}:assets/weights/{weights.name}", "sha256": sha256_of(weights)},
        "license": "apache-2.0", "converter": "tokzoo", "config": record["config"],
        "params_millions": round(model_params / 1e6, 2),
        "training": {**training, "data": f"{train_split} ({data_text})", "hardware": args.hardware,
                     "storage": "fp16 safetensors (trained in fp32)",
                     "trained_here": "tokzoo's own model, not a published one; for the demo, tests and fine-tuning"},
        "notes": "Embedded default: ships inside the package, loads offline. Numbers under `measured` were taken "
                 f"here on {datetime.date.today().isoformat()} by eval/package_demo_tokenizer.py from the fp16 file.",
    }
    card_path = REPO / "zoo" / f"{args.name}.yaml"
    _write_card(card_path, card)
    os.environ.setdefault("TOKZOO_CACHE", str(args.out / "cache"))  # measure what a fresh user loads
    val = args.data / val_split
    measure = _measure_images if args.package == "vistok" else _measure_speech
    card["measured"] = json.loads(json.dumps(measure(args.name, val, args.out / args.name), default=str))
    _write_card(card_path, card)
    print(f"wrote {weights} ({weights.stat().st_size / 1e6:.1f} MB) and {card_path}")
    print(yaml.safe_dump(card["measured"], sort_keys=False))
    return 0


def _build(record: Dict[str, Any]):
    from vistok.registry import get_family

    return get_family(record["family"]).build(record["config"])


if __name__ == "__main__":
    sys.exit(main())
