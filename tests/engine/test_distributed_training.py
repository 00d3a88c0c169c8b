"""Two processes (torchrun, gloo, CPU) train one tokenizer: replicas stay identical and one
checkpoint directory is written."""
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from tests.engine.conftest import REPO, TINY, metrics, train_losses
from vistok.engine.builders import build_scheduler
from vistok.engine.recipe import load_recipe

HELPER = REPO / "tests/helpers/ddp_train.py"


@pytest.mark.distributed
def test_two_processes_keep_identical_replicas(tmp_path, image_root):
    out = tmp_path / "run"
    overrides = [*TINY, f"data.train={image_root}/train", f"data.val={image_root}/val", f"experiment.output_dir={out}",
                 "training.max_steps=6", "logging.save_every=3", "training.ema_decay=0.9",
                 "loss.adversarial.weight=0.1", "loss.adversarial.start_step=2", "loss.adversarial.norm=batch",
                 "loss.adversarial.channels=32", "loss.adversarial.lecam_weight=0.001",
                 "schedule.name=cosine", "schedule.warmup_steps=2", "schedule.min_lr_ratio=0.1"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(HELPER),
           str(REPO / "train/demo/titok_tiny.yaml"), str(tmp_path), *overrides]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    r0, r1 = (load_file(str(tmp_path / f"rank{r}.safetensors")) for r in (0, 1))
    assert r0.keys() == r1.keys() and any(k.startswith("disc.") for k in r0)
    for key in r0:
        if "running_" in key:
            # BatchNorm statistics: DDP copies rank 0's buffers at each forward, so ranks differ
            # only by their own last update (SyncBatchNorm needs CUDA).
            torch.testing.assert_close(r0[key], r1[key], rtol=0, atol=1e-5, msg=f"{key} drifted between ranks")
        else:
            assert torch.equal(r0[key], r1[key]), f"{key} differs between ranks"
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000003", "step-00000006"]
    assert len(train_losses(out)) == 6 and (out / "export/model.safetensors").is_file()
    # One schedule step per optimizer step, whatever the number of processes.
    recipe = load_recipe(REPO / "train/demo/titok_tiny.yaml", overrides)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=recipe.optimizer.lr)
    sched = build_scheduler(opt, recipe)
    expected = []
    for _ in range(6):
        opt.step()
        sched.step()
        expected.append(sched.get_last_lr()[0])
    logged = [m["lr"] for m in metrics(out) if "lr" in m]
    assert logged == pytest.approx(expected, rel=1e-6)
