"""The shipped zoo cards and the card format."""
import pytest
import torch
import yaml

from vistok.hub.card import CardError, ZooCard
from vistok.hub.catalogue import get_card, list_cards
from vistok.registry import get_family

EXPECTED = {
    "titok-l32", "titok-b64", "titok-s128", "titok-bl64-vq8k", "titok-bl128-vq8k", "titok-sl256-vq8k",
    "titok-ll32-vae-c16", "titok-bl64-vae-c16", "titok-bl128-vae-c16", "maskgit-vqgan-f16",
    "one-d-piece-s256", "one-d-piece-b256", "one-d-piece-l256",
}


def test_catalogue_has_every_published_checkpoint():
    assert {c.name for c in list_cards()} >= EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_card_builds_the_full_size_model(name):
    card = get_card(name)
    assert card.license and card.links.get("code") and card.reported
    with torch.device("meta"):
        model = get_family(card.family).build(card.config)
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    assert round(millions, 1) == card.params_millions, f"{name}: {millions:.1f}M"
    assert model.config.to_dict() == type(model.config)(**card.config).to_dict()


def test_published_titok_cards_match_the_authors_configs():
    assert get_card("titok-l32").config["legacy_reshape"] is True
    assert get_card("titok-bl64-vq8k").config["codebook_size"] == 8192
    assert get_card("titok-bl64-vae-c16").config["bottleneck"] == "kl"
    assert get_card("one-d-piece-b256").config["num_latent_tokens"] == 256


def test_pattern_and_suggestions():
    assert {c.name for c in list_cards("vq8k")} == {"titok-bl64-vq8k", "titok-bl128-vq8k", "titok-sl256-vq8k"}
    assert [c.name for c in list_cards("titok-l*")] == ["titok-l32", "titok-ll32-vae-c16"]
    with pytest.raises(KeyError, match="did you mean titok-s128"):
        get_card("titok-s12")


def _write(tmp_path, **changes):
    card = dict(name="x", family="titok", description="d", license="mit", config={},
                source=dict(url="https://example.org/x.bin"))
    card.update(changes)
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(card))
    return path


def test_malformed_cards_name_the_file_and_field(tmp_path):
    assert ZooCard.from_yaml(_write(tmp_path)).source.kind == "url"
    with pytest.raises(CardError, match=r"x\.yaml: unknown field 'licence' \(did you mean 'license'\?\)"):
        ZooCard.from_yaml(_write(tmp_path, licence="mit"))
    with pytest.raises(CardError, match="exactly one of"):
        ZooCard.from_yaml(_write(tmp_path, source=dict(url="u", repo="a/b", filename="f")))
    with pytest.raises(CardError, match="sha256 must be 64"):
        ZooCard.from_yaml(_write(tmp_path, source=dict(url="u", sha256="abc")))
    with pytest.raises(CardError, match="missing required field 'family'"):
        ZooCard.from_yaml(_write(tmp_path, family=None))


def test_every_reported_number_names_the_authors_protocol():
    for card in list_cards():
        numbers = [k for k, v in card.reported.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if numbers:
            assert card.reported.get("protocol") and card.reported.get("dataset"), (card.name, numbers)
