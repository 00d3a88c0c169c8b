"""What the audio discriminators share: the (logits, feature maps) output type, weight-normed
convolutions, and the projection term that conditions a discriminator on a class id."""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

# One entry per sub-discriminator: logits (B, N) and the feature maps feature matching compares.
DiscriminatorOutput = Tuple[List[torch.Tensor], List[List[torch.Tensor]]]


def wn_conv2d(*args, **kwargs) -> nn.Conv2d:
    """A ``Conv2d`` under weight normalisation (magnitude and direction as two parameters)."""
    return weight_norm(nn.Conv2d(*args, **kwargs))


def as_batch(x: torch.Tensor, who: str) -> torch.Tensor:
    """Waveforms as ``(B, T)``; ``(B, 1, T)`` is accepted too."""
    if x.dim() == 3 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 2:
        raise ValueError(f"{who}: expected waveforms of shape (B, T) or (B, 1, T), got {tuple(x.shape)}")
    return x


class ClassProjection(nn.Module):
    """Projection-discriminator term ``<emb[c], h>`` summed over channels, one value per position.

    The table starts at zero, so an untrained conditional discriminator equals the unconditional one."""

    def __init__(self, num_embeddings: int, channels: int):
        super().__init__()
        self.emb = nn.Embedding(num_embeddings, channels)
        nn.init.zeros_(self.emb.weight)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``h`` (B, C, H, W), ``cond`` int ids of shape (B,) or (1,) -> (B, 1, H, W)."""
        e = self.emb(cond.reshape(-1)).view(-1, h.shape[1], 1, 1)
        return (e * h).sum(dim=1, keepdim=True)


def conditioned(out: torch.Tensor, h: torch.Tensor, cond, projection, who: str) -> torch.Tensor:
    """``out`` plus the class projection of the last hidden map ``h`` when a condition is given."""
    if cond is None:
        return out
    if projection is None:
        raise ValueError(f"{who}: got a condition but was built without num_embeddings")
    return out + projection(h, cond)
