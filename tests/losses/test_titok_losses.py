"""The blur-pool discriminator and ConvNeXt perceptual losses TiTok's stage-2 and single-stage
recipes use."""
import re
import warnings

import pytest
import torch

from vistok.errors import MissingWeightsError
from vistok.losses import (BlurPoolDiscriminator, ConvNeXtLogitLoss, PerceptualBackboneWarning,
                           WeightedPerceptualLoss, build_perceptual)
from vistok.losses.blur_discriminator import BlurDownsample


def test_blur_pool_discriminator_matches_the_published_size_and_output_grid():
    disc = BlurPoolDiscriminator()
    assert sum(p.numel() for p in disc.parameters()) == 1_909_889  # the authors' NLayerDiscriminator
    for shape in [(2, 3, 64, 64), (1, 3, 37, 45), (1, 3, 256, 256)]:
        assert disc(torch.rand(*shape)).shape == (shape[0], 1, 16, 16)


def test_blur_downsample_is_a_normalised_low_pass():
    blur = BlurDownsample(4)
    flat = torch.full((1, 2, 8, 8), 0.7)
    out = blur(flat)
    assert out.shape == (1, 2, 4, 4)
    interior = out[..., 1:-1, 1:-1]
    assert torch.allclose(interior, torch.full_like(interior, 0.7))
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2
    assert blur(checker.float()[None, None]).std() < 0.2  # the Nyquist pattern is averaged away


@pytest.fixture(scope="module")
def convnext_weights(tmp_path_factory):
    from torchvision.models import convnext_small

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "convnext_small.pth"
    torch.save(convnext_small(weights=None).state_dict(), path)
    return path


def test_convnext_loss_is_the_logit_mse_after_224_resize(convnext_weights):
    loss = ConvNeXtLogitLoss(weights=str(convnext_weights))
    assert loss.backbone_pretrained and str(convnext_weights) in loss.status
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def logits(img):
        img = torch.nn.functional.interpolate(img, size=224, mode="bilinear", antialias=True)
        return loss.net((img - mean) / std)

    with torch.no_grad():
        assert loss(x, y).item() == pytest.approx(((logits(x) - logits(y)) ** 2).mean().item(), rel=1e-5)
        assert loss(x, x).item() == 0.0
    x.requires_grad_(True)
    loss(x, y).backward()
    assert x.grad.abs().sum() > 0 and not any(p.requires_grad for p in loss.parameters())


def test_missing_convnext_weights_are_announced(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.warns(PerceptualBackboneWarning, match="RANDOM"):
        loss = ConvNeXtLogitLoss(allow_random=True)
    assert not loss.backbone_pretrained and "RANDOM" in loss.status
    with pytest.raises(MissingWeightsError, match=r"convnext_small.*not found in " + re.escape(str(tmp_path))):
        ConvNeXtLogitLoss()


def test_weighted_mix_and_names(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PerceptualBackboneWarning)
        mix = build_perceptual("lpips-convnext_s-1.0-0.1", allow_random=True)
    assert isinstance(mix, WeightedPerceptualLoss) and mix.weights == (1.0, 0.1)
    x, y = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        expected = (mix.lpips(x, y) + 0.1 * mix.convnext(x, y)) / 1.1
        assert mix(x, y).item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="lpips-convnext_s-A-B"):
        build_perceptual("resnet")
