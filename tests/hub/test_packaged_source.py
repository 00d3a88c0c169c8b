"""Zoo cards whose weights ship inside a Python package: the embedded demo tokenizers, and the
``package:`` source that any installed package can use for its own."""
import sys

import pytest
import torch
import yaml
from safetensors.torch import save_file

from vistok.hub.card import CardError, ZooCard
from vistok.hub.catalogue import get_card
from vistok.hub.download import ChecksumError, DownloadError, fetch, sha256_of
from vistok.registry import get_family
from vistok.hub.loading import load_tokenizer

EMBEDDED = ("tokzoo-demo-titok-64", "tokzoo-demo-wavtokenizer-speech")


@pytest.fixture
def zoo_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKZOO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("name", EMBEDDED)
def test_embedded_cards_pin_the_shipped_file_and_say_how_it_was_made(name):
    card = get_card(name)
    assert card.source.kind == "package" and card.converter == "tokzoo"
    path, sha = fetch(card.source, name)
    assert sha == card.source.sha256 and path.suffix == ".safetensors"
    training = card.training
    assert training["recipe"].startswith("train/demo/") and len(training["commit"]) == 40
    assert training["hardware"] and training["seconds"] > 0 and "corpus" in training["data"]
    protocol = card.measured["val"]["protocol"]
    assert protocol["data"]["split"] == "val" and protocol["precision"] in ("fp32", "float32")
    assert "demo" in name and not card.reported  # trained here: nothing the authors of a paper reported
    with torch.device("meta"):
        model = get_family(card.family).build(card.config)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == card.params_millions


def test_embedded_weights_fit_the_size_budget():
    total = sum(fetch(get_card(n).source, n)[0].stat().st_size for n in EMBEDDED)
    assert total <= 25e6, total


def test_embedded_image_tokenizer_loads_through_the_zoo_and_decodes_prefixes(zoo_cache):
    model = load_tokenizer("tokzoo-demo-titok-64")
    x = torch.rand(2, 3, 64, 64)
    ids = model.encode(x)
    assert ids.shape == (2, 128)
    assert model.decode(ids[:, :8]).shape == (2, 3, 64, 64)


def _package(tmp_path, monkeypatch, payload: bytes):
    root = tmp_path / "site" / "toyweights"
    (root / "weights").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "weights" / "w.bin").write_bytes(payload)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    sys.modules.pop("toyweights", None)
    return root / "weights" / "w.bin"


def _card(tmp_path, **source):
    data = dict(name="toy", family="titok", description="d", license="mit", config={}, converter="tokzoo",
                source=source)
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(data))
    return ZooCard.from_yaml(path)


def test_a_packaged_source_is_read_where_it_is_installed_and_checked(tmp_path, monkeypatch):
    file = _package(tmp_path, monkeypatch, b"weights")
    card = _card(tmp_path, package="toyweights:weights/w.bin", sha256=sha256_of(file))
    assert card.source.describe() == "package://toyweights:weights/w.bin"
    assert fetch(card.source, "toy") == (file, sha256_of(file))
    file.write_bytes(b"tampered")
    with pytest.raises(ChecksumError, match="toy: package://toyweights:weights/w.bin has sha256"):
        fetch(card.source, "toy")
    assert file.read_bytes() == b"tampered"  # part of an install: reported, never deleted


def test_packaged_source_errors_name_the_card_and_the_problem(tmp_path, monkeypatch):
    _package(tmp_path, monkeypatch, b"weights")
    sha = "0" * 64
    with pytest.raises(DownloadError, match="package 'nosuchpkg' is not installed"):
        fetch(_card(tmp_path, package="nosuchpkg:w.bin", sha256=sha).source, "toy")
    with pytest.raises(DownloadError, match="no file 'weights/other.bin'"):
        fetch(_card(tmp_path, package="toyweights:weights/other.bin", sha256=sha).source, "toy")
    with pytest.raises(CardError, match="must pin its sha256"):
        _card(tmp_path, package="toyweights:weights/w.bin")
    with pytest.raises(CardError, match="'import.package:relative/path'"):
        _card(tmp_path, package="toyweights/weights/w.bin", sha256=sha)
    with pytest.raises(CardError, match="exactly one of"):
        _card(tmp_path, package="toyweights:w.bin", url="https://example.org/w", sha256=sha)


def test_tokzoo_layout_state_dict_round_trips_through_a_packaged_card(tmp_path, monkeypatch, zoo_cache):
    from tests.models.test_titok import tiny_config
    from vistok.models.titok import TiTok

    model = TiTok(tiny_config(False))
    root = tmp_path / "site" / "toyweights"
    root.mkdir(parents=True)
    (root / "__init__.py").write_text("")
    save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, str(root / "m.safetensors"))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    sys.modules.pop("toyweights", None)
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "toy.yaml").write_text(yaml.safe_dump(dict(
        name="toy-packaged", family="titok", description="d", license="mit", converter="tokzoo",
        config=model.config.to_dict(), source=dict(package="toyweights:m.safetensors",
                                                   sha256=sha256_of(root / "m.safetensors")))))
    monkeypatch.setenv("TOKZOO_ZOO_PATH", str(cards))
    loaded = load_tokenizer("toy-packaged")
    x = torch.rand(1, 3, model.config.image_size, model.config.image_size)
    expected = {k: v.half().float() for k, v in model.state_dict().items()}
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in expected.items())
    assert loaded.encode(x).shape[-1] == model.num_tokens
