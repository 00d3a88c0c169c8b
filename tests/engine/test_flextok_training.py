"""FlexTok through the training engine: stage 0 (the KL VAE, loss.kind auto -> vae) trains and
exports with its latent scaling factor; stage 1 (loss.kind auto -> flow) loads that VAE through
model.init_parts, its flow loss falls, it evaluates, resumes exactly and exports the EMA copy."""
import os
import subprocess
import sys

import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.engine.conftest import REPO, metrics, train_losses
from vistok import load_tokenizer

VAE = dict(image_size=32, latent_channels=4, block_out_channels=[8, 16], layers_per_block=1, norm_num_groups=4)
COMMON = {
    "data": {"image_size": 32, "batch_size": 4, "num_workers": 0, "val_batches": 1},
    "schedule": {"name": "constant"},
    "experiment": {"deterministic": True},
    "logging": {"log_every": 1, "eval_every": 1000, "save_every": 1000, "progress": False, "keep_last": 5},
}


def _recipe(path, image_root, out_dir, model, **sections):
    recipe = {k: dict(v) for k, v in COMMON.items()}
    recipe["model"] = model
    recipe["data"].update(train=str(image_root / "train"), val=str(image_root / "val"))
    recipe["experiment"].update(output_dir=str(out_dir))
    for key, value in sections.items():
        recipe.setdefault(key, {}).update(value)
    path.write_text(yaml.safe_dump(recipe))
    return path


def _train(recipe, *overrides):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-m", "vistok.engine.train", str(recipe), *overrides],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def _flextok(vae_dir=None, **config):
    model = {"family": "flextok",
             "config": {"image_size": 32, "vae": dict(VAE), "patch_size": 2, "num_registers": 8, "encoder_dim": 32,
                        "encoder_depth": 1, "decoder_dim": 32, "decoder_depth": 2, "head_dim": 16,
                        "eval_decode_steps": 2, **config}}
    if vae_dir is None:
        model["config"]["vae"].update(scaling_factor=1.0, sample_posterior=False)
    else:
        model["init_parts"] = {"vae.": f"{vae_dir}:"}
    return model


@pytest.fixture(scope="module")
def trained_vae(tmp_path_factory, image_root):
    """A tiny FlexTok VAE trained for 60 steps by the engine (L1 + KL, no GAN)."""
    root = tmp_path_factory.mktemp("vae")
    recipe = _recipe(root / "vae.yaml", image_root, root / "run", {"family": "flextok_vae", "config": dict(VAE)},
                     loss={"reconstruction": "l1", "reconstruction_weight": 2.0, "kl_weight": 1e-3},
                     data={"batch_size": 8}, optimizer={"lr": 3e-3}, training={"max_steps": 60})
    _train(recipe)
    return root / "run"


@pytest.mark.slow
def test_vae_trains_with_kl_and_exports_its_scaling_factor(trained_vae, image_root):
    rows = [m for m in metrics(trained_vae) if "loss/kl" in m]
    for m in rows:  # the vae objective: 2 x L1 + kl_weight x KL per pixel value
        assert m["loss/total"] == pytest.approx(2.0 * m["loss/reconstruction"] + 1e-3 * m["loss/kl"], rel=1e-5)
        assert m["loss/kl"] == pytest.approx(m["stats/kl"] / (3 * 32 * 32), rel=1e-5)
    first = sum(m["loss/reconstruction"] for m in rows[:10]) / 10
    last = sum(m["loss/reconstruction"] for m in rows[-10:]) / 10
    assert last < 0.8 * first, (first, last)
    vae = load_tokenizer(trained_vae / "export").eval()
    assert vae.family == "flextok_vae" and vae.config.scaling_factor is not None
    from vistok.data.image_folder import ImageFolder

    images = torch.stack([ImageFolder(image_root / "train", 32, random_crop=False, random_flip=False)[i]
                          for i in range(16)])
    latents = vae.encode(images, sample=True, generator=torch.Generator().manual_seed(0))
    assert latents.std().item() == pytest.approx(1.0, rel=0.25)  # 1 / std measured at export: unit variance


