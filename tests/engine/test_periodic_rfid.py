"""Periodic rFID during training (logging.rfid_images): the number is the FID of the reconstructions
against the held-out originals, it lands in metrics.jsonl as val/rfid, and a run without Inception
weights warns once and finishes."""
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from tests.engine.conftest import REPO, TINY, metrics, run_training
from tests.metrics.fakes import FakeInception
from vistok.data.images import save_image, to_uint8
from vistok.engine.periodic_rfid import PeriodicRFID
from vistok.engine.recipe import RecipeError, load_recipe
from vistok.metrics import fid as F
from vistok.metrics.eval_images import EvalImages
from vistok.metrics.inception_weights import InceptionWeightsError
from vistok.metrics.samples import DatasetSource
from vistok.models.base import Tokenizer

pytest.importorskip("torch_fidelity")
SIZE = 32


class Identity(Tokenizer):
    """A "tokenizer" that gives the image back."""

    family = "identity"

    def encode(self, x):
        return x

    def decode(self, ids):
        return ids


class Darken(Identity):
    """A lossy one: every image at 60 % brightness."""

    def decode(self, ids):
        return 0.6 * ids


@pytest.fixture(scope="module")
def val_folder(tmp_path_factory):
    """80 distinct 32 px images (more than the fake Inception's 64 feature dimensions)."""
    from vistok.data.bundled import load_samples

    folder = tmp_path_factory.mktemp("val")
    photos = nn.functional.interpolate(load_samples(), size=(96, 96), mode="area")
    gen = torch.Generator().manual_seed(0)
    for k in range(80):
        y, x = torch.randint(0, 96 - SIZE, (2,), generator=gen).tolist()
        save_image(photos[k % len(photos), :, y : y + SIZE, x : x + SIZE], folder / f"{k:03d}.png")
    return folder


def _rfid(folder, loader):
    source = DatasetSource(EvalImages(folder, SIZE, "titok"))
    return PeriodicRFID(source, torch.device("cpu"), batch_size=16, inception_loader=loader)


def test_rfid_is_the_fid_of_reconstructions_against_the_originals(val_folder):
    fake = FakeInception()
    rfid = _rfid(val_folder, lambda device: fake)
    assert rfid.measure(Identity())["val/rfid"] == pytest.approx(0.0, abs=1e-6)
    assert fake.seen == 160  # originals once, then the reconstructions

    model = Darken().train()
    value = rfid.measure(model)["val/rfid"]
    assert fake.seen == 240 and model.training  # the reference is reused; the model's mode is restored
    originals = torch.stack([EvalImages(val_folder, SIZE, "titok")[i][1] for i in range(80)])
    recons = to_uint8(model.decode(model.encode(originals.float() / 255)))
    ref, rec = (F.FeatureStats.from_features(fake(x)["2048"]) for x in (originals, recons))
    assert value > 0.1 and value == pytest.approx(F.frechet_distance(rec, ref, "scipy"), rel=1e-4)


def test_missing_inception_weights_warn_once_and_skip(val_folder):
    calls, warnings = [], []

    def loader(device):
        calls.append(device)
        raise InceptionWeightsError("no FID Inception weights available")

    rfid = _rfid(val_folder, loader)
    assert rfid.measure(Identity(), warnings.append) == {}
    assert rfid.measure(Identity(), warnings.append) == {}
    assert len(calls) == 1 and len(warnings) == 1 and "no FID Inception weights" in warnings[0]


def _recipe(image_root, *overrides):
    return load_recipe(REPO / "train/demo/titok_tiny.yaml",
                       [*TINY, f"data.train={image_root}/train", f"data.val={image_root}/val", *overrides])


def test_recipes_that_cannot_measure_rfid_are_refused(image_root, tmp_path):
    model = Identity()
    assert PeriodicRFID.from_recipe(_recipe(image_root), model, torch.device("cpu")) is None
    assert PeriodicRFID.from_recipe(_recipe(image_root, "logging.rfid_images=4"), model, "cpu") is not None
    with pytest.raises(RecipeError, match="found only 4"):
        PeriodicRFID.from_recipe(_recipe(image_root, "logging.rfid_images=5"), model, "cpu")
    with pytest.raises(RecipeError, match="data.val to be a folder"):
        PeriodicRFID.from_recipe(_recipe(image_root, "logging.rfid_images=4", f"data.val={tmp_path}/nope"), model,
                                 "cpu")
    with pytest.raises(RecipeError, match="image tokenizer"):
        PeriodicRFID.from_recipe(_recipe(image_root, "logging.rfid_images=4", "data.kind=audio"), model, "cpu")
    with pytest.raises(RecipeError, match=">= 0"):
        PeriodicRFID.from_recipe(_recipe(image_root, "logging.rfid_images=-1"), model, "cpu")


@pytest.mark.slow
def test_tiny_run_logs_val_rfid(tmp_path, image_root):
    out = tmp_path / "run"
    helper = REPO / "tests/helpers/train_fake_inception.py"
    args = [sys.executable, str(helper), str(REPO / "train/demo/titok_tiny.yaml"), *TINY,
            f"data.train={image_root}/train", f"data.val={image_root}/val", f"experiment.output_dir={out}",
            "logging.rfid_images=4"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    evals = [m for m in metrics(out) if "val/psnr" in m]
    assert [m["step"] for m in evals] == [4, 8]
    assert all(m["val/rfid"] > 0 for m in evals) and evals[0]["val/rfid"] != evals[1]["val/rfid"]


@pytest.mark.slow
def test_tiny_run_without_inception_weights_finishes(tmp_path, image_root):
    result = run_training(tmp_path / "run", image_root, "logging.rfid_images=4",
                          env={"TOKZOO_INCEPTION_WEIGHTS": str(tmp_path / "missing.pth")})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert not any("val/rfid" in m for m in metrics(tmp_path / "run"))
    events = (tmp_path / "run/events.log").read_text()
    assert events.count("val/rfid is not computed") == 1 and "missing.pth" in events


@pytest.mark.slow
@pytest.mark.distributed
def test_two_processes_gather_the_features_of_all_images(tmp_path, image_root):
    """Each rank reconstructs half of the images; the logged rFID at the last step equals the rFID
    of the exported (EMA) tokenizer measured by one process on all of them."""
    from vistok import load_tokenizer

    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "tests/helpers/train_fake_inception.py"), str(REPO / "train/demo/titok_tiny.yaml"), *TINY,
           f"data.train={image_root}/train", f"data.val={image_root}/val", f"experiment.output_dir={out}",
           "logging.rfid_images=4", "training.ema_decay=0.9"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    logged = [m["val/rfid"] for m in metrics(out) if "val/rfid" in m]
    assert len(logged) == 2
    model = load_tokenizer(out / "export")
    rfid = PeriodicRFID(DatasetSource(EvalImages(image_root / "val", SIZE, "titok")), torch.device("cpu"),
                        inception_loader=lambda device: FakeInception())
    assert rfid.measure(model)["val/rfid"] == pytest.approx(logged[-1], rel=1e-5)
