"""save_pretrained / from_pretrained / load_tokenizer on local directories and hub repos."""
import json

import pytest

from tests.hub.conftest import same_outputs
from tests.models.test_titok import tiny_config
from vistok import load_tokenizer
from vistok.models.titok import TiTok


def test_save_and_load_round_trip(tmp_path):
    model = TiTok(tiny_config(False)).eval()
    model.save_pretrained(tmp_path / "tok")
    assert sorted(p.name for p in (tmp_path / "tok").iterdir()) == ["config.json", "model.safetensors"]
    record = json.loads((tmp_path / "tok" / "config.json").read_text())
    assert record["family"] == "titok" and record["config"]["decoder"] == "pixels"
    loaded = TiTok.from_pretrained(tmp_path / "tok")
    assert not loaded.training
    assert same_outputs(loaded, model)


def test_from_a_hub_repo_in_our_layout(tmp_path, hf_cache, monkeypatch):
    model = TiTok(tiny_config(True)).eval()
    model.save_pretrained(tmp_path / "tok")
    for name in ("config.json", "model.safetensors"):
        hf_cache("someone/my-tokenizer", name, (tmp_path / "tok" / name).read_bytes())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert same_outputs(load_tokenizer("someone/my-tokenizer"), model)


def test_load_errors_are_clear(tmp_path):
    model = TiTok(tiny_config(False))
    model.save_pretrained(tmp_path / "tok")
    with pytest.raises(ValueError, match="is a file"):
        load_tokenizer(tmp_path / "tok" / "model.safetensors")
    with pytest.raises(KeyError, match="no zoo model named 'nonsense'"):
        load_tokenizer("nonsense")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="missing config.json"):
        load_tokenizer(tmp_path / "empty")
    # weights that do not fit the config are refused by name
    record = json.loads((tmp_path / "tok" / "config.json").read_text())
    record["config"]["num_latent_tokens"] += 1
    (tmp_path / "tok" / "config.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="latent"):
        load_tokenizer(tmp_path / "tok")


def test_interrupted_save_leaves_the_previous_files(tmp_path, monkeypatch):
    model = TiTok(tiny_config(False)).eval()
    model.save_pretrained(tmp_path / "tok")
    before = (tmp_path / "tok" / "model.safetensors").read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("vistok.models.pretrained.save_model", boom)
    with pytest.raises(KeyboardInterrupt):
        TiTok(tiny_config(False)).save_pretrained(tmp_path / "tok")
    assert (tmp_path / "tok" / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "tok").iterdir()) == ["config.json", "model.safetensors"]


def test_from_pretrained_checks_the_class(tmp_path):
    from vistok.models.maskgit_vqgan import MaskGITVQGAN

    TiTok(tiny_config(False)).save_pretrained(tmp_path / "tok")
    with pytest.raises(TypeError, match="holds a TiTok .* not a MaskGITVQGAN"):
        MaskGITVQGAN.from_pretrained(tmp_path / "tok")