@pytest.mark.slow
def test_flextok_loads_the_trained_vae_and_its_flow_loss_falls(trained_vae, image_root, tmp_path):
    recipe = _recipe(tmp_path / "flextok.yaml", image_root, tmp_path / "run", _flextok(trained_vae / "export"),
                     optimizer={"lr": 3e-3}, training={"max_steps": 60, "ema_decay": 0.9},
                     logging={"eval_every": 30, "save_every": 30})
    _train(recipe)
    losses = train_losses(tmp_path / "run")
    first, last = sum(losses[s] for s in range(1, 11)) / 10, sum(losses[s] for s in range(51, 61)) / 10
    assert last < 0.85 * first, (first, last)
    rows = metrics(tmp_path / "run")
    assert all("stats/keep_k" in m for m in rows if "loss/flow" in m)
    evals = [m for m in rows if "val/psnr" in m]
    assert [m["step"] for m in evals] == [30, 60] and "val/codebook_utilization" in evals[0]
    model = load_tokenizer(tmp_path / "run/export")  # the EMA copy, with the VAE inside
    vae = load_tokenizer(trained_vae / "export")
    assert model.family == "flextok" and model.config.vae.scaling_factor == vae.config.scaling_factor
    exported = load_file(str(tmp_path / "run/export/model.safetensors"))
    assert all(torch.equal(exported[f"vae.{k}"], v) for k, v in vae.state_dict().items())  # frozen
    raw = load_file(str(tmp_path / "run/checkpoints/step-00000060/model.safetensors"))
    assert not torch.equal(exported["decoder.head.weight"], raw["decoder.head.weight"])
    ids = model.encode(torch.rand(2, 3, 32, 32))
    assert ids.shape == (2, 8) and model.decode(ids[:, :3], steps=2).shape == (2, 3, 32, 32)


@pytest.mark.slow
def test_flextok_resumes_exactly(image_root, tmp_path):
    steps = {"max_steps": 6, "ema_decay": 0.9}
    straight = _recipe(tmp_path / "a.yaml", image_root, tmp_path / "straight", _flextok(cfg_dropout=0.2),
                       training=steps, logging={"save_every": 3})
    _train(straight)
    split = _recipe(tmp_path / "b.yaml", image_root, tmp_path / "split", _flextok(cfg_dropout=0.2),
                    training=steps, logging={"save_every": 3})
    _train(split, "training.max_steps=3")
    _train(split)  # experiment.resume=auto: continues from step 3
    assert "resumed at step 3" in (tmp_path / "split/events.log").read_text()
    assert train_losses(tmp_path / "split") == train_losses(tmp_path / "straight")
    a = load_file(str(tmp_path / "straight/export/model.safetensors"))
    b = load_file(str(tmp_path / "split/export/model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_missing_repa_weights_stop_the_run_before_training(image_root, tmp_path):
    model = _flextok(repa_layer=0, repa_weight=0.5, repa_dim=384, repa_encoder="vit_small_patch14_dinov2.lvd142m")
    recipe = _recipe(tmp_path / "repa.yaml", image_root, tmp_path / "run", model, training={"max_steps": 2})
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1",
               HF_HUB_CACHE=str(tmp_path / "empty_hub"))  # not cached here, whatever this machine holds
    result = subprocess.run([sys.executable, "-m", "vistok.engine.train", str(recipe)], capture_output=True,
                            text=True, env=env, timeout=600)
    assert result.returncode != 0
    assert "REPA: cannot build the teacher 'vit_small_patch14_dinov2.lvd142m'" in result.stderr
    assert "repa_weights=FILE" in result.stderr
    assert not (tmp_path / "run/metrics.jsonl").exists()  # stopped before the first step
