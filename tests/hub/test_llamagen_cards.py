"""LlamaGen VQ zoo cards: each release builds at full size with its licence and the authors' numbers, and a
card's official ``.pt`` (the release's ``{"model": ...}`` layout) resolves through the zoo from a local hub."""
import pytest
import torch
import yaml

from tests.hub.conftest import sha256
from tests.models.test_llamagen import TINY, images, official_layout, tiny_model
from vistok.hub.catalogue import get_card, list_cards
from vistok.hub.loading import load_tokenizer
from vistok.models.llamagen import preset
from vistok.registry import get_family

RELEASES = {"llamagen-vq-ds16-c2i": ("VQ-16", 2.19), "llamagen-vq-ds8-c2i": ("VQ-8", 0.59),
            "llamagen-vq-ds16-t2i": ("VQ-16", None)}


def test_every_release_has_a_card():
    assert {c.name for c in list_cards("llamagen")} == set(RELEASES)


@pytest.mark.parametrize("name", sorted(RELEASES))
def test_card_builds_the_published_preset_at_full_size(name):
    card = get_card(name)
    kind, rfid = RELEASES[name]
    assert card.license == "mit" and card.links.get("code") and card.source.filename.endswith(".pt")
    assert card.reported.get("rfid") == rfid and "source" in card.reported
    if rfid is not None:
        assert "50,000 ImageNet val" in card.reported["protocol"]
    with torch.device("meta"):
        model = get_family(card.family).build(card.config)
    assert model.config == preset(kind)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == card.params_millions
    assert model.num_tokens == (256 if kind == "VQ-16" else 1024) and model.codebook_size == 16384


def test_an_official_checkpoint_resolves_through_the_zoo(zoo, hf_cache, tmp_path, monkeypatch):
    model = tiny_model(seed=5)
    path = tmp_path / "vq_ds16_c2i.pt"
    torch.save({"model": official_layout(model)}, path)
    data = path.read_bytes()
    hf_cache("org/tiny-llamagen", "vq_ds16_c2i.pt", data)
    card = dict(name="tiny-llamagen", family="llamagen", description="tiny", license="mit", converter="official",
                config=dict(TINY), source=dict(repo="org/tiny-llamagen", filename="vq_ds16_c2i.pt", sha256=sha256(data)))
    (zoo.cache.parent / "cards" / "tiny-llamagen.yaml").write_text(yaml.safe_dump(card))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = load_tokenizer("tiny-llamagen")
    x = images()
    with torch.no_grad():
        ids = model.encode(x)
        assert torch.equal(loaded.eval().encode(x), ids)
        assert torch.allclose(loaded.decode(ids), model.decode(ids), atol=1e-6)
