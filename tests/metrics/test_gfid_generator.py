"""gFID on the fly: a generator + tokenizer as a SampleSource, seeded per sample, and
`tokzoo eval gfid --generator` end to end (fake Inception: the plumbing, not the network)."""
import json

import numpy as np
import pytest
import torch

from tests.generator.conftest import TINY_TITOK, tiny_generator
from tests.metrics.fakes import FakeInception
from vistok.cli import main
from vistok.metrics.generator_samples import GeneratorSource, balanced_labels
from vistok.models.titok import TiTok

SAMPLING = {"cfg_scale": 2.0, "cfg_power": None, "temperature": 1.0, "top_k": 0, "top_p": 0.9}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("pair")
    tokenizer = TiTok(TINY_TITOK).eval()
    generator = tiny_generator(codebook_size=64, num_tokens=8, num_classes=3)
    return generator, tokenizer, generator.save_pretrained(root / "gen"), tokenizer.save_pretrained(root / "tok")


def collect(source, start, stop, batch_size):
    indices, images = zip(*source.batches(start, stop, batch_size))
    return torch.cat(indices), torch.cat(images)


def test_balanced_labels():
    assert balanced_labels(10, [0, 1, 2]) == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert balanced_labels(6, [4, 7]) == [4, 4, 4, 7, 7, 7]
    assert np.bincount(balanced_labels(50_000, list(range(1000)))).tolist() == [50] * 1000
    with pytest.raises(ValueError, match="positive"):
        balanced_labels(0, [0])


def test_any_range_gives_the_same_samples_as_tokzoo_generate(models, tmp_path):
    generator, tokenizer, gen_dir, tok_dir = models
    source = GeneratorSource(generator, tokenizer, balanced_labels(6, [0, 2]), seed=1, sampling=SAMPLING)
    indices, images = collect(source, 0, 6, 4)
    assert indices.tolist() == list(range(6)) and images.dtype == torch.uint8 and images.shape == (6, 3, 32, 32)
    # a process that owns samples 2..4 (multi-rank sharding) draws exactly those images
    part_indices, part = collect(source, 2, 5, 1)
    assert part_indices.tolist() == [2, 3, 4] and torch.equal(part, images[2:5])
    assert not torch.equal(images[0], images[1])  # per-sample seeds, not one stream reused
    out = tmp_path / "samples.npz"
    assert main(["generate", "--generator", str(gen_dir), "--tokenizer", str(tok_dir), "--num-per-class", "3",
                 "--classes", "0,2", "--cfg", "2.0", "--top-p", "0.9", "--seed", "1", "--device", "cpu",
                 "-o", str(out)]) == 0
    with np.load(out) as npz:
        assert np.array_equal(npz["arr_0"], images.permute(0, 2, 3, 1).numpy())
    with pytest.raises(ValueError, match="outside the generator's classes"):
        GeneratorSource(generator, tokenizer, [3])


def test_eval_gfid_with_a_generator(models, photo_folder, tmp_path, monkeypatch, capsys):
    _, _, gen_dir, tok_dir = models
    monkeypatch.setattr("vistok.commands.evaluate._inception", lambda args, device, isc: FakeInception(isc))
    common = ["--ref", str(photo_folder), "--ref-image-size", "32", "--workers", "0", "--batch-size", "4",
              "--device", "cpu"]
    out = tmp_path / "gfid"
    assert main(["eval", "gfid", "--generator", str(gen_dir), "--model", str(tok_dir), "--num-samples", "6",
                 "--labels", "0,2", "--cfg-scale", "2.0", "--top-p", "0.9", "--seed", "1", "--out", str(out),
                 *common]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["metrics"]["num_samples"] == 6 and result["metrics"]["gfid"] > 0
    protocol = result["protocol"]
    assert protocol["seed"] == 1 and protocol["dataset"]["count"] == 6 and protocol["dataset"]["num_classes"] == 2
    assert protocol["dataset"]["sampling"]["cfg_scale"] == 2.0 and protocol["dataset"]["precision"] == "fp32"
    assert protocol["tokenizer"]["generator"] == str(gen_dir) and protocol["tokenizer"]["tokenizer_family"] == "titok"
    assert (out / "report.md").is_file() and "gfid=" in capsys.readouterr().out
    # the same samples written by `tokzoo generate` and scored from disk give the same number
    npz = tmp_path / "samples.npz"
    assert main(["generate", "--generator", str(gen_dir), "--tokenizer", str(tok_dir), "--num-per-class", "3",
                 "--classes", "0,2", "--cfg", "2.0", "--top-p", "0.9", "--seed", "1", "--device", "cpu",
                 "-o", str(npz)]) == 0
    assert main(["eval", "gfid", "--samples", str(npz), "--out", str(tmp_path / "disk"), *common]) == 0
    disk = json.loads((tmp_path / "disk/result.json").read_text())
    assert disk["metrics"]["gfid"] == pytest.approx(result["metrics"]["gfid"], rel=1e-6)


def test_generator_needs_its_tokenizer(models, photo_folder, tmp_path, capsys):
    _, _, gen_dir, _ = models
    code = main(["eval", "gfid", "--generator", str(gen_dir), "--ref", str(photo_folder), "--out", str(tmp_path / "o")])
    assert code == 2 and "--generator needs --model" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
