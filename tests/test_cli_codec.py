"""`tokzoo encode / decode / reconstruct / zoo` end to end on a saved tiny tokenizer and real photos."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.models.test_titok import tiny_config
from vistok.cli import main
from vistok.models.titok import TiTok

SAMPLES = sorted(str(p) for p in (Path(__file__).resolve().parents[1] / "vistok/assets/samples").glob("*.jpg"))


@pytest.fixture
def model_dir(tmp_path):
    torch.manual_seed(0)
    TiTok(tiny_config(True)).save_pretrained(tmp_path / "tok")
    return str(tmp_path / "tok")


def test_encode_decode_matches_reconstruct(model_dir, tmp_path, capsys):
    ids_path = tmp_path / "ids.npy"
    assert main(["encode", *SAMPLES, "--model", model_dir, "-o", str(ids_path), "--batch-size", "3"]) == 0
    ids = np.load(ids_path)
    assert ids.shape == (len(SAMPLES), 8) and ids.dtype == np.int32
    assert main(["decode", str(ids_path), "--model", model_dir, "-o", str(tmp_path / "dec")]) == 0
    assert main(["reconstruct", *SAMPLES, "--model", model_dir, "-o", str(tmp_path / "rec")]) == 0
    out = capsys.readouterr().out
    assert out.count(" dB") == len(SAMPLES) + 1 and "mean PSNR" in out
    assert "protocol: " in out and "precision=fp32" in out and "uint8 rounding" in out
    for i, sample in enumerate(SAMPLES):
        decoded = np.asarray(Image.open(tmp_path / "dec" / f"{i:06d}.png"))
        rebuilt = np.asarray(Image.open(tmp_path / "rec" / f"{Path(sample).stem}.png"))
        assert decoded.shape == (32, 32, 3)
        assert np.array_equal(decoded, rebuilt)


def test_any_size_and_mode_is_accepted(model_dir, tmp_path):
    gray = tmp_path / "wide_gray.png"
    Image.fromarray((np.arange(40 * 90) % 255).astype(np.uint8).reshape(40, 90), mode="L").save(gray)
    rgba = tmp_path / "tall.png"
    Image.new("RGBA", (20, 70), (10, 200, 30, 128)).save(rgba)
    assert main(["encode", str(gray), str(rgba), "--model", model_dir, "-o", str(tmp_path / "ids.npy")]) == 0
    assert np.load(tmp_path / "ids.npy").shape == (2, 8)


def test_num_tokens_prefix(model_dir, tmp_path):
    assert main(["encode", SAMPLES[0], "--model", model_dir, "--num-tokens", "3", "-o", str(tmp_path / "k.npy")]) == 0
    assert np.load(tmp_path / "k.npy").shape == (1, 3)
    assert main(["decode", str(tmp_path / "k.npy"), "--model", model_dir, "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "000000.png").is_file()


def test_non_image_is_a_clear_error_and_writes_nothing(model_dir, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    out = tmp_path / "ids.npy"
    assert main(["encode", SAMPLES[0], str(notes), "--model", model_dir, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "notes.txt: not an image" in err and "Traceback" not in err
    assert not out.exists()
    assert main(["reconstruct", str(tmp_path / "missing.jpg"), "--model", model_dir, "-o", str(tmp_path / "r")]) == 2
    assert "missing.jpg: no such file" in capsys.readouterr().err


def test_encode_output_must_be_named_npy(model_dir, tmp_path, capsys):
    # np.save would have written ids.npz.npy and the user would look for ids.npz
    assert main(["encode", SAMPLES[0], "--model", model_dir, "-o", str(tmp_path / "ids.npz")]) == 2
    assert "--output" in capsys.readouterr().err and "ids.npz" and not list(tmp_path.glob("ids*"))


def test_zoo_commands(capsys):
    assert main(["zoo", "list", "titok-s*"]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert header.split()[:6] == ["name", "family", "params", "tokens", "codebook", "bitrate"]
    assert row.split()[0] == "titok-s128" and "128 per 256px" in row and " 4096 " in row and "rFID 1.71" in row
    assert main(["zoo", "list", "wavtokenizer-small-75"]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert "UTMOS 4.05" in row  # audio cards show their headline number too
    assert "75/s" in row and "0.9 kbps" in row  # 75 tokens/s of 12 bits
    assert main(["zoo", "list", "encodec-24khz"]) == 0
    assert "75/s x 32 ids" in capsys.readouterr().out.splitlines()[1]
    assert main(["zoo", "info", "titok-l32"]) == 0
    info = capsys.readouterr().out
    assert "yucornetto/tokenizer_titok_l32_imagenet" in info and "rfid: 2.21" in info and "apache-2.0" in info
    assert main(["zoo", "info", "titok-l3"]) == 2
    assert "did you mean titok-l32" in capsys.readouterr().err
