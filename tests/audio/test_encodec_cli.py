"""`tokzoo audio` with EnCodec: a mono codec round-trips through the files; one whose ids need
per-segment scales, or --chunk-size on a codec without chunked decoding, is refused up front."""
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


def test_codecs_the_command_cannot_carry_are_refused(tmp_path, capsys):
    segmented = _saved(tmp_path, "segmented")
    assert main(["audio", "encode", SPEECH[0], "--model", segmented, "-o", str(tmp_path / "x.npy")]) == 2
    assert "2 channel(s) and per-segment scales" in capsys.readouterr().err
    mono = _saved(tmp_path, "causal")
    assert main(["audio", "reconstruct", SPEECH[0], "--model", mono, "-o", str(tmp_path / "r"),
                 "--chunk-size", "8"]) == 2
    assert "--chunk-size: " in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_the_file_evaluation_refuses_a_codec_that_needs_its_scales(tmp_path):
    from audiotok.evaluation import evaluate_codec
    from vistok.errors import InputError

    with pytest.raises(InputError, match="per-segment scales"):
        evaluate_codec(tiny_model("segmented"), [Path(SPEECH[0])], Path(SPEECH[0]).parent, tmp_path / "out", "tiny")
    assert not (tmp_path / "out").exists()
