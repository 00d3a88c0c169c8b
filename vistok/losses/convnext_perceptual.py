"""TiTok's "convnext_s" perceptual loss: squared distance between the ImageNet logits of a frozen
torchvision ConvNeXt-Small for the input and the reconstruction (both resized to 224 with
antialiasing), and the weighted LPIPS + ConvNeXt mix its single-stage recipes name
``lpips-convnext_s-A-B`` = (A * LPIPS + B * ConvNeXt) / (A + B).

Like :class:`vistok.losses.PerceptualLoss`, nothing is downloaded: the ConvNeXt weights come from
torchvision's cache file (or an explicit path); without them it refuses, unless ``allow_random``
asks for a random network, which is then announced loudly."""
from __future__ import annotations

import os
import re
import warnings
from typing import Optional
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import nn

from vistok.errors import MissingWeightsError
from vistok.losses.perceptual import PerceptualBackboneWarning, PerceptualLoss

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def convnext_checkpoint() -> dict:
    """Where torchvision keeps ConvNeXt-Small IMAGENET1K_V1: ``{"name", "dir", "path", "url"}``."""
    from torchvision.models import ConvNeXt_Small_Weights

    url = ConvNeXt_Small_Weights.IMAGENET1K_V1.url
    name = os.path.basename(urlparse(url).path)
    folder = os.path.join(torch.hub.get_dir(), "checkpoints")
    return {"name": name, "dir": folder, "path": os.path.join(folder, name), "url": url}


class ConvNeXtLogitLoss(nn.Module):
    """Mean squared difference of ConvNeXt-Small logits for two ``(B, 3, H, W)`` batches in [0, 1].
    Without the ImageNet weights it raises :class:`~vistok.errors.MissingWeightsError` unless
    ``allow_random``."""

    def __init__(self, weights: Optional[str] = None, allow_random: bool = False):
        super().__init__()
        from torchvision.models import convnext_small

        ckpt = convnext_checkpoint()
        if weights is not None and not os.path.isfile(weights):
            raise FileNotFoundError(f"ConvNeXtLogitLoss: weights={weights!r} does not exist")
        path = weights or (ckpt["path"] if os.path.isfile(ckpt["path"]) else None)
        self.net = convnext_small(weights=None)
        if path is not None:
            self.net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
            self.backbone_pretrained = True
            self.status = f"ConvNeXt-S perceptual loss: ImageNet weights from {path}"
        else:
            fix = f"put the torchvision file (from {ckpt['url']}) there, set TORCH_HOME, or pass weights=PATH"
            if not allow_random:
                raise MissingWeightsError(f"the ConvNeXt-S perceptual loss needs {ckpt['name']}, not found in "
                                          f"{ckpt['dir']}: {fix}")
            warnings.warn(f"ConvNeXt-S perceptual network is RANDOM (allow_random=True): {ckpt['name']} was not "
                          f"found in {ckpt['dir']}. Fix: {fix}.", PerceptualBackboneWarning, stacklevel=2)
            self.backbone_pretrained = False
            self.status = f"ConvNeXt-S perceptual loss: RANDOM network ({ckpt['name']} missing from {ckpt['dir']})"
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "ConvNeXtLogitLoss":
        return super().train(False)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=224, mode="bilinear", align_corners=False, antialias=True)
        return self.net((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            return F.mse_loss(self._logits(x.float()), self._logits(y.float()))


class WeightedPerceptualLoss(nn.Module):
    """``(a * LPIPS + b * ConvNeXt) / (a + b)`` with both parts frozen."""

    def __init__(self, lpips_weight: float, convnext_weight: float, lpips_net: str = "vgg", allow_random: bool = False):
        super().__init__()
        if lpips_weight < 0 or convnext_weight < 0 or lpips_weight + convnext_weight <= 0:
            raise ValueError(f"perceptual weights must be >= 0 and not both 0, got {lpips_weight}, {convnext_weight}")
        self.lpips = PerceptualLoss(lpips_net, allow_random=allow_random)
        self.convnext = ConvNeXtLogitLoss(allow_random=allow_random)
        self.weights = (float(lpips_weight), float(convnext_weight))
        self.status = f"{self.lpips.status}; {self.convnext.status}"

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        a, b = self.weights
        return (a * self.lpips(x, y) + b * self.convnext(x, y)) / (a + b)


_MIX = re.compile(r"^lpips-convnext_s-([0-9.eE+-]+)-([0-9.eE+-]+)$")


def build_perceptual(name: str, allow_random: bool = False) -> nn.Module:
    """``vgg`` / ``alex`` (LPIPS), ``convnext_s``, or ``lpips-convnext_s-A-B``; each has ``status``.
    ``allow_random``: build a random network when its weights are missing (else an error)."""
    if name in ("vgg", "vgg16", "alex", "alexnet"):
        return PerceptualLoss(name, allow_random=allow_random)
    if name == "convnext_s":
        return ConvNeXtLogitLoss(allow_random=allow_random)
    mix = _MIX.match(name)
    if mix:
        return WeightedPerceptualLoss(float(mix.group(1)), float(mix.group(2)), allow_random=allow_random)
    raise ValueError(f"loss.perceptual_net: unknown network {name!r}; use vgg, alex, convnext_s or "
                     f"lpips-convnext_s-A-B (e.g. lpips-convnext_s-1.0-0.1)")
