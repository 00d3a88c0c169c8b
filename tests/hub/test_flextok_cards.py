"""FlexTok zoo cards: every release is catalogued at full size with its non-commercial license, and
downloading one prints that license; a checkpoint's own config completes a card's."""
import json
import warnings

import pytest
import torch
import yaml

from tests.hub.conftest import sha256
from tests.hub.test_flextok_convert import (CH, TINY_VAE, VAE_ARGS, _tiny_vae_state, official_state, official_tree,
                                            write_single_file)
from vistok.cli import main as cli
from vistok.hub.catalogue import get_card, list_cards
from vistok.registry import get_family
from vistok.models.flextok.convert import OfficialConfigError, config_from_official, resolve_card_config
from vistok.hub.download import DownloadError
from vistok.hub.loading import NonCommercialLicenseWarning, load_tokenizer

NC_LICENSE = "apple-amlr: research, non-commercial use only"

RELEASES = {"flextok-d12-d12-in1k", "flextok-d18-d18-in1k", "flextok-d18-d28-in1k", "flextok-d18-d28-dfn",
            "flextok-vae-c4", "flextok-vae-c8", "flextok-vae-c16"}


def test_every_release_has_a_card():
    assert {c.name for c in list_cards("flextok")} >= RELEASES


@pytest.mark.parametrize("name", sorted(RELEASES))
def test_card_builds_at_full_size_with_its_license(name):
    card = get_card(name)
    assert "non-commercial" in card.license and card.links.get("code") and card.reported
    with torch.device("meta"):
        model = get_family(card.family).build(card.config)
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    assert round(millions, 1) == card.params_millions, f"{name}: {millions:.1f}M"
    assert model.config.to_dict() == type(model.config)(**card.config).to_dict()


def test_published_flextok_cards_match_the_release():
    cfg = get_card("flextok-d18-d28-dfn").config
    assert (cfg["encoder_depth"], cfg["decoder_depth"], cfg["decoder_dim"], cfg["num_registers"]) == (18, 28, 1792, 256)
    assert cfg["fsq_levels"] == [8, 8, 8, 5, 5, 5] and cfg["vae"]["latent_channels"] == 16
    assert get_card("flextok-vae-c4").config["latent_channels"] == 4


def test_download_prints_the_license_and_converts(zoo, server, tmp_path, capsys):
    data_path = write_single_file(tmp_path / "m.safetensors", official_state(), official_tree())
    data = data_path.read_bytes()
    server.files["/flextok.safetensors"] = data
    config = config_from_official(official_tree(), vae_overrides=TINY_VAE).to_dict()
    card = dict(name="tiny-flextok", family="flextok", description="tiny", converter="official", config=config,
                license="apple-amlr: research, non-commercial use only",
                source=dict(url=server.url("/flextok.safetensors"), sha256=sha256(data)))
    (tmp_path / "cards" / "tiny-flextok.yaml").write_text(yaml.safe_dump(card))
    assert cli(["zoo", "download", "tiny-flextok"]) == 0
    out = capsys.readouterr().out
    assert "tiny-flextok: license: apple-amlr: research, non-commercial use only" in out
    assert f"source sha256 {sha256(data)}" in out


def test_the_checkpoint_config_completes_and_overrides_a_card(tmp_path):
    path = write_single_file(tmp_path / "m.safetensors", official_state(), official_tree(scaling=0.35))
    card_config = config_from_official(official_tree(), vae_overrides=TINY_VAE).to_dict()
    card_config["vae"]["scaling_factor"] = None  # unknown when the card was written
    card_config.update(decode_steps=20, decode_guidance=7.5, decode_apg=True, nested_dropout="uniform")
    with pytest.warns(UserWarning, match="nested_dropout: card 'uniform', checkpoint 'pow2'"):
        resolved = resolve_card_config(card_config, path, "flextok")
    assert resolved["vae"]["scaling_factor"] == 0.35 and resolved["nested_dropout"] == "pow2"
    assert (resolved["decode_steps"], resolved["decode_guidance"], resolved["decode_apg"]) == (20, 7.5, True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_card_config(resolved, path, "flextok") == resolved


def test_a_checkpoint_without_config_leaves_the_card_config(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    card_config = {"num_registers": 256, "vae": {"scaling_factor": None}}
    assert resolve_card_config(card_config, tmp_path / "plain.safetensors", "flextok") == card_config


def _safetensors(state, tmp_path, name="blob.safetensors"):
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / name))
    return (tmp_path / name).read_bytes()


