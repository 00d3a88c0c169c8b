"""`tokzoo tokenize` and `tokzoo generate` on a tiny TiTok and a tiny generator (CPU)."""
import json

import numpy as np
import pytest
import torch

from tests.generator.conftest import tiny_generator
from vistok.cli import main
from vistok.commands.generate import parse_classes
from vistok.data.images import load_image
from vistok.data.tokens import TokenShards, read_meta
from vistok.hub.loading import load_tokenizer


@pytest.fixture(scope="module")
def generator_dir(tmp_path_factory):
    model = tiny_generator(codebook_size=64, num_tokens=8, num_classes=2)
    return model.save_pretrained(tmp_path_factory.mktemp("gen") / "gen")


def test_tokenize_labelled_folder(labelled_root, titok_dir, tmp_path):
    out = tmp_path / "tokens"
    args = ["tokenize", str(labelled_root), "--model", str(titok_dir), "-o", str(out), "--batch-size", "2",
            "--device", "cpu", "--flip"]
    assert main(args) == 0
    meta = read_meta(out)
    assert meta["count"] == 5 and meta["num_tokens"] == 8 and meta["codebook_size"] == 64
    assert meta["classes"] == ["cat", "dog"] and meta["views"] == ["ids", "ids_flip"]
    assert meta["tokenizer"] == str(titok_dir) and len(meta["tokenizer_config_sha256"]) == 64
    tokenizer = load_tokenizer(titok_dir)
    paths = ["cat/a.png", "cat/b.png", "cat/c.png", "dog/deep/y.jpg", "dog/x.jpg"]
    images = torch.stack([load_image(labelled_root / p, 32) for p in paths])
    with torch.no_grad():
        expected, mirrored = tokenizer.encode(images), tokenizer.encode(images.flip(-1))
    data = TokenShards(out, flip=False)
    assert torch.equal(torch.stack([data[i][0] for i in range(5)]), expected)
    assert [int(data[i][1]) for i in range(5)] == [0, 0, 0, 1, 1]
    assert np.array_equal(np.load(out / "ids_flip-00000.npy"), mirrored.numpy())
    assert main(args) == 2  # exists: refused without --overwrite


def test_generate_npz(generator_dir, titok_dir, tmp_path):
    out = tmp_path / "samples.npz"
    common = ["generate", "--generator", str(generator_dir), "--tokenizer", str(titok_dir), "--num-per-class", "3",
              "--classes", "0-1", "--cfg", "2.0", "--top-p", "0.9", "--seed", "1", "--device", "cpu"]
    assert main([*common, "-o", str(out), "--batch-size", "4"]) == 0
    with np.load(out) as npz:
        images, labels = npz["arr_0"], npz["arr_1"]
    assert images.dtype == np.uint8 and images.shape == (6, 32, 32, 3)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["cfg_scale"] == 2.0 and record["count"] == 6
    from vistok.metrics.samples import NpzSource

    assert len(NpzSource(out)) == 6
    # each sample's randomness comes from (seed, index): the batch size does not matter
    assert main([*common, "-o", str(tmp_path / "again.npz"), "--batch-size", "6"]) == 0
    with np.load(tmp_path / "again.npz") as npz:
        assert np.array_equal(npz["arr_0"], images)
    assert not list(tmp_path.glob(".*.tmp"))


def test_generate_pngs(generator_dir, titok_dir, tmp_path):
    out = tmp_path / "pngs"
    assert main(["generate", "--generator", str(generator_dir), "--tokenizer", str(titok_dir), "--num-per-class", "2",
                 "--classes", "1", "-o", str(out), "--device", "cpu"]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["0001/000000.png", "0001/000001.png"]


def test_generate_refuses_a_mismatched_tokenizer(titok_dir, tmp_path):
    wrong = tiny_generator(codebook_size=32).save_pretrained(tmp_path / "wrong")
    assert main(["generate", "--generator", str(wrong), "--tokenizer", str(titok_dir), "--num-per-class", "1",
                 "-o", str(tmp_path / "x.npz"), "--device", "cpu"]) == 2
    assert not (tmp_path / "x.npz").exists()


def test_parse_classes():
    assert parse_classes(["0", "5-7", "9,10"], 11) == [0, 5, 6, 7, 9, 10]
    assert parse_classes(None, 3) == [0, 1, 2]
    with pytest.raises(ValueError, match="outside"):
        parse_classes(["3"], 3)
    with pytest.raises(ValueError, match="range"):
        parse_classes(["a-b"], 3)


def test_tokenize_flat_folder_is_one_class(labelled_root, titok_dir, tmp_path):
    out = tmp_path / "tokens"
    assert main(["tokenize", str(labelled_root / "cat"), "--flat", "--model", str(titok_dir), "-o", str(out),
                 "--device", "cpu"]) == 0
    meta = read_meta(out)
    assert meta["count"] == 3 and meta["num_classes"] == 1 and meta["classes"] == ["cat"]
    assert [int(TokenShards(out)[i][1]) for i in range(3)] == [0, 0, 0]
    # without --flat, images directly under the root are an error that names the file
    assert main(["tokenize", str(labelled_root / "cat"), "--model", str(titok_dir), "-o", str(tmp_path / "x"),
                 "--device", "cpu"]) == 2


def test_posttrain_pairs_command(labelled_root, titok_dir, generator_dir, tmp_path, capsys):
    out = tmp_path / "pairs"
    args = ["posttrain-pairs", str(labelled_root), "--model", str(titok_dir), "--generator", str(generator_dir),
            "-o", str(out), "--sigma", "0.7", "--num-samples", "3", "--cfg-scale", "2.0", "--device", "cpu"]
    assert main(args) == 0
    assert len(list(out.rglob("*.png"))) == 3 and "wrote 3 generated images" in capsys.readouterr().out
    assert main([*args[:-2], "--sigma", "1.5", "--device", "cpu"]) == 2
