"""Training options on CPU: fp16, gradient accumulation, checkpoint retention with the wandb
run config, and the FSDP export path (one process, where accelerate runs no sharding)."""
import json

import torch
from safetensors.torch import load_file

from tests.engine.conftest import REPO, run_training, train_losses
from vistok import load_tokenizer

FAKE_WANDB = '''
import json, os

def _record(kind, **kwargs):
    with open(os.environ["FAKE_WANDB_LOG"], "a") as f:
        f.write(json.dumps({"call": kind, **kwargs}) + "\\n")

class _Run:
    def log(self, values, step=None):
        _record("log", values=values, step=step)

    def finish(self):
        _record("finish")

def init(**kwargs):
    _record("init", **kwargs)
    return _Run()
'''


def _ok(result):
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def test_fp16_on_cpu(tmp_path, image_root):
    """A smoke run: fp16 loss scaling itself needs CUDA and is not exercised here."""
    _ok(run_training(tmp_path / "run", image_root, "training.precision=fp16", "training.max_steps=3"))
    losses = train_losses(tmp_path / "run")
    assert sorted(losses) == [1, 2, 3] and all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    # on CPU accelerate takes fp16 without error but computes in fp32; the run must say so
    if not torch.cuda.is_available():
        assert "training.precision=fp16 on cpu: accelerate runs fp32 here" in (tmp_path / "run/events.log").read_text()


def test_grad_accum_matches_the_larger_batch(tmp_path, image_root):
    common = ["training.max_steps=3", "training.ema_decay=0", "model.config.tail_drop=null",
              "data.random_crop=false", "data.random_flip=false", "logging.eval_every=100"]
    _ok(run_training(tmp_path / "big", image_root, *common, "data.batch_size=4", "training.grad_accum=1"))
    _ok(run_training(tmp_path / "accum", image_root, *common, "data.batch_size=2", "training.grad_accum=2"))
    big, accum = train_losses(tmp_path / "big"), train_losses(tmp_path / "accum")
    assert sorted(big) == sorted(accum) == [1, 2, 3]
    assert all(abs(big[s] - accum[s]) < 1e-5 for s in big), (big, accum)
    a = dict(load_tokenizer(tmp_path / "big/export").named_parameters())
    b = dict(load_tokenizer(tmp_path / "accum/export").named_parameters())
    assert a.keys() == b.keys()
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-4


def test_keep_last_and_wandb_config(tmp_path, image_root):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "wandb.py").write_text(FAKE_WANDB)
    calls_path = tmp_path / "wandb.jsonl"
    _ok(run_training(tmp_path / "run", image_root, "training.max_steps=8", "logging.save_every=2",
                     "logging.keep_last=2", "logging.wandb=true", "logging.log_every=4",
                     env={"PYTHONPATH": f"{shim}:{REPO}", "FAKE_WANDB_LOG": str(calls_path)}))
    kept = sorted(p.name for p in (tmp_path / "run/checkpoints").iterdir())
    assert kept == ["step-00000006", "step-00000008"]
    calls = [json.loads(line) for line in calls_path.read_text().splitlines()]
    assert [c["call"] for c in calls][0] == "init" and calls[-1]["call"] == "finish"
    config = calls[0]["config"]
    assert config["training"]["max_steps"] == 8 and config["logging"]["keep_last"] == 2
    assert config["model"]["config"]["num_latent_tokens"] == 8
    logged = [c for c in calls if c["call"] == "log" and "loss/total" in c["values"]]
    assert [c["step"] for c in logged] == [4, 8]


def test_fsdp_strategy_exports_the_trained_weights(tmp_path, image_root):
    """With one CPU process accelerate shards nothing, but the export still goes through the
    full-state-dict copy that FSDP needs; it must hold the trained weights, not the initial ones."""
    _ok(run_training(tmp_path / "run", image_root, "training.strategy=fsdp", "training.ema_decay=0",
                     "training.max_steps=4"))
    exported = load_file(str(tmp_path / "run/export/model.safetensors"))
    trained = load_file(str(tmp_path / "run/checkpoints/step-00000004/model.safetensors"))
    assert exported.keys() == trained.keys()
    assert all(torch.equal(exported[k], trained[k]) for k in exported)
