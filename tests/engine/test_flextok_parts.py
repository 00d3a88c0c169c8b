"""In-process pieces of FlexTok training: the vae objective's weighting, a whole VAE copied into
FlexTok by model.init_parts (weights and the unset scaling factor), and the VAE's export hook."""
import contextlib

import pytest
import torch

from tests.models.test_flextok import tiny_config
from vistok.engine.builders import copy_part
from vistok.engine.objectives import build_objective
from vistok.engine.recipe import load_recipe
from vistok.models.flextok import FlexTok, FlexTokVAE

VAE = dict(image_size=16, latent_channels=4, block_out_channels=[32, 32], layers_per_block=1)


def _vae(**changes):
    torch.manual_seed(0)
    return FlexTokVAE({**VAE, **changes})


@pytest.mark.slow
def test_vae_objective_weights_the_kl_per_pixel_value():
    recipe = load_recipe(None, ["model.family=flextok_vae", "loss.reconstruction=l1", "loss.reconstruction_weight=2",
                                "loss.kl_weight=0.5"])
    model = _vae().train()
    objective = build_objective(recipe, model, torch.device("cpu"))
    assert type(objective).__name__ == "VAEObjective"  # loss.kind auto -> the model's "vae"
    x = torch.rand(2, 3, 16, 16)
    torch.manual_seed(1)
    step = objective.generator_step(model, x, 0, contextlib.nullcontext)
    torch.manual_seed(1)
    out = model(x)
    l1 = (out.recon - x).abs().mean()
    kl = out.loss / (3 * 16 * 16)  # LDM sums the reconstruction over pixels; here it is a mean
    torch.testing.assert_close(step.terms["loss/kl"], kl)
    torch.testing.assert_close(step.total, 2 * l1 + 0.5 * kl)
    step.total.backward()
    assert model.autoencoder.encoder.conv_in.weight.grad.abs().sum() > 0


def test_vae_objective_refuses_a_quantized_tokenizer():
    from tests.models.test_titok import tiny_config as titok_config
    from vistok.models.titok import TiTok

    recipe = load_recipe(None, ["loss.kind=vae"])
    with pytest.raises(ValueError, match="loss.kind=vae trains KL autoencoders.*TiTok has a codebook"):
        build_objective(recipe, TiTok(titok_config(False)), torch.device("cpu"))


def test_prepare_export_measures_the_scaling_factor_once():
    vae = _vae()
    images = [torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    vae.prepare_export(iter(images))
    factor = vae.config.scaling_factor
    assert factor is not None and vae.training  # the mode it was in
    torch.manual_seed(0)
    latents = torch.cat([vae.encode(x, sample=True) for x in images])
    assert latents.std().item() == pytest.approx(1.0, rel=0.1)
    vae.prepare_export(iter([torch.zeros(2, 3, 16, 16)]))  # a factor once set is kept
    assert vae.config.scaling_factor == factor
    with pytest.raises(ValueError, match="no images"):
        _vae().prepare_export(iter([]))


def test_a_whole_vae_copied_into_flextok_brings_its_unset_scaling_factor(tmp_path):
    trained = _vae(scaling_factor=0.37, sample_posterior=True)
    trained.save_pretrained(tmp_path / "vae")
    model = FlexTok(tiny_config(vae=dict(VAE, sample_posterior=False)))
    assert model.config.vae.scaling_factor is None
    copy_part(model, "vae.", f"{tmp_path / 'vae'}:")
    assert model.config.vae.scaling_factor == 0.37 and model.vae.config.scaling_factor == 0.37
    assert model.config.vae.sample_posterior is False  # a value the recipe set is not overwritten
    for key, value in trained.state_dict().items():
        assert torch.equal(model.state_dict()[f"vae.{key}"], value)
    model.save_pretrained(tmp_path / "flextok")
    assert FlexTok.from_pretrained(tmp_path / "flextok").config.vae.scaling_factor == 0.37
    other = FlexTok(tiny_config(vae=dict(VAE)))  # a part copied with a prefix takes tensors only
    copy_part(other, "vae.autoencoder.", f"{tmp_path / 'vae'}:autoencoder.")
    assert other.config.vae.scaling_factor is None
