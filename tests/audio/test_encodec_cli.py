"""`tokzoo audio` with EnCodec: a mono codec round-trips through the files; the stereo one with
per-segment scales writes them beside the ids and needs them to decode; --chunk-size on a codec
without chunked decoding is refused up front."""
from pathlib import Path

import numpy as np
import pytest

from tests.audio.test_encodec import tiny_model
from vistok.cli import main

sf = pytest.importorskip("soundfile")
pytest.importorskip("soxr")

SPEECH = sorted(str(p) for p in (Path(__file__).resolve().parents[1] / "assets" / "audio").glob("*.flac"))


def _saved(tmp_path, kind):
    tiny_model(kind).save_pretrained(tmp_path / kind)
    return str(tmp_path / kind)


def test_a_mono_encodec_encodes_and_decodes_files(tmp_path):
    model = _saved(tmp_path, "causal")
    ids_path = tmp_path / "ids.npy"
    assert main(["audio", "encode", *SPEECH[:2], "--model", model, "-o", str(ids_path), "--batch-size", "2"]) == 0
    ids = np.load(ids_path)
    rates = [sf.info(p) for p in SPEECH[:2]]
    tokens = [-(-round(info.frames * 6000 / info.samplerate) // 6) for info in rates]  # 6 kHz model, hop 6
    assert ids.shape == (2, 4, max(tokens)) and ids.dtype == np.int32
    for row, n in zip(ids, tokens):
        assert (row[:, :n] >= 0).all() and (row[:, n:] == -1).all()
    assert main(["audio", "decode", str(ids_path), "--model", model, "-o", str(tmp_path / "dec")]) == 0
    for i, n in enumerate(tokens):
        wav, rate = sf.read(tmp_path / "dec" / f"{i:06d}.wav", dtype="float32")
        assert rate == 6000 and wav.shape == (n * 6,)


def test_stereo_with_scales_needs_its_scale_files_and_the_right_channels(tmp_path, capsys):
    """The 48 kHz form (stereo, per-segment scales) goes through the files (tests/audio/test_cli_every_family.py
    checks the numbers); decoding without the scales beside the ids, or a 3-channel file, is refused by name."""
    segmented = _saved(tmp_path, "segmented")
    ids_path = tmp_path / "x.npy"
    assert main(["audio", "encode", SPEECH[0], "--model", segmented, "-o", str(ids_path)]) == 0
    assert (tmp_path / "x.scales.npy").is_file() and np.load(tmp_path / "x.lengths.npy").dtype == np.int64
    (tmp_path / "x.scales.npy").unlink()
    assert main(["audio", "decode", str(ids_path), "--model", segmented, "-o", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "x.scales.npy: missing; this codec decodes ids with the per-segment scales" in err
    three = tmp_path / "three.wav"
    sf.write(three, np.zeros((600, 3), dtype=np.float32), 6000)
    assert main(["audio", "encode", str(three), "--model", segmented, "-o", str(tmp_path / "y.npy")]) == 2
    assert "three.wav: 3 channels; this encodec codec codes 2" in capsys.readouterr().err
    mono = _saved(tmp_path, "causal")
    assert main(["audio", "reconstruct", SPEECH[0], "--model", mono, "-o", str(tmp_path / "r"),
                 "--chunk-size", "8"]) == 2
    assert "--chunk-size: " in capsys.readouterr().err and not (tmp_path / "r").exists()
