"""Tiny training runs for engine tests: a temp image folder of real photo crops and a tiny
TiTok recipe, each run in its own process (accelerate keeps process-wide state)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted((REPO / "vistok/assets/samples").glob("*.jpg"))

TINY = [
    "model.family=titok", "model.config.image_size=32", "model.config.patch_size=8",
    "model.config.encoder_size={width: 32, depth: 1, heads: 2}",
    "model.config.decoder_size={width: 32, depth: 1, heads: 2}",
    "model.config.num_latent_tokens=8", "model.config.codebook_size=64", "model.config.token_size=8",
    "model.config.decoder=pixels", "model.config.legacy_reshape=false",
    "data.image_size=32", "data.batch_size=4", "data.num_workers=0", "data.val_batches=1",
    "optimizer.lr=3e-3", "schedule.name=constant", "training.max_steps=8", "training.max_grad_norm=1.0",
    "experiment.deterministic=true", "logging.log_every=1", "logging.eval_every=4", "logging.save_every=4",
    "logging.progress=false", "logging.keep_last=5",
]


@pytest.fixture(scope="session")
def image_root(tmp_path_factory):
    """train/ and val/ folders: 64x64 crops of the bundled photos (16 train, 4 val)."""
    root = tmp_path_factory.mktemp("images")
    for split, n in (("train", 16), ("val", 4)):
        (root / split).mkdir()
        for i in range(n):
            with Image.open(SAMPLES[i % len(SAMPLES)]) as img:
                img = img.convert("RGB")
                x, y = (i * 37) % (img.width - 64), (i * 53) % (img.height - 64)
                img.crop((x, y, x + 64, y + 64)).save(root / split / f"{i:03d}.png")
    return root


def run_training(out_dir, image_root, *overrides, background=False, env=None):
    args = [sys.executable, "-m", "vistok.engine.train", str(REPO / "train/demo/titok_tiny.yaml"), *TINY,
            f"data.train={image_root}/train", f"data.val={image_root}/val", f"experiment.output_dir={out_dir}",
            *overrides]
    environ = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), **(env or {})}
    if background:
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ)
    return subprocess.run(args, capture_output=True, text=True, env=environ, timeout=300)


def metrics(out_dir):
    lines = (Path(out_dir) / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def train_losses(out_dir):
    return {m["step"]: m["loss/total"] for m in metrics(out_dir) if "loss/total" in m}


def copy_tree(src, dst):
    shutil.copytree(src, dst)
