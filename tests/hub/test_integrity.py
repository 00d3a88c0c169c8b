"""Downloads checked against the hub's own sha256 (LFS metadata, or offline the ETag the cache kept),
the sha256 first seen recorded in the converted cache, and ``tokzoo zoo verify``: on a loopback hub
(tests/hub/fake_hub.py) and a Hugging Face cache in a temp dir, with tampered files."""
import json

import pytest

from tests.hub.conftest import reference_model, safetensors_bytes, same_outputs, sha256
from tests.hub.fake_hub import COMMIT
from vistok import load_tokenizer
from vistok.cli import main as cli
from vistok.hub.download import ChecksumError

REPO, FILE = "org/tiny-titok", "model.safetensors"


def _tampered(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x01])  # same length, one bit of the last weight flipped


def _record(cache):
    (path,) = (cache / "converted").glob("*/source.json")
    return json.loads(path.read_text())


def test_an_unpinned_hf_download_is_checked_against_the_hubs_sha256_and_recorded(
        zoo, fake_hub, official_tiny, tmp_path):
    data = safetensors_bytes(official_tiny, tmp_path)
    fake_hub.publish(REPO, FILE, data)
    name = zoo("tiny-hub", dict(repo=REPO, filename=FILE))  # no pin
    assert same_outputs(load_tokenizer(name), reference_model(official_tiny))
    assert fake_hub.hits[("POST", f"/api/models/{REPO}/paths-info/{COMMIT}")] == 1  # at the downloaded commit
    record = _record(zoo.cache)
    describe = f"hf://{REPO}/{FILE}@main"
    assert record["sha256"] == sha256(data) and record["files"] == {describe: sha256(data)}
    assert "the hub's sha256 (LFS metadata" in record["checked"][describe]


def test_a_tampered_download_is_refused_with_both_hashes_and_removed(zoo, fake_hub, official_tiny, tmp_path):
    data = safetensors_bytes(official_tiny, tmp_path)
    fake_hub.publish(REPO, FILE, data)
    bad = _tampered(data)
    fake_hub.tamper(REPO, FILE, bad)
    name = zoo("tiny-hub-tampered", dict(repo=REPO, filename=FILE))
    with pytest.raises(ChecksumError) as err:
        load_tokenizer(name)
    message = str(err.value)
    assert f"has sha256 {sha256(bad)}, but the hub's sha256" in message and sha256(data) in message
    assert "tiny-hub-tampered" in message and FILE in message and "removed" in message
    assert not list(fake_hub.cache.rglob(f"blobs/{sha256(data)}"))  # the next attempt downloads afresh
    assert not (zoo.cache / "converted").exists()
    fake_hub.tamper(REPO, FILE, data)
    assert same_outputs(load_tokenizer(name), reference_model(official_tiny))


def test_a_file_changed_on_the_hub_since_first_seen_is_refused(zoo, fake_hub, official_tiny, tmp_path):
    data = safetensors_bytes(official_tiny, tmp_path)
    fake_hub.publish(REPO, FILE, data)
    name = zoo("tiny-hub-changed", dict(repo=REPO, filename=FILE))
    load_tokenizer(name)
    new = _tampered(data)
    fake_hub.publish(REPO, FILE, new)  # replaced upstream: the hub's metadata agrees with the new bytes
    with pytest.raises(ChecksumError) as err:
        load_tokenizer(name, force_download=True)
    message = str(err.value)
    assert f"has sha256 {sha256(new)}, but the sha256 first seen (recorded in" in message
    assert sha256(data) in message and "pin its sha256" in message


def test_offline_the_cache_blob_name_and_the_record_catch_a_tampered_blob(
        zoo, hf_cache, official_tiny, tmp_path, monkeypatch):
    data = safetensors_bytes(official_tiny, tmp_path)
    link = hf_cache(REPO, FILE, data)
    name = zoo("tiny-offline-blob", dict(repo=REPO, filename=FILE))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    load_tokenizer(name)
    checked = _record(zoo.cache)["checked"][f"hf://{REPO}/{FILE}@main"]
    assert "kept by the Hugging Face cache" in checked and "not asked" not in checked
    link.resolve().write_bytes(_tampered(data))
    with pytest.raises(ChecksumError, match=f"has sha256 {sha256(_tampered(data))}, but the hub's sha256 kept by "
                                            f"the Hugging Face cache .* is {sha256(data)}"):
        load_tokenizer(name, force_download=True)


