"""A tiny WavTokenizer-style codec trains through the shared engine on real speech: the mel loss
falls, the three discriminators train (published DAC behaviour), and the export loads."""
import math
import os
import statistics
import subprocess
import sys

import pytest

from tests.engine.conftest import REPO, metrics
from vistok import load_tokenizer

TINY_CODEC = [
    "model.config.strides=[2, 3]", "model.config.n_filters=4", "model.config.dim=16", "model.config.codebook_size=32",
    "model.config.decoder_dim=32", "model.config.decoder_intermediate_dim=48", "model.config.decoder_layers=2",
    "model.config.norm_groups=4", "model.config.lstm_layers=1", "model.config.kmeans_iters=5",
    # A fast codebook EMA so dead codes are respawned within a few dozen steps (at 0.99 a tiny run
    # collapses onto one code before any code counts as dead).
    "model.config.ema_decay=0.8",
    "data.segment_seconds=0.1", "data.batch_size=2", "data.num_workers=0", "data.val_batches=1",
    "loss.audio.mel_n_fft=256", "loss.audio.mel_hop=64", "loss.audio.mel_bins=32",
    "optimizer.lr=3e-4", "schedule.name=constant", "experiment.deterministic=true",
    "logging.log_every=1", "logging.progress=false", "logging.keep_last=1",
]


def run(out, *overrides):
    speech = REPO / "tests/assets/audio"
    args = [sys.executable, "-m", "vistok.engine.train", str(REPO / "train/demo/wavtokenizer_tiny.yaml"), *TINY_CODEC,
            f"data.train={speech}", f"data.val={speech}", f"experiment.output_dir={out}", *overrides]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)


def test_codec_mel_loss_falls(tmp_path):
    res = run(tmp_path / "run", "training.max_steps=60", "logging.eval_every=60", "logging.save_every=60")
    assert res.returncode == 0, res.stderr[-3000:]
    mel = [m["loss/mel"] for m in metrics(tmp_path / "run") if "loss/mel" in m]
    assert len(mel) == 60 and statistics.median(mel[-10:]) < 0.7 * statistics.median(mel[:10]), mel
    codec = load_tokenizer(tmp_path / "run/export")
    assert codec.family == "wavtokenizer" and codec.config.hop_length == 6


@pytest.mark.slow
def test_codec_trains_with_the_three_discriminators(tmp_path):
    res = run(tmp_path / "run", "training.max_steps=3", "logging.eval_every=100", "logging.save_every=100",
              "loss.adversarial.weight=1.0", "data.segment_seconds=0.2")
    assert res.returncode == 0, res.stderr[-3000:]
    steps = [m for m in metrics(tmp_path / "run") if "loss/discriminator" in m]
    assert len(steps) == 3
    for name in ("mpd", "mrd", "dac"):
        values = [m[f"gan/d_{name}"] for m in steps] + [m[f"gan/fm_{name}"] for m in steps]
        assert all(math.isfinite(v) for v in values), (name, values)
    # The trained discriminators' losses move from step to step.
    assert len({m["gan/d_mpd"] for m in steps}) == 3 and len({m["gan/d_mrd"] for m in steps}) == 3
