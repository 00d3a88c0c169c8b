"""What the DAC and SNAC demo-recipe tests share: two fixed 0.2 s speech clips (so every step trains
on the same batch and the mel loss is not swamped by crop-to-crop differences), a short run of a
train/demo recipe in its own process, a run resumed from that run's middle checkpoint, and the
checks both codecs must pass (the mel loss falls, every sub-discriminator steps, resume is exact)."""
import os
import subprocess
import sys
from pathlib import Path

import soundfile as sf
import torch
from safetensors.torch import load_file

from tests.engine.conftest import REPO, metrics

RATE = 24000  # the bundled clips' rate, the demo recipes' rate
CLIP_SECONDS = 0.2
STEPS, MIDDLE = 12, 8
RUN = ["data.batch_size=2", "data.num_workers=0", "data.val_batches=1", f"data.segment_seconds={CLIP_SECONDS}",
       f"training.max_steps={STEPS}", "logging.save_every=4", "logging.keep_last=0", f"logging.eval_every={STEPS}",
       "logging.log_every=1", "logging.progress=false", "experiment.deterministic=true"]


def write_clips(root: Path) -> Path:
    """Two clips of exactly ``CLIP_SECONDS`` cut from tests/assets/audio (crops of them are the whole clip)."""
    root.mkdir(parents=True, exist_ok=True)
    n = int(CLIP_SECONDS * RATE)
    for i, (name, start) in enumerate((("ending_bar-x-suckano.flac", 6000), ("pavement_k1-chob-3.flac", 12000))):
        wav, rate = sf.read(str(REPO / "tests/assets/audio" / name), dtype="float32")
        assert rate == RATE
        sf.write(str(root / f"{i}.flac"), wav[start:start + n], RATE)
    return root


def train(recipe: str, clips: Path, out: Path, *overrides: str) -> None:
    args = [sys.executable, "-m", "vistok.engine.train", str(REPO / recipe), *RUN, f"data.train={clips}",
            f"data.val={clips}", f"experiment.output_dir={out}", *overrides]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    res = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]


def train_and_resume(recipe: str, root: Path, *overrides: str):
    """``STEPS`` steps straight (checkpoints every 4), then the same run resumed in another folder
    from the straight run's step-``MIDDLE`` checkpoint; returns both output folders."""
    clips = write_clips(root / "clips")
    straight, resumed = root / "straight", root / "resumed"
    train(recipe, clips, straight, *overrides)
    train(recipe, clips, resumed, *overrides, f"experiment.resume={checkpoint(straight, MIDDLE)}")
    return straight, resumed


def checkpoint(out: Path, step: int) -> Path:
    return out / "checkpoints" / f"step-{step:08d}"


def steps(out: Path):
    return [m for m in metrics(out) if "loss/total" in m]


def assert_mel_falls(out: Path, ratio: float = 0.9) -> None:
    """The mean multi-scale log-mel loss of the last two steps is below ``ratio`` x that of the first two
    (the runs here: DAC 0.68, SNAC 0.81; with the generator's learning rate at 1e-12, 0.96 and 1.0)."""
    mel = [m["loss/logmel"] for m in steps(out)]
    assert len(mel) == STEPS
    assert sum(mel[-2:]) < ratio * sum(mel[:2]), mel


def assert_every_discriminator_steps(out: Path, name: str, count: int) -> None:
    """Each of the ``count`` sub-discriminators of ``name`` has weights that changed between the
    step-4 and the last checkpoint (the discriminators are the second prepared module)."""
    first, last = (load_file(str(checkpoint(out, s) / "model_1.safetensors")) for s in (4, STEPS))
    assert first.keys() == last.keys()
    prefix = f"{name}.discriminators."
    subs = sorted({k[len(prefix):].split(".")[0] for k in first if k.startswith(prefix)}, key=int)
    assert subs == [str(i) for i in range(count)], subs
    for sub in subs:
        keys = [k for k in first if k.startswith(f"{prefix}{sub}.")]
        assert any(not torch.equal(first[k], last[k]) for k in keys), f"{name} sub-discriminator {sub} did not step"


def assert_resumed_exactly(straight: Path, resumed: Path) -> None:
    """The resumed run logs the straight run's losses for the steps after ``MIDDLE`` and ends with the
    same generator, discriminator and optimiser states."""
    after = [m for m in steps(straight) if m["step"] > MIDDLE]
    again = steps(resumed)
    assert [m["step"] for m in again] == list(range(MIDDLE + 1, STEPS + 1))
    for a, b in zip(after, again):
        assert {k: v for k, v in a.items() if k != "steps_per_s"} == {k: v for k, v in b.items() if k != "steps_per_s"}
    for name in ("model.safetensors", "model_1.safetensors"):
        a, b = (load_file(str(checkpoint(out, STEPS) / name)) for out in (straight, resumed))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    for name in ("optimizer.bin", "optimizer_1.bin"):
        a, b = (torch.load(checkpoint(out, STEPS) / name, weights_only=True) for out in (straight, resumed))
        assert _same(a, b), name


def _same(a, b) -> bool:
    """Nested state (dicts, lists, tensors, numbers) equal, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(_same, a, b))
    return a == b