def _hub_card(tmp_path, name, family, repo, filename, data, config):
    card = dict(name=name, family=family, description="tiny", converter="official", config=config, license=NC_LICENSE,
                source=dict(repo=repo, filename=filename, sha256=sha256(data)))
    (tmp_path / "cards" / f"{name}.yaml").write_text(yaml.safe_dump(card))


def _null_scaling_flextok_card(tmp_path, hf_cache, name, **changes):
    """A Hub-mixin repo (weights + config.json with scaling 0.35) in the HF cache and a card, its
    scaling_factor null, pointing at it."""
    data = _safetensors(official_state(), tmp_path)
    hf_cache(f"org/{name}", "model.safetensors", data)
    hf_cache(f"org/{name}", "config.json", json.dumps(official_tree(scaling=0.35)).encode())
    config = config_from_official(official_tree(), vae_overrides=TINY_VAE).to_dict()
    config["vae"]["scaling_factor"] = None
    config.update(changes)
    _hub_card(tmp_path, name, "flextok", f"org/{name}", "model.safetensors", data, config)


def test_a_null_scaling_card_loads_with_the_checkpoint_config_and_encodes(zoo, hf_cache, tmp_path, monkeypatch):
    _null_scaling_flextok_card(tmp_path, hf_cache, "tiny-flextok-hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.warns(NonCommercialLicenseWarning, match=f"tiny-flextok-hub: .*{NC_LICENSE}"):
        model = load_tokenizer("tiny-flextok-hub")
    assert model.config.vae.scaling_factor == 0.35 and model.config.vae.block_out_channels == [32, 32]
    x = torch.rand(2, 3, model.config.image_size, model.config.image_size) * 2 - 1
    with torch.no_grad():
        ids = model.encode(x, sample_posterior=False)
        assert ids.shape[0] == 2 and model.decode(ids[:, :2], steps=2).shape == x.shape
    with warnings.catch_warnings():  # the license is shown once per process, even when converted again
        warnings.simplefilter("error")
        load_tokenizer("tiny-flextok-hub", force_download=True)


def test_a_card_disagreeing_in_a_weight_shape_is_an_error(zoo, hf_cache, tmp_path, monkeypatch):
    _null_scaling_flextok_card(tmp_path, hf_cache, "tiny-flextok-wide", encoder_dim=64)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfficialConfigError, match="change the weights' shapes.*encoder_dim: card 64, checkpoint 32"):
        load_tokenizer("tiny-flextok-wide")


def test_a_diffusers_vae_card_reads_its_config_json(zoo, hf_cache, tmp_path, monkeypatch):
    data = _safetensors(_tiny_vae_state(seed=1), tmp_path)
    hf_cache("org/tiny-vae", "diffusion_pytorch_model.safetensors", data)
    diffusers = dict(_class_name="AutoencoderKL", in_channels=3, out_channels=3, act_fn="silu", scaling_factor=0.4,
                     **VAE_ARGS)
    hf_cache("org/tiny-vae", "config.json", json.dumps(diffusers).encode())
    config = dict(image_size=8, latent_channels=CH, block_out_channels=[32, 32], layers_per_block=1, scaling_factor=None)
    _hub_card(tmp_path, "tiny-flextok-vae", "flextok_vae", "org/tiny-vae", "diffusion_pytorch_model.safetensors",
              data, config)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vae = load_tokenizer("tiny-flextok-vae")
    assert [type(w.message) for w in caught] == [NonCommercialLicenseWarning]  # no disagreement: image_size is the card's
    assert vae.config.scaling_factor == 0.4 and vae.config.image_size == 8
    with torch.no_grad():
        x = torch.rand(1, 3, 16, 16)
        assert vae.decode(vae.encode(x, sample=False)).shape == x.shape


def test_an_uncached_sidecar_offline_is_a_clear_error(zoo, hf_cache, tmp_path, monkeypatch):
    data = _safetensors(_tiny_vae_state(seed=1), tmp_path)
    hf_cache("org/tiny-vae-nocfg", "diffusion_pytorch_model.safetensors", data)
    _hub_card(tmp_path, "tiny-vae-nocfg", "flextok_vae", "org/tiny-vae-nocfg", "diffusion_pytorch_model.safetensors",
              data, dict(latent_channels=CH, block_out_channels=[32, 32], layers_per_block=1))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match="tiny-vae-nocfg: hf://org/tiny-vae-nocfg/config.json@main"):
        load_tokenizer("tiny-vae-nocfg")
