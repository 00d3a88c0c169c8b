"""`tokzoo audio encode / decode / reconstruct` end to end on a saved tiny codec and real speech."""
import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.audio.test_wavtokenizer import tiny_model
from vistok.cli import main

sf = pytest.importorskip("soundfile")
pytest.importorskip("soxr")

SPEECH = sorted(str(p) for p in (Path(__file__).resolve().parents[1] / "assets" / "audio").glob("*.flac"))


@pytest.fixture
def model_dir(tmp_path):
    tiny_model().save_pretrained(tmp_path / "codec")
    return str(tmp_path / "codec")


def test_encode_decode_reconstruct(model_dir, tmp_path, capsys):
    assert len(SPEECH) >= 2
    lengths = [sf.info(p).frames for p in SPEECH]
    ids_path = tmp_path / "ids.npy"
    assert main(["audio", "encode", *SPEECH, "--model", model_dir, "-o", str(ids_path), "--batch-size", "2"]) == 0
    ids = np.load(ids_path)
    tokens = [-(-n // 6) for n in lengths]  # hop 6
    assert ids.dtype == np.int32 and ids.shape == (len(SPEECH), max(tokens))
    for row, n in zip(ids, tokens):
        assert (row[:n] >= 0).all() and (row[n:] == -1).all()

    assert main(["audio", "decode", str(ids_path), "--model", model_dir, "-o", str(tmp_path / "dec")]) == 0
    assert main(["audio", "reconstruct", *SPEECH, "--model", model_dir, "-o", str(tmp_path / "rec")]) == 0
    out = capsys.readouterr().out
    for i, (path, n) in enumerate(zip(SPEECH, tokens)):
        decoded, rate = sf.read(tmp_path / "dec" / f"{i:06d}.wav", dtype="float32")
        rebuilt, _ = sf.read(tmp_path / "rec" / f"{Path(path).stem}.wav", dtype="float32")
        assert rate == 24000 and decoded.shape == (n * 6,) and rebuilt.shape == (lengths[i],)
        np.testing.assert_allclose(decoded[: lengths[i]], rebuilt, atol=1e-5)
    pytest.importorskip("audiotok.metrics")
    pytest.importorskip("pesq")
    pytest.importorskip("pystoi")
    assert out.count("SI-SDR") == len(SPEECH) + 1 and "mean mel distance" in out
    lines = {line.split(":")[0]: line for line in out.splitlines()}
    pesqs, stois = [], []
    for path in SPEECH:
        pesqs.append(float(re.search(r"PESQ-WB (\S+)", lines[path])[1]))
        stois.append(float(re.search(r"STOI (\S+)", lines[path])[1]))
    assert all(1.0 <= v <= 4.65 for v in pesqs)  # wide-band MOS-LQO range; an untrained codec scores low
    assert all(-1.0 <= v <= 1.0 for v in stois)
    mean = next(line for line in out.splitlines() if line.startswith("mean SI-SDR"))
    assert float(re.search(r"mean PESQ-WB ([-\d.]+)", mean)[1]) == pytest.approx(np.mean(pesqs), abs=0.006)
    assert float(re.search(r"mean STOI ([-\d.]+)", mean)[1]) == pytest.approx(np.mean(stois), abs=6e-4)
    assert "NaN" not in out


def test_reconstruct_prints_why_pesq_is_nan(model_dir, tmp_path, capsys, monkeypatch):
    pytest.importorskip("audiotok.metrics")
    pytest.importorskip("pystoi")
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(24000, dtype=np.float32), 24000)
    args = ["audio", "reconstruct", SPEECH[0], str(silence), "--model", model_dir, "-o", str(tmp_path / "rec")]
    if importlib.util.find_spec("pesq") is not None:
        assert main(args) == 0
        out = capsys.readouterr().out
        silent_line = next(line for line in out.splitlines() if line.startswith(f"{silence}:"))
        assert "PESQ-WB nan" in silent_line and "PESQ-WB is NaN: pesq_wb: item 0: NoUtterancesError" in out
        assert re.search(r"mean PESQ-WB \d+\.\d+ \(1 of 2 files\)", out)  # the NaN is left out of the mean

    monkeypatch.setitem(sys.modules, "pesq", None)  # as if the package were not installed
    assert main(args[:3] + args[4:]) == 0  # the speech file only
    out = capsys.readouterr().out
    assert "PESQ-WB is NaN: pesq is not installed (pip install 'tokzoo[eval]')" in out
    assert "mean PESQ-WB nan (no file scored)" in out and re.search(r"mean STOI [-\d.]+ over 1 file", out)


def test_encode_matches_the_python_api(model_dir, tmp_path):
    from audiotok.io import read_clip
    from vistok.hub.loading import load_tokenizer

    assert main(["audio", "encode", SPEECH[0], "--model", model_dir, "-o", str(tmp_path / "one.npy")]) == 0
    model = load_tokenizer(model_dir)
    with torch.no_grad():
        expected = model.encode(read_clip(SPEECH[0], 24000)[None])
    assert np.array_equal(np.load(tmp_path / "one.npy"), expected.numpy())


def test_chunked_decode_writes_the_same_length(model_dir, tmp_path):
    ids = tmp_path / "ids.npy"
    np.save(ids, np.arange(40, dtype=np.int64).reshape(2, 20) % 32)
    out = str(tmp_path / "out")
    assert main(["audio", "decode", str(ids), "--model", model_dir, "-o", out, "--chunk-size", "7"]) == 0
    assert sf.info(str(tmp_path / "out" / "000001.wav")).frames == 120


def _error(capsys):
    return capsys.readouterr().err


def test_bad_files_are_named_and_nothing_is_written(model_dir, tmp_path, capsys):
    out = tmp_path / "ids.npy"
    notes = tmp_path / "notes.wav"
    notes.write_text("not audio")
    assert main(["audio", "encode", SPEECH[0], str(notes), "--model", model_dir, "-o", str(out)]) == 2
    assert f"{notes}: not audio" in _error(capsys) and not out.exists()

    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert main(["audio", "encode", str(empty), "--model", model_dir, "-o", str(out)]) == 2
    assert f"{empty}: empty file" in _error(capsys)

    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(3, dtype=np.float32), 24000)
    assert main(["audio", "encode", str(short), "--model", model_dir, "-o", str(out)]) == 2
    assert f"{short}: too short (3 samples at 24000 Hz; at least 6 needed)" in _error(capsys)

    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([0.0, np.nan, 0.1] * 10, dtype=np.float32), 24000, subtype="FLOAT")
    assert main(["audio", "reconstruct", str(nan), "--model", model_dir, "-o", str(tmp_path / "rec")]) == 2
    assert f"{nan}: contains NaN" in _error(capsys) and not (tmp_path / "rec").exists()

    missing = tmp_path / "missing.flac"
    assert main(["audio", "encode", str(missing), "--model", model_dir, "-o", str(out)]) == 2
    assert str(missing) in _error(capsys)
    assert not out.exists()


