import os
import warnings

import pytest
import torch
import torchvision

pytest.importorskip("lpips")

from vistok.errors import MissingWeightsError  # noqa: E402
from vistok.losses import PerceptualBackboneWarning, PerceptualLoss, backbone_checkpoint  # noqa: E402


def fake_torchvision_checkpoint(net: str, path) -> dict:
    """A torchvision-format state dict with torchvision's own key names (model built on the meta device,
    so no slow init) filled with random tensors, saved at ``path``."""
    with torch.device("meta"):
        model = torchvision.models.vgg16() if net == "vgg" else torchvision.models.alexnet()
    gen = torch.Generator().manual_seed(1)
    state = {k: torch.randn(v.shape, generator=gen) for k, v in model.state_dict().items()
             if k.startswith("features.")}
    state["classifier.6.bias"] = torch.zeros(1000)  # unrelated keys of a full checkpoint are ignored
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(state, path)
    return state


def assert_trunk_equals(loss: PerceptualLoss, state: dict) -> None:
    trunk = loss.lpips.net.state_dict()
    assert len(trunk) == len([k for k in state if k.startswith("features.")])
    for key, value in trunk.items():
        assert torch.equal(value, state["features." + key.split(".", 1)[1]]), key


@pytest.fixture(scope="module")
def empty_torch_home(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("torch_home_empty")
        mp.setenv("TORCH_HOME", str(home))
        yield home


@pytest.fixture(scope="module")
def random_alex(empty_torch_home):
    with pytest.warns(PerceptualBackboneWarning) as record:
        loss = PerceptualLoss("alex", allow_random=True)
    return loss, str(record[0].message)


def test_checkpoint_location_follows_torch_home(empty_torch_home):
    vgg, alex = backbone_checkpoint("vgg"), backbone_checkpoint("alex")
    assert vgg["name"] == os.path.basename(torchvision.models.VGG16_Weights.IMAGENET1K_V1.url) == "vgg16-397923af.pth"
    assert alex["name"] == "alexnet-owt-7be5be79.pth"
    assert vgg["dir"] == os.path.join(str(empty_torch_home), "hub", "checkpoints")


def test_random_backbone_is_loud(random_alex):
    loss, message = random_alex
    assert loss.backbone_pretrained is False
    assert "RANDOM" in message and "NOT LPIPS" in message
    assert "alexnet-owt-7be5be79.pth" in message and "TORCH_HOME" in message
    assert "RANDOM" in loss.status and "\n" not in loss.status


def test_missing_backbone_is_an_error_naming_the_file(empty_torch_home):
    """Without the torchvision trunk there is no LPIPS: refused unless a random network is asked for."""
    with pytest.raises(MissingWeightsError) as caught:
        PerceptualLoss("alex")
    message = str(caught.value)
    expected = os.path.join(str(empty_torch_home), "hub", "checkpoints", "alexnet-owt-7be5be79.pth")
    assert expected in message and "TORCH_HOME" in message and "backbone_weights=PATH" in message
    assert isinstance(caught.value, FileNotFoundError)


def test_distance_values_gradient_and_modes(random_alex):
    loss, _ = random_alex
    assert all(not p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.training and not any(m.training for m in loss.modules())
    x = torch.rand(2, 3, 32, 32)
    assert loss(x, x).item() == 0.0
    y = torch.rand(2, 3, 32, 32, requires_grad=True)
    d = loss(x, y)
    assert d.dim() == 0 and d.item() > 0
    d.backward()
    assert y.grad is not None and y.grad.abs().sum() > 0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert loss(x, y).dtype == torch.float32


def test_pretrained_backbone_from_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = os.path.join(torch.hub.get_dir(), "checkpoints", "alexnet-owt-7be5be79.pth")
    assert path.startswith(str(tmp_path))
    state = fake_torchvision_checkpoint("alex", path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerceptualBackboneWarning)
        loss = PerceptualLoss("alex")
    assert loss.backbone_pretrained is True and path in loss.status
    assert_trunk_equals(loss, state)
    import lpips  # the linear heads still come from the lpips wheel

    heads = torch.load(os.path.join(os.path.dirname(lpips.__file__), "weights", "v0.1", "alex.pth"), map_location="cpu")
    for key, value in heads.items():
        assert torch.equal(loss.lpips.state_dict()[key], value), key


def test_explicit_backbone_weights_vgg(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    path = str(tmp_path / "my_vgg.pth")
    state = fake_torchvision_checkpoint("vgg", path)
    loss = PerceptualLoss("vgg", backbone_weights=path)
    assert loss.backbone_pretrained is True
    assert_trunk_equals(loss, state)
    with pytest.raises(FileNotFoundError):
        PerceptualLoss("alex", backbone_weights=str(tmp_path / "missing.pth"))
