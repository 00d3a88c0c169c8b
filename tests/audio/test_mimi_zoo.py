"""The Mimi zoo card: it builds the release at full size, shows its CC-BY-4.0 licence, and loads
through the zoo from a local Hugging Face cache (offline) in the hub's transformers layout, with
the repo's config.json checked against the card."""
import json

import pytest
import torch
import yaml
from safetensors.torch import save_file

from audiotok.models.mimi import MimiConfig
from audiotok.models.mimi.convert import to_official_state_dict
from tests.audio.test_mimi_convert import CONFIG, LAYOUTS, tiny_model
from tests.hub.conftest import hf_cache  # noqa: F401  (the fixture)
from vistok import load_tokenizer
from vistok.cli import main
from vistok.errors import InputError
from vistok.hub.catalogue import get_card
from vistok.hub.loading import NonCommercialLicenseWarning
from vistok.registry import get_family


def test_card_builds_the_released_model():
    card = get_card("mimi")
    assert card.family == "mimi" and card.converter == "official" and card.links.get("code") and card.notes
    assert card.license.startswith("cc-by-4.0") and "non-commercial" not in card.license.lower()
    assert card.source.repo == "kyutai/mimi" and card.source.filename == "model.safetensors"
    assert card.source.sha256 is None  # unpinned: the hub was not reachable when the card was written
    with torch.device("meta"):
        model = get_family(card.family).build(card.config)
    assert model.config.to_dict() == MimiConfig().to_dict()
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == card.params_millions == 79.3


def test_zoo_info_shows_the_licence(capsys):
    assert main(["zoo", "info", "mimi"]) == 0
    out = capsys.readouterr().out
    assert "license:    cc-by-4.0: Creative Commons Attribution 4.0" in out and "kyutai/mimi" in out


@pytest.fixture
def tiny_card(tmp_path, monkeypatch, hf_cache):  # noqa: F811
    """The real card with a tiny config, its repo (transformers layout + config.json) in a local HF cache."""
    model = tiny_model()
    blob = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in to_official_state_dict(model.state_dict(), CONFIG, "transformers").items()},
              str(blob))
    hf_cache("kyutai/mimi", "model.safetensors", blob.read_bytes())
    cards = tmp_path / "cards"
    cards.mkdir()
    card = yaml.safe_load(get_card("mimi").path.read_text())
    card.update(name="mimi-tiny-test", config=CONFIG.to_dict(), params_millions=None)
    card = {k: v for k, v in card.items() if v is not None}

    def write(config_json):
        hf_cache("kyutai/mimi", "config.json", json.dumps(config_json).encode())
        (cards / "mimi-tiny-test.yaml").write_text(yaml.safe_dump(card))
        return "mimi-tiny-test"

    monkeypatch.setenv("TOKZOO_ZOO_PATH", str(cards))
    monkeypatch.setenv("TOKZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("TOKZOO_OFFLINE", raising=False)
    write.model = model
    return write


def test_the_card_loads_through_the_zoo_from_a_local_hub(tiny_card, recwarn):
    name = tiny_card(LAYOUTS["transformers_config"])
    loaded = load_tokenizer(name)
    assert not [w for w in recwarn.list if issubclass(w.category, NonCommercialLicenseWarning)]  # CC-BY: no warning
    x = torch.randn(2, CONFIG.hop_length * 4 + 11, generator=torch.Generator().manual_seed(3)) * 0.3
    with torch.no_grad():
        ids = loaded.encode(x)
        assert torch.equal(ids, tiny_card.model.encode(x)) and ids.shape == (2, 4, 5)
        torch.testing.assert_close(loaded.decode(ids), tiny_card.model.decode(ids), rtol=0, atol=1e-5)


def test_a_config_json_disagreeing_with_the_card_is_named(tiny_card):
    name = tiny_card(dict(LAYOUTS["transformers_config"], num_quantizers=6))
    with pytest.raises(InputError, match=r"config.json: the zoo card's config disagrees with it \(num_quantizers: card 4, "
                                         r"config.json 6\)"):
        load_tokenizer(name)
