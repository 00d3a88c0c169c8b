"""The WavTokenizer zoo cards: every release is listed, builds at full size, and says where it is from."""
import pytest
import torch

from vistok.cli import main
from vistok.hub.catalogue import get_card, list_cards
from vistok.registry import get_family

RELEASES = ["small-40", "small-75", "medium-speech-75", "medium-speech-75-v2", "medium-music-audio-75",
            "medium-music-audio-75-v2", "large-unify-40", "large-speech-75-v2"]
NAMES = [f"wavtokenizer-{r}" for r in RELEASES] + [f"wavtokenizer-{r}-hf" for r in RELEASES]


def test_every_release_has_a_card_in_both_layouts():
    assert {c.name for c in list_cards("wavtokenizer-*")} == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_card_builds_the_published_model(name):
    card = get_card(name)
    rate = 40 if "-40" in name else 75
    assert card.family == "wavtokenizer" and card.converter == "official" and card.license == "mit"
    assert card.links.get("code") and card.reported and card.notes
    if name.endswith("-hf"):
        assert card.source.repo.startswith("swiss-ai/wavtokenizer-") and card.source.filename == "model.safetensors"
    else:
        assert card.source.repo.startswith("novateur/") and card.source.filename.endswith(".ckpt")
        assert ("600" if rate == 40 else "320") in card.source.filename
    with torch.device("meta"):
        model = get_family(card.family).build(card.config)
    assert model.config.hop_length == {40: 600, 75: 320}[rate] and model.config.codebook_size == 4096
    assert model.config.n_fft == 4 * model.config.hop_length
    assert model.config.to_dict() == type(model.config)(**card.config).to_dict()
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    assert round(millions, 1) == card.params_millions == {40: 72.1, 75: 71.8}[rate]


def test_zoo_list_shows_them(capsys):
    assert main(["zoo", "list", "wavtokenizer-*"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]  # under the header
    assert sorted(line.split()[0] for line in lines) == sorted(NAMES)
    assert all("wavtokenizer" in line.split()[1] for line in lines)