def test_bad_ids_and_models_are_named(model_dir, tmp_path, capsys):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.array([[1, 99]], dtype=np.int32))
    assert main(["audio", "decode", str(bad), "--model", model_dir, "-o", str(tmp_path / "o")]) == 2
    assert f"{bad}: ids must be in 0..31" in _error(capsys)
    np.save(bad, np.zeros((1, 3), dtype=np.float32))
    assert main(["audio", "decode", str(bad), "--model", model_dir, "-o", str(tmp_path / "o")]) == 2
    assert "integer token ids" in _error(capsys)
    text = tmp_path / "ids.txt"
    text.write_text("1 2 3")
    assert main(["audio", "decode", str(text), "--model", model_dir, "-o", str(tmp_path / "o")]) == 2
    assert f"{text}: not a .npy array" in _error(capsys)
    nowhere = str(tmp_path / "nowhere")
    assert main(["audio", "encode", SPEECH[0], "--model", nowhere, "-o", str(tmp_path / "x.npy")]) == 2
    assert "nowhere" in _error(capsys)


def test_an_image_tokenizer_is_refused(tmp_path, capsys):
    from tests.models.test_titok import tiny_config
    from vistok.models.titok import TiTok

    TiTok(tiny_config(True)).save_pretrained(tmp_path / "img")
    assert main(["audio", "encode", SPEECH[0], "--model", str(tmp_path / "img"), "-o", str(tmp_path / "x.npy")]) == 2
    assert "not an audio tokenizer" in _error(capsys)
