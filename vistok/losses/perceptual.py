"""LPIPS perceptual loss that is never silently computed on a random backbone.

The ``lpips`` package ships only its small linear heads; the VGG16 / AlexNet trunk is torchvision's
ImageNet checkpoint, which torchvision would download into ``torch.hub.get_dir()/checkpoints``. This
module never downloads: it builds lpips with a random trunk (``pnet_rand=True``) and then copies the
trunk weights in from a local torchvision file when one is found. When none is found it refuses
(:class:`vistok.errors.MissingWeightsError`, naming the file and where to put it), unless the caller
opts in with ``allow_random=True`` (recipes: ``loss.perceptual_allow_random: true``): then it warns
loudly (``PerceptualBackboneWarning``) and records it in ``backbone_pretrained`` / ``status``.
"""
from __future__ import annotations

import os
import warnings
from typing import Dict, Optional
from urllib.parse import urlparse

import torch
import torch.nn as nn

from vistok.errors import MissingWeightsError

_NET_ALIASES = {"vgg": "vgg", "vgg16": "vgg", "alex": "alex", "alexnet": "alex"}
_DISPLAY = {"vgg": "VGG16", "alex": "AlexNet"}


class PerceptualBackboneWarning(UserWarning):
    """Raised (as a warning) when the LPIPS trunk is random, i.e. the loss is not LPIPS (only with
    ``allow_random=True``)."""


def _torchvision_weights(net: str):
    from torchvision.models import AlexNet_Weights, VGG16_Weights

    return VGG16_Weights.IMAGENET1K_V1 if net == "vgg" else AlexNet_Weights.IMAGENET1K_V1


def backbone_checkpoint(net: str) -> Dict[str, str]:
    """Where torchvision keeps the ImageNet trunk of LPIPS ``net``: ``{"name", "dir", "path", "url"}``.

    ``dir`` is ``torch.hub.get_dir()/checkpoints`` (honours ``TORCH_HOME`` and ``torch.hub.set_dir``);
    ``name`` is the file name torchvision gives the download (the URL's basename)."""
    net = _NET_ALIASES[net]
    url = _torchvision_weights(net).url
    name = os.path.basename(urlparse(url).path)
    folder = os.path.join(torch.hub.get_dir(), "checkpoints")
    return {"name": name, "dir": folder, "path": os.path.join(folder, name), "url": url}


def _load_trunk(trunk: nn.Module, state: Dict[str, torch.Tensor], source: str) -> None:
    """Copy torchvision ``features.<i>.*`` tensors into lpips's ``slice<k>.<i>.*`` trunk (strict)."""
    features = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    if not features:
        raise ValueError(f"{source}: no 'features.*' tensors; expected a torchvision VGG16/AlexNet state dict")
    target = {}
    for key in trunk.state_dict():
        slice_name, rest = key.split(".", 1)  # lpips keeps torchvision's indices: slice1.0.weight
        if rest not in features:
            raise ValueError(f"{source}: missing 'features.{rest}' needed by the LPIPS trunk")
        target[key] = features[rest]
    trunk.load_state_dict(target, strict=True)


class PerceptualLoss(nn.Module):
    """Mean LPIPS distance between two ``(B, 3, H, W)`` batches in [0, 1]; frozen, eval-only, fp32.

    ``net`` is ``"vgg"`` or ``"alex"``. The trunk comes from ``backbone_weights`` (a torchvision state
    dict file) when given, else from torchvision's cache file if present; else a
    :class:`~vistok.errors.MissingWeightsError` names the file and how to provide it, unless
    ``allow_random=True``, which builds a RANDOM trunk with a ``PerceptualBackboneWarning``.
    ``backbone_pretrained`` and ``status`` (one line, for logs) report which happened."""

    def __init__(self, net: str = "vgg", backbone_weights: Optional[str] = None, allow_random: bool = False):
        super().__init__()
        if net not in _NET_ALIASES:
            raise ValueError(f"PerceptualLoss: net must be 'vgg' or 'alex', got {net!r}")
        try:
            import lpips
        except ImportError as err:  # an optional (eval) dependency
            raise ImportError("PerceptualLoss needs the 'lpips' package: pip install lpips") from err
        self.net_name = _NET_ALIASES[net]
        ckpt = backbone_checkpoint(self.net_name)
        path = backbone_weights
        if path is not None and not os.path.isfile(path):
            raise FileNotFoundError(f"PerceptualLoss: backbone_weights={path!r} does not exist")
        if path is None and os.path.isfile(ckpt["path"]):
            path = ckpt["path"]
        fix = (f"put the torchvision file {ckpt['name']} (from {ckpt['url']}) into {ckpt['dir']}, or set "
               f"TORCH_HOME to a directory whose hub/checkpoints holds it, or pass backbone_weights=PATH")
        if path is None and not allow_random:
            raise MissingWeightsError(f"LPIPS needs the torchvision {_DISPLAY[self.net_name]} ImageNet weights, "
                                      f"not found at {ckpt['path']}: {fix}")
        message = (f"LPIPS backbone is RANDOM (allow_random=True): {ckpt['path']} was not found, so this perceptual "
                   f"loss is NOT LPIPS. Fix: {fix}.")
        # Always built with a random trunk (never a download); the real trunk is copied in below.
        with warnings.catch_warnings():  # lpips calls torchvision with the deprecated `pretrained=`
            warnings.filterwarnings("ignore", message=".*'pretrained' is deprecated.*")
            warnings.filterwarnings("ignore", message=".*Arguments other than a weight enum.*")
            self.lpips = lpips.LPIPS(net=self.net_name, pretrained=True, pnet_rand=True, verbose=False)
        if path is not None:
            _load_trunk(self.lpips.net, torch.load(path, map_location="cpu", weights_only=True), path)
            self.backbone_pretrained = True
            self.status = f"LPIPS({self.net_name}): pretrained backbone from {path}"
        else:
            self.backbone_pretrained = False
            warnings.warn(message, PerceptualBackboneWarning, stacklevel=2)
            self.status = (f"LPIPS({self.net_name}): RANDOM backbone (NOT LPIPS; {ckpt['name']} "
                           f"missing from {ckpt['dir']})")
        for p in self.parameters():
            p.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> "PerceptualLoss":
        """Always stays in eval mode (no dropout in the LPIPS heads), whatever ``mode`` says."""
        return super().train(False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean LPIPS(x, y) over the batch (scalar, fp32) for images in [0, 1]; gradients flow to inputs."""
        if x.shape != y.shape or x.dim() != 4:
            raise ValueError(f"PerceptualLoss: expected two equal (B, 3, H, W) batches, got {tuple(x.shape)} "
                             f"and {tuple(y.shape)}")
        with torch.autocast(device_type=x.device.type, enabled=False):
            distance = self.lpips(x.float() * 2 - 1, y.float() * 2 - 1)
        return distance.mean()
