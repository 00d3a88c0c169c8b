"""What every tokenizer's forward returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch

from vistok.quant.base import Stats


@dataclass
class ReconOut:
    """recon: the reconstruction (images in [0, 1] before clamping, or waveforms).
    indices: token ids (None for continuous bottlenecks). loss: the bottleneck's own loss
    (quantizer or KL). latent: what the decoder consumed. stats: named floats for logging."""

    recon: torch.Tensor
    indices: Optional[torch.Tensor]
    loss: torch.Tensor
    latent: torch.Tensor
    stats: Stats = field(default_factory=Stats)
