"""Download, verification, conversion and caching of zoo checkpoints, against a loopback HTTP
server and a Hugging Face cache laid out in a temp dir (nothing leaves the machine)."""
import io

import pytest
import torch

from tests.hub.conftest import reference_model, safetensors_bytes, same_outputs, sha256
from vistok import load_tokenizer
from vistok.hub.download import ChecksumError, DownloadError


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_url_download_converts_once_then_loads_from_cache(zoo, server, official_tiny, tmp_path, monkeypatch, fmt):
    if fmt == "bin":  # a legacy torch.save file, read with weights_only=True
        buf = io.BytesIO()
        torch.save(official_tiny, buf)
        data = buf.getvalue()
    else:
        data = safetensors_bytes(official_tiny, tmp_path)
    server.files[f"/tiny.{fmt}"] = data
    name = zoo("tiny-url", dict(url=server.url(f"/tiny.{fmt}"), sha256=sha256(data)))

    model = load_tokenizer(name)
    assert same_outputs(model, reference_model(official_tiny))
    assert server.hits[f"/tiny.{fmt}"] == 1
    converted = [f for f in _files(zoo.cache) if f.startswith("converted/")]
    assert sorted(f.split("/", 2)[2] for f in converted) == ["config.json", "model.safetensors", "source.json"]

    # second load: the converted copy, even offline and with the server gone
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    server.files.clear()
    again = load_tokenizer(name)
    assert server.hits[f"/tiny.{fmt}"] == 1
    assert same_outputs(again, model)


def test_checksum_mismatch_raises_and_keeps_nothing(zoo, server, official_tiny, tmp_path):
    data = safetensors_bytes(official_tiny, tmp_path)
    server.files["/tiny.safetensors"] = data
    name = zoo("tiny-bad-sha", dict(url=server.url("/tiny.safetensors"), sha256="0" * 64))
    with pytest.raises(ChecksumError, match="tiny-bad-sha.*sha256"):
        load_tokenizer(name)
    assert _files(zoo.cache) == []


def test_truncated_download_raises_and_keeps_nothing(zoo, server, official_tiny, tmp_path):
    data = safetensors_bytes(official_tiny, tmp_path)
    server.files["/tiny.safetensors"] = data
    server.truncate.add("/tiny.safetensors")
    name = zoo("tiny-cut", dict(url=server.url("/tiny.safetensors")))  # no sha: the length check must catch it
    with pytest.raises(DownloadError, match="cut short"):
        load_tokenizer(name)
    assert _files(zoo.cache) == []
    # the next attempt downloads afresh and succeeds
    server.truncate.clear()
    assert same_outputs(load_tokenizer(name), reference_model(official_tiny))
    assert server.hits["/tiny.safetensors"] == 2


def test_offline_url_miss_names_the_model_and_the_ways_out(zoo, server, monkeypatch):
    name = zoo("tiny-offline", dict(url=server.url("/never.safetensors")))
    monkeypatch.setenv("TOKZOO_OFFLINE", "1")
    with pytest.raises(DownloadError) as err:
        load_tokenizer(name)
    message = str(err.value)
    assert "tiny-offline" in message and "tokzoo zoo download tiny-offline" in message
    assert "tokzoo zoo convert" in message
    assert server.hits == {}


def test_hf_cache_hit_offline(zoo, hf_cache, official_tiny, tmp_path, monkeypatch):
    data = safetensors_bytes(official_tiny, tmp_path)
    hf_cache("org/tiny-titok", "model.safetensors", data)
    name = zoo("tiny-hf", dict(repo="org/tiny-titok", filename="model.safetensors", sha256=sha256(data)))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert same_outputs(load_tokenizer(name), reference_model(official_tiny))


def test_hf_offline_miss_is_a_clear_error(zoo, hf_cache, monkeypatch):
    name = zoo("tiny-hf-missing", dict(repo="org/not-cached", filename="model.safetensors"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match="tiny-hf-missing is not in the local cache.*tokzoo zoo download"):
        load_tokenizer(name)


def test_hf_checksum_mismatch_removes_the_cached_file(zoo, hf_cache, official_tiny, tmp_path, monkeypatch):
    data = safetensors_bytes(official_tiny, tmp_path)
    link = hf_cache("org/tiny-corrupt", "model.safetensors", data[:-100])  # a corrupt (short) cached blob
    name = zoo("tiny-hf-corrupt", dict(repo="org/tiny-corrupt", filename="model.safetensors", sha256=sha256(data)))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    blob = link.resolve()
    with pytest.raises(ChecksumError, match="removed"):
        load_tokenizer(name)
    assert not link.exists() and not blob.exists()
    assert _files(zoo.cache) == []


def test_convert_a_file_obtained_by_hand(zoo, official_tiny, tmp_path, monkeypatch):
    from vistok.hub.catalogue import get_card
    from vistok.hub.loading import convert_card

    data = safetensors_bytes(official_tiny, tmp_path)
    (tmp_path / "manual.safetensors").write_bytes(data)
    name = zoo("tiny-manual", dict(repo="org/unreachable", filename="model.safetensors", sha256=sha256(data)))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ChecksumError):
        convert_card(get_card(name), checkpoint=_corrupt(tmp_path, data))
    convert_card(get_card(name), checkpoint=tmp_path / "manual.safetensors")
    assert same_outputs(load_tokenizer(name), reference_model(official_tiny))


def _corrupt(tmp_path, data):
    path = tmp_path / "corrupt.safetensors"
    path.write_bytes(data[:-1] + b"x")
    return path
