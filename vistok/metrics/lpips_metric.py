"""LPIPS as an evaluation metric: per-image scores with the ImageNet backbone, or a stated absence.

Built on ``vistok.losses.perceptual.PerceptualLoss``, which refuses a random trunk: the ``lpips``
wheel only carries the linear heads, and a random trunk would give numbers that are not LPIPS, so
when torchvision's AlexNet/VGG16 file is not available locally the score is reported as missing
with the reason, never computed on a random backbone.
"""
from __future__ import annotations

from typing import Optional

import torch


class LPIPSMetric:
    """``metric(recon, target)`` -> per-image LPIPS ``(B,)`` for [0, 1] images, or None when unavailable
    (``available`` is False and ``status`` says why and how to fix it)."""

    def __init__(self, net: str = "alex", backbone_weights: Optional[str] = None, device: str | torch.device = "cpu"):
        from vistok.errors import MissingWeightsError
        from vistok.losses.perceptual import PerceptualLoss

        self.net = net
        try:
            self.loss: Optional[PerceptualLoss] = PerceptualLoss(net, backbone_weights)
        except (MissingWeightsError, ImportError) as err:
            self.loss, self.available, self.status = None, False, f"LPIPS not computed: {err}"
            return
        self.loss.to(device)
        self.device = torch.device(device)
        self.available, self.status = True, self.loss.status

    @torch.inference_mode()
    def __call__(self, recon: torch.Tensor, target: torch.Tensor) -> Optional[torch.Tensor]:
        if self.loss is None:
            return None
        a = recon.to(self.device).float() * 2 - 1
        b = target.to(self.device).float() * 2 - 1
        with torch.autocast(self.device.type, enabled=False):
            return self.loss.lpips(a, b).flatten().cpu()
