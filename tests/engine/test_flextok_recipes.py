"""The FlexTok recipes: stage 0 trains the released VAE architecture with the vae objective, stage 1
the released d18-d28 architecture on that VAE's export; the demos chain the same way."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vistok.engine.objectives import build_objective
from vistok.engine.recipe import load_recipe
from vistok.hub.catalogue import get_card
from vistok.models.flextok import FlexTokConfig, FlexTokVAEConfig

REPO = Path(__file__).resolve().parents[2]
STAGE0, STAGE1 = REPO / "train/flextok/flextok_vae_c16_stage0.yaml", REPO / "train/flextok/flextok_d18_d28_in1k.yaml"


@pytest.mark.parametrize("path,card", [(STAGE0, "flextok-vae-c16"), (STAGE1, "flextok-d18-d28-in1k")])
def test_recipe_trains_the_released_architecture(path, card):
    ours = load_recipe(path).model.config
    released = get_card(card).config
    assert {k: ours[k] for k in released} == released


def test_stage1_freezes_the_stage0_export_inside_flextok():
    stage0, stage1 = load_recipe(STAGE0), load_recipe(STAGE1)
    assert stage1.model.init_parts == {"vae.": f"{stage0.experiment.output_dir}/export:"}
    vae = FlexTokVAEConfig(**stage0.model.config)
    inside = FlexTokConfig(**stage1.model.config).vae
    fields = ("image_size", "latent_channels", "block_out_channels", "layers_per_block", "norm_num_groups")
    assert all(getattr(vae, f) == getattr(inside, f) for f in fields)
    assert vae.scaling_factor is None and inside.scaling_factor is None  # measured at export, then carried
    cfg = FlexTokConfig(**stage1.model.config)
    assert cfg.repa_weight > 0 and cfg.repa_layer < cfg.decoder_depth and cfg.grid_size == 16


@pytest.mark.slow
def test_stage0_uses_the_vae_objective_with_ldm_weights():
    from vistok.models.flextok import FlexTokVAE

    recipe = load_recipe(STAGE0, ["model.config.block_out_channels=[32,32]", "loss.perceptual_weight=0"])
    objective = build_objective(recipe, FlexTokVAE(recipe.model.config), torch.device("cpu"))
    assert type(objective).__name__ == "VAEObjective" and objective.discriminator is not None
    adv = recipe.loss.adversarial
    assert (recipe.loss.kl_weight, adv.weight, adv.start_step, adv.adaptive) == (1e-6, 0.5, 50001, True)


def test_demo_recipes_chain_stage0_into_stage1():
    vae = load_recipe(REPO / "train/demo/flextok_vae_tiny.yaml")
    flextok = load_recipe(REPO / "train/demo/flextok_tiny.yaml")
    assert flextok.model.init_parts == {"vae.": f"{vae.experiment.output_dir}/export:"}
    inside = FlexTokConfig(**flextok.model.config).vae
    assert all(getattr(inside, k) == v for k, v in vae.model.config.items())
    assert "flextok-d" not in vae.experiment.name + flextok.experiment.name  # no published model's name


def _run_demo(recipe, cwd, image_root, *overrides):
    """``recipe`` from ``cwd`` (so its relative output_dir and init_parts resolve there) on the test
    image folders, 3 steps, batch 4."""
    args = [sys.executable, "-m", "vistok.engine.train", str(REPO / "train/demo" / recipe),
            f"data.train={image_root}/train", f"data.val={image_root}/val", "data.batch_size=4",
            "data.num_workers=0", "training.max_steps=3", "logging.log_every=1", "logging.eval_every=100", "logging.save_every=100",
            "logging.progress=false", *overrides]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    res = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300, cwd=cwd)
    assert res.returncode == 0, f"{recipe}: {res.stderr[-3000:]}"


@pytest.mark.slow
def test_demo_recipes_run_stage0_then_stage1(tmp_path, image_root):
    from vistok.hub.loading import load_tokenizer

    _run_demo("flextok_vae_tiny.yaml", tmp_path, image_root)
    vae = load_tokenizer(tmp_path / "outputs/train/flextok-vae-tiny-demo/export")
    assert vae.config.scaling_factor is not None and vae.config.scaling_factor > 0  # measured at export
    _run_demo("flextok_tiny.yaml", tmp_path, image_root, "model.config.eval_decode_steps=2",
              "model.config.decode_steps=2")
    flextok = load_tokenizer(tmp_path / "outputs/train/flextok-tiny-demo/export")
    assert flextok.config.vae.scaling_factor == vae.config.scaling_factor  # carried from the stage-0 export
    assert torch.equal(flextok.vae.state_dict()["autoencoder.decoder.conv_out.weight"],
                       vae.state_dict()["autoencoder.decoder.conv_out.weight"])  # the frozen VAE, unchanged
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        ids = flextok.encode(x)
        assert ids.shape == (2, 32) and flextok.decode(ids[:, :4], steps=2).shape == x.shape
