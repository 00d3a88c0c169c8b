"""The EnCodec zoo cards: both releases are listed, build at full size, and say where they are from."""
import pytest
import torch

from audiotok.models.encodec import EnCodecConfig
from vistok.hub.catalogue import get_card, list_cards
from vistok.registry import get_family

NAMES = {"encodec-24khz": ("24khz", "d7cc33bc"), "encodec-48khz": ("48khz", "7e698e3e")}


def test_both_releases_have_a_card():
    assert {c.name for c in list_cards("encodec-*")} == set(NAMES)


@pytest.mark.parametrize("name", sorted(NAMES))
def test_card_builds_the_released_model(name):
    preset, prefix = NAMES[name]
    card = get_card(name)
    assert card.family == "encodec" and card.converter == "official" and card.links.get("code") and card.notes
    assert card.license.startswith("cc-by-nc-4.0") and "non-commercial" in card.license  # the loader warns
    assert card.source.kind == "url" and card.source.url.endswith(f"-{prefix}.th") and card.source.sha256 is None
    with torch.device("meta"):
        model = get_family(card.family).build(card.config)
    assert model.config.to_dict() == EnCodecConfig.preset(preset).to_dict()
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == card.params_millions == 14.9
