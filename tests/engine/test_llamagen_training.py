"""LlamaGen VQ trains through the engine with its published losses (train/demo/llamagen_tiny.yaml, shrunk):
the reconstruction falls, the PatchGAN steps from its start step on and not before, and the export loads."""
import os
import subprocess
import sys

import torch

from tests.engine.conftest import REPO, metrics
from vistok import load_tokenizer

SMALL = ["model.config.image_size=32", "model.config.codebook_size=64", "data.image_size=32", "data.batch_size=4",
         "data.num_workers=0", "loss.perceptual_allow_random=true", "loss.adversarial.start_step=64",
         "experiment.deterministic=true", "logging.log_every=1", "logging.eval_every=72", "logging.save_every=72",
         "logging.progress=false"]


def train(out_dir, image_root, tmp_path, *overrides):
    args = [sys.executable, "-m", "vistok.engine.train", str(REPO / "train/demo/llamagen_tiny.yaml"), *SMALL,
            f"data.train={image_root}/train", f"data.val={image_root}/val", f"experiment.output_dir={out_dir}",
            *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO),
           "TORCH_HOME": str(tmp_path / "no_torch_weights")}  # a random LPIPS trunk: the test needs no download
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return {m["step"]: m for m in metrics(out_dir) if "loss/total" in m}


def test_tiny_llamagen_learns_with_lpips_patchgan_and_quantizer_losses(tmp_path, image_root):
    # fixed crops, so that four epochs (16 steps of 4 of the 16 images) are compared on the same pixels
    records = train(tmp_path / "run", image_root, tmp_path, "training.max_steps=72",
                    "loss.perceptual_weight=0.1",  # a random LPIPS trunk (no weights here) at full weight slows it
                    "data.random_crop=false", "data.random_flip=false")
    rec = [records[s]["loss/reconstruction"] for s in range(1, 65)]  # before the GAN: 16 epochs of 4 steps
    first, last = sum(rec[:16]) / 16, sum(rec[-16:]) / 16
    assert last < 0.75 * first, (first, last)
    assert all(records[s]["loss/perceptual"] > 0 and records[s]["loss/quantizer"] > 0 for s in records)
    # the engine's step 64 (0-based) is the first with GAN terms: logged as step 65
    assert not any("loss/discriminator" in records[s] for s in range(1, 65))
    assert all("loss/discriminator" in records[s] and records[s]["loss/generator"] != 0 for s in range(65, 73))
    model = load_tokenizer(tmp_path / "run/export")
    assert type(model).__name__ == "LlamaGenVQ" and model.config.codebook_size == 64
    with torch.no_grad():
        ids = model.eval().encode(torch.rand(1, 3, 32, 32))
    assert ids.shape == (1, 64) and int(ids.max()) < 64


def test_published_recipe_trains_the_released_architecture_at_the_published_settings():
    from vistok.engine.recipe import load_recipe
    from vistok.hub.catalogue import get_card

    recipe = load_recipe(REPO / "train/llamagen/vq_ds16_c2i.yaml")
    assert recipe.model.config == get_card("llamagen-vq-ds16-c2i").config
    loss, adv, opt = recipe.loss, recipe.loss.adversarial, recipe.optimizer
    # vq_train.py defaults: MSE 1 on [-1, 1] (= 4 on [0, 1]), LPIPS 1, GAN 0.5 hinge from global step 20000
    assert (loss.reconstruction, loss.reconstruction_weight, loss.perceptual_net, loss.perceptual_weight) == ("l2", 4.0, "vgg", 1.0)
    assert (adv.weight, adv.start_step, adv.loss, adv.adaptive, adv.arch, adv.channels, adv.num_layers, adv.norm) == \
        (0.5, 19999, "hinge", False, "patchgan", 64, 3, "batch")
    assert (opt.name, opt.lr, opt.betas, opt.weight_decay, adv.lr) == ("adam", 1e-4, [0.9, 0.95], 0.0, 1e-4)
    assert (recipe.schedule.name, recipe.training.max_grad_norm, adv.max_grad_norm) == ("constant", 1.0, 1.0)
    assert recipe.training.max_steps == 40 * (1_281_167 // 128) and recipe.data.batch_size * 8 == 128
