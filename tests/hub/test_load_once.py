"""A zoo name's first load builds its model once; the catalogue is parsed once per process and
again only when TOKZOO_ZOO_PATH or a card file changes."""
import os

import pytest

from tests.hub.conftest import reference_model, safetensors_bytes, same_outputs, sha256
from vistok import load_tokenizer
from vistok.hub import catalogue
from vistok.hub.card import ZooCard
from vistok.models.titok import TiTok


@pytest.fixture
def builds(monkeypatch):
    count = {"n": 0}
    original = TiTok.__init__

    def counting(self, *args, **kwargs):
        count["n"] += 1
        original(self, *args, **kwargs)

    monkeypatch.setattr(TiTok, "__init__", counting)
    return count


def test_the_first_load_builds_the_model_once(zoo, server, official_tiny, tmp_path, builds):
    data = safetensors_bytes(official_tiny, tmp_path)
    server.files["/tiny.safetensors"] = data
    name = zoo("tiny-once", dict(url=server.url("/tiny.safetensors"), sha256=sha256(data)))
    model = load_tokenizer(name)
    assert builds["n"] == 1  # converted, saved and returned: not built again from the saved copy
    assert not model.training
    again = load_tokenizer(name)  # from the converted directory: a shape probe on the meta device, then the model
    assert builds["n"] == 3 and same_outputs(model, again) and same_outputs(model, reference_model(official_tiny))


@pytest.fixture
def parses(monkeypatch):
    count = {"n": 0}
    original = ZooCard.from_yaml.__func__

    def counting(cls, path):
        count["n"] += 1
        return original(cls, path)

    monkeypatch.setattr(ZooCard, "from_yaml", classmethod(counting))
    return count


def test_the_catalogue_is_read_once_until_a_card_or_the_path_changes(zoo, tmp_path, parses, monkeypatch):
    zoo("tiny-a", dict(url="http://127.0.0.1:9/a.safetensors", sha256="0" * 64))
    catalogue.all_cards()
    first = parses["n"]
    assert first > 1
    for _ in range(3):
        assert catalogue.find_card("tiny-a") is not None
        catalogue.list_cards()
    assert parses["n"] == first  # lookups reuse the parsed cards

    card = catalogue.get_card("tiny-a")
    card.config["image_size"] = 999  # a caller changing its copy does not change the catalogue
    assert catalogue.get_card("tiny-a").config["image_size"] != 999

    path = os.environ["TOKZOO_ZOO_PATH"] + "/tiny-a.yaml"
    text = open(path).read().replace("tiny test tokenizer", "tiny test tokenizer, edited")
    with open(path, "w") as f:
        f.write(text + "\n")
    assert catalogue.get_card("tiny-a").description == "tiny test tokenizer, edited"
    assert parses["n"] == 2 * first

    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setenv("TOKZOO_ZOO_PATH", str(other))
    assert catalogue.find_card("tiny-a") is None
    assert parses["n"] == 3 * first - 1  # the new path, without the extra card
