"""The tiny EnCodec recipe (train/demo/encodec_tiny.yaml: MS-STFT discriminator, waveform L1 and
multi-scale mel through the loss balancer) trains through the shared engine on real speech: the mel
loss falls, the discriminator steps once it starts, the balancer's averages are checkpointed, and
the export loads."""
import os
import statistics
import subprocess
import sys

import torch
from safetensors.torch import load_file

from tests.engine.conftest import REPO, metrics
from vistok import load_tokenizer

TINY_ENCODEC = [
    "model.config.strides=[2, 3]", "model.config.n_filters=4", "model.config.dim=16", "model.config.codebook_size=32",
    "model.config.target_bandwidths=[0.2]", "model.config.kmeans_iters=5", "model.config.ema_decay=0.8",
    "loss.audio.msstft_filters=8",
    "data.segment_seconds=0.2", "data.batch_size=2", "data.num_workers=0", "data.val_batches=1",
    "optimizer.lr=1e-3", "experiment.deterministic=true", "logging.progress=false", "logging.log_every=1",
]


def run(out, *overrides):
    speech = REPO / "tests/assets/audio"
    args = [sys.executable, "-m", "vistok.engine.train", str(REPO / "train/demo/encodec_tiny.yaml"), *TINY_ENCODEC,
            f"data.train={speech}", f"data.val={speech}", f"experiment.output_dir={out}", *overrides]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)


def _discriminator(checkpoint):
    return load_file(str(checkpoint / "model_1.safetensors"))  # the second prepared module: the discriminator


def test_encodec_tiny_trains_with_the_balancer_and_the_msstft_discriminator(tmp_path):
    # 24 reconstruction-only steps, then 24 with the discriminator (its cost dominates on a CPU)
    out = tmp_path / "run"
    res = run(out, "training.max_steps=48", "loss.adversarial.start_step=24", "logging.eval_every=48",
              "logging.save_every=8", "logging.keep_last=0")
    assert res.returncode == 0, res.stderr[-3000:]
    steps = [m for m in metrics(out) if "loss/mel" in m]
    assert len(steps) == 48
    mel = [m["loss/mel"] for m in steps]  # logged only (mel_weight 0): the balanced losses are l1 and msspec
    assert statistics.median(mel[-10:]) < 0.7 * statistics.median(mel[:10]), mel
    assert all("loss/l1" in m and "loss/msspec" in m and "balancer/scale_msspec" in m for m in steps)
    gan = [m for m in steps if "loss/discriminator" in m]
    assert len(gan) == 24 and all("balancer/ratio_adv_msstft" in m for m in gan)
    assert len({m["gan/d_msstft"] for m in gan}) > 1
    # the discriminator does not move before loss.adversarial.start_step, and steps after it
    ckpt = out / "checkpoints"
    first, before, after = (_discriminator(ckpt / f"step-{s:08d}") for s in (8, 24, 48))
    assert first.keys() == after.keys() and any(k.startswith("msstft.discriminators.4.") for k in first)
    assert all(torch.equal(first[k], before[k]) for k in first)
    assert max((first[k] - after[k]).abs().max().item() for k in first) > 0
    # the balancer's norm averages are saved with the run (the last registered object)
    saved = sorted(ckpt.glob("step-00000048/custom_checkpoint_*.pkl"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    state = torch.load(saved[-1], weights_only=True)
    assert set(state) == {"sums", "counts"} and {"l1", "msspec", "adv_msstft", "feat_msstft"} <= set(state["sums"])
    codec = load_tokenizer(out / "export")
    assert codec.family == "encodec" and codec.config.hop_length == 6
