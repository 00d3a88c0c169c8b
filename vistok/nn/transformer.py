"""Pre-LN transformer stacks on timm's ViT block (fused scaled_dot_product_attention)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

import torch
from timm.models.vision_transformer import Block
from torch import nn


@dataclass(frozen=True)
class ViTSize:
    """Width, depth and heads of a ViT; the named presets are those of the TiTok paper."""

    width: int
    depth: int
    heads: int
    mlp_ratio: float = 4.0


VIT_SIZES: Dict[str, ViTSize] = {
    "small": ViTSize(512, 8, 8),
    "base": ViTSize(768, 12, 12),
    "large": ViTSize(1024, 24, 16),
}


def resolve_size(size) -> ViTSize:
    """A preset name, a ViTSize, or a dict with width/depth/heads (tiny test models)."""
    if isinstance(size, ViTSize):
        return size
    if isinstance(size, str):
        if size not in VIT_SIZES:
            raise ValueError(f"unknown ViT size {size!r}; known: {sorted(VIT_SIZES)} or a dict(width, depth, heads)")
        return VIT_SIZES[size]
    return ViTSize(**dict(size))


class TransformerStack(nn.Module):
    """``depth`` pre-LN blocks (LayerNorm eps 1e-5, qkv bias, GELU MLP) with full attention."""

    def __init__(self, size: ViTSize):
        super().__init__()
        self.blocks = nn.ModuleList(
            Block(size.width, size.heads, mlp_ratio=size.mlp_ratio, qkv_bias=True, norm_layer=nn.LayerNorm)
            for _ in range(size.depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x
