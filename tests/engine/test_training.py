"""The training engine end to end on CPU: learning, exact resume after SIGKILL, non-finite
steps, GAN + perceptual losses, bf16 autocast, and export."""
import hashlib
import signal
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from tests.engine.conftest import metrics, run_training, train_losses
from vistok import load_tokenizer


def _ok(result):
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def test_tiny_tokenizer_learns_and_exports(tmp_path, image_root):
    _ok(run_training(tmp_path / "run", image_root, "training.max_steps=40", "logging.eval_every=20",
                     "training.ema_decay=0.9"))
    losses = train_losses(tmp_path / "run")
    first, last = sum(losses[s] for s in range(1, 6)) / 5, sum(losses[s] for s in range(36, 41)) / 5
    assert last < 0.7 * first, (first, last)
    evals = [m for m in metrics(tmp_path / "run") if "val/psnr" in m]
    assert [m["step"] for m in evals] == [20, 40] and evals[-1]["val/psnr"] > evals[0]["val/psnr"] - 1.0
    assert "val/codebook_utilization" in evals[-1]
    assert (tmp_path / "run/samples/step-00000040.png").is_file()
    assert (tmp_path / "run/recipe.yaml").read_text().count("max_steps: 40") == 1
    assert list((tmp_path / "run/tensorboard").iterdir())
    model = load_tokenizer(tmp_path / "run/export")  # the EMA copy, as save_pretrained
    assert model.config.num_latent_tokens == 8 and model.perturbation is None
    ema = load_file(str(tmp_path / "run/export/model.safetensors"))
    raw = load_file(str(tmp_path / "run/checkpoints/step-00000040/model.safetensors"))
    assert not torch.equal(ema["decoder.conv_out.weight"], raw["decoder.conv_out.weight"])


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path, image_root):
    steps = ["training.max_steps=24", "logging.save_every=2", "training.ema_decay=0.9",
             "model.config.tail_drop=uniform"]
    _ok(run_training(tmp_path / "straight", image_root, *steps))
    proc = run_training(tmp_path / "killed", image_root, *steps, background=True)
    first = tmp_path / "killed/checkpoints/step-00000004/COMPLETE"
    deadline = time.time() + 120
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    _ok(run_training(tmp_path / "killed", image_root, *steps))  # resume=auto
    assert train_losses(tmp_path / "killed") == train_losses(tmp_path / "straight")
    a = load_file(str(tmp_path / "straight/export/model.safetensors"))
    b = load_file(str(tmp_path / "killed/export/model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _hash_dir(path: Path) -> str:
    digest = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f.name.encode() + f.read_bytes())
    return digest.hexdigest()


def test_non_finite_steps_are_skipped_then_training_stops(tmp_path, image_root):
    _ok(run_training(tmp_path / "run", image_root, "training.max_steps=4"))
    good = tmp_path / "run/checkpoints/step-00000004"
    before = _hash_dir(good)
    # a weight finite in the recipe (NaN/inf are refused there) that overflows float32: every loss is inf
    result = run_training(tmp_path / "run", image_root, "training.max_steps=8", "loss.reconstruction_weight=1e39",
                          "training.max_bad_steps=3")
    assert result.returncode == 2
    assert "3 consecutive steps had a non-finite loss" in result.stderr and "step-00000004" in result.stderr
    assert _hash_dir(good) == before
    assert sorted(p.name for p in (tmp_path / "run/checkpoints").iterdir()) == ["step-00000004"]
    assert (tmp_path / "run/events.log").read_text().count("non-finite loss, step skipped") == 3


def test_non_finite_discriminator_loss_skips_the_discriminator_step(tmp_path, image_root):
    # A LeCam weight that overflows float32 makes only the discriminator loss non-finite; the generator steps.
    result = run_training(tmp_path / "run", image_root, "training.max_steps=8", "loss.adversarial.weight=0.1",
                          "loss.adversarial.channels=16", "loss.adversarial.norm=group",
                          "loss.adversarial.lecam_weight=1e39", "training.max_bad_steps=3")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "3 consecutive steps had a non-finite loss" in result.stderr
    events = (tmp_path / "run/events.log").read_text()
    assert events.count("non-finite discriminator loss, discriminator step skipped") == 3
    records = {m["step"]: m for m in metrics(tmp_path / "run") if "loss/total" in m}
    assert sorted(records) == [1, 2]  # the generator stepped; the third bad step stopped the run
    assert all("loss/discriminator" not in m and torch.isfinite(torch.tensor(m["loss/total"]))
               for m in records.values())


def test_gan_perceptual_and_perturbation_losses_train(tmp_path, image_root):
    no_weights = {"TORCH_HOME": str(tmp_path / "empty_torch_home")}  # no torchvision trunk: a random LPIPS
    result = _ok(run_training(
        tmp_path / "run", image_root, "training.max_steps=6", "loss.perceptual_weight=0.1",
        "loss.perceptual_allow_random=true",
        "loss.adversarial.weight=0.1", "loss.adversarial.start_step=3", "loss.adversarial.lecam_weight=0.001",
        "loss.adversarial.norm=group", "loss.adversarial.channels=32", "loss.adversarial.adaptive=true",
        "perturbation.alpha=0.5", "perturbation.beta=0.5", "perturbation.delta=4", "perturbation.progress=step",
        env=no_weights))
    records = {m["step"]: m for m in metrics(tmp_path / "run") if "loss/total" in m}
    assert "loss/discriminator" not in records[3] and "loss/discriminator" in records[4]
    assert all(torch.isfinite(torch.tensor(m["loss/total"])) for m in records.values())
    assert records[6]["loss/perceptual"] > 0
    assert "RANDOM" in (tmp_path / "run/events.log").read_text() + result.stderr  # the run says so


def test_a_random_perceptual_network_is_refused_unless_asked_for(tmp_path, image_root):
    result = run_training(tmp_path / "run", image_root, "training.max_steps=2", "loss.perceptual_weight=0.1",
                          env={"TORCH_HOME": str(tmp_path / "empty_torch_home")})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert "loss.perceptual_net=vgg" in line and "vgg16-397923af.pth" in line and "perceptual_allow_random" in line
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_bf16_autocast_on_cpu(tmp_path, image_root):
    _ok(run_training(tmp_path / "run", image_root, "training.precision=bf16", "training.max_steps=3"))
    losses = train_losses(tmp_path / "run")
    assert len(losses) == 3 and all(v == v for v in losses.values())


def test_bad_recipe_key_fails_with_a_suggestion(tmp_path, image_root):
    result = run_training(tmp_path / "run", image_root, "training.learning_rate=1")
    assert result.returncode == 2
    assert "unknown key 'training.learning_rate'; did you mean 'optimizer.lr'" in result.stderr
    assert not (tmp_path / "run").exists()


def test_trains_from_tar_shards(tmp_path, image_root):
    """data.kind=shards (the published recipes' ImageNet layout): webdataset-style tars, brace pattern."""
    import tarfile

    shards = tmp_path / "shards"
    shards.mkdir()
    images = sorted((image_root / "train").glob("*.png"))
    for s in range(2):
        with tarfile.open(shards / f"train-{s:04d}.tar", "w") as tar:
            for path in images[s::2]:
                tar.add(path, arcname=f"{path.stem}.png")
    res = run_training(tmp_path / "run", image_root, "data.kind=shards",
                       f"data.train={shards}/train-{{0000..0001}}.tar", f"data.val={shards}/train-0000.tar",
                       "training.max_steps=4")
    assert res.returncode == 0, res.stderr[-3000:]
    assert len(train_losses(tmp_path / "run")) == 4
    assert any("val/psnr" in m for m in metrics(tmp_path / "run"))  # held-out batches read from a shard