def test_a_url_file_is_trusted_on_first_use_then_held_to_it(zoo, server, official_tiny, tmp_path, caplog):
    data = safetensors_bytes(official_tiny, tmp_path)
    server.files["/tiny.safetensors"] = data
    name = zoo("tiny-url-tofu", dict(url=server.url("/tiny.safetensors")))
    with caplog.at_level("WARNING"):
        load_tokenizer(name)
    assert "checked against nothing" in caplog.text and "trusting this first copy" in caplog.text
    server.files["/tiny.safetensors"] = _tampered(data)
    with pytest.raises(ChecksumError, match=f"{sha256(_tampered(data))}, but the sha256 first seen .* is {sha256(data)}"):
        load_tokenizer(name, force_download=True)


def test_convert_by_hand_is_held_to_the_first_seen_sha256(zoo, server, official_tiny, tmp_path):
    from vistok.hub.catalogue import get_card
    from vistok.hub.loading import convert_card

    data = safetensors_bytes(official_tiny, tmp_path)
    server.files["/tiny.safetensors"] = data
    name = zoo("tiny-url-manual", dict(url=server.url("/tiny.safetensors")))
    load_tokenizer(name)
    manual = tmp_path / "manual.safetensors"
    manual.write_bytes(_tampered(data))
    with pytest.raises(ChecksumError, match=f"{manual}"):
        convert_card(get_card(name), checkpoint=manual)
    assert manual.read_bytes() == _tampered(data)  # a file given by hand is never removed


def test_zoo_verify_passes_on_the_clean_file_and_fails_on_a_tampered_one(
        zoo, hf_cache, official_tiny, tmp_path, monkeypatch, capsys):
    data = safetensors_bytes(official_tiny, tmp_path)
    link = hf_cache(REPO, FILE, data)
    name = zoo("tiny-verify", dict(repo=REPO, filename=FILE))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert cli(["zoo", "verify", name]) == 0  # not converted yet: the cache's blob name only
    out = capsys.readouterr().out
    assert "matches the hub's sha256 kept by the Hugging Face cache" in out and "not asked" in out
    load_tokenizer(name)
    assert cli(["zoo", "verify", name]) == 0
    out = capsys.readouterr().out
    assert f"sha256  {sha256(data)}" in out and "matches the sha256 first seen (recorded in" in out

    link.resolve().write_bytes(_tampered(data))
    assert cli(["zoo", "verify", name]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert line.startswith(f"{name}: hf://{REPO}/{FILE}@main has sha256 {sha256(_tampered(data))}, but ")
    assert sha256(data) in line and str(link) in line
    assert "DIFFERS" in captured.out
    assert link.resolve().read_bytes() == _tampered(data)  # verify reports, never deletes


def test_zoo_verify_online_asks_the_hub(zoo, fake_hub, official_tiny, tmp_path, capsys):
    data = safetensors_bytes(official_tiny, tmp_path)
    fake_hub.publish(REPO, FILE, data)
    name = zoo("tiny-verify-online", dict(repo=REPO, filename=FILE, sha256=sha256(data)))
    load_tokenizer(name)
    assert cli(["zoo", "verify", name]) == 0
    out = capsys.readouterr().out
    assert "matches the zoo card's pin" in out and "matches the hub's sha256 (LFS metadata" in out
    assert "first seen" not in out  # a pinned card is held to its pin, not to older records


def test_zoo_verify_of_a_model_not_downloaded(zoo, hf_cache, monkeypatch, capsys):
    name = zoo("tiny-verify-missing", dict(repo="org/never", filename=FILE))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert cli(["zoo", "verify", name]) == 1
    assert "is not downloaded; run `tokzoo zoo download tiny-verify-missing`" in capsys.readouterr().err


def test_an_unreadable_record_is_named_and_does_not_block_other_models(zoo, server, official_tiny, tmp_path, caplog):
    broken = zoo.cache / "converted" / "other-model-0123456789ab"
    broken.mkdir(parents=True)
    (broken / "source.json").write_text("{not json")
    data = safetensors_bytes(official_tiny, tmp_path)
    server.files["/tiny.safetensors"] = data
    name = zoo("tiny-url-beside-broken", dict(url=server.url("/tiny.safetensors")))  # unpinned: records are read
    with caplog.at_level("WARNING"):
        assert same_outputs(load_tokenizer(name), reference_model(official_tiny))
    assert f"{broken / 'source.json'}: unreadable record of the converted cache" in caplog.text


def test_zoo_verify_a_packaged_model(capsys):
    assert cli(["zoo", "verify", "tokzoo-demo-titok-64"]) == 0
    out = capsys.readouterr().out
    assert "package://vistok:" in out and "matches the zoo card's pin" in out
