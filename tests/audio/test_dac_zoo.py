"""The DAC zoo cards: the three releases are listed, build at full size, and say where they are from."""
import pytest
import torch

from audiotok.models.dac import DACConfig
from vistok.hub.catalogue import get_card, list_cards
from vistok.registry import get_family

#: card -> (preset, release tag, file name, parameters in millions)
NAMES = {"dac-16khz": ("16khz", "0.0.5", "weights_16khz.pth", 74.2),
         "dac-24khz": ("24khz", "0.0.4", "weights_24khz.pth", 74.7),
         "dac-44khz": ("44khz", "0.0.1", "weights.pth", 76.7)}


def test_every_release_has_a_card():
    assert {c.name for c in list_cards("dac-*")} == set(NAMES)


@pytest.mark.parametrize("name", sorted(NAMES))
def test_card_builds_the_released_model(name):
    preset, tag, filename, millions = NAMES[name]
    card = get_card(name)
    assert card.family == "dac" and card.converter == "official" and card.links.get("code") and card.notes
    assert card.license.startswith("mit")
    assert card.source.kind == "url" and card.source.sha256 is None
    assert card.source.url == f"https://github.com/descriptinc/descript-audio-codec/releases/download/{tag}/{filename}"
    with torch.device("meta"):
        model = get_family(card.family).build(card.config)
    assert model.config.to_dict() == DACConfig.preset(preset).to_dict()
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == card.params_millions == millions
