"""FlexTok zoo cards: every release is catalogued at full size with its non-commercial license, and
downloading one prints that license; a checkpoint's own config completes a card's."""
import warnings

import pytest
import torch
import yaml

from tests.hub.conftest import sha256
from tests.hub.test_flextok_convert import TINY_VAE, official_state, official_tree, write_single_file
from vistok.cli import main as cli
from vistok.hub.catalogue import get_card, list_cards
from vistok.hub.families import get_family
from vistok.hub.flextok import config_from_official, resolve_card_config

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
