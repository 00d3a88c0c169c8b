"""The Vocos backbone as WavTokenizer extends it: a frame-rate-preserving decoder made of an input
conv, a "positional" net (ResNet blocks around one global single-head self-attention), and
ConvNeXt blocks with adaptive layer norm."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


class AdaLayerNorm(nn.Module):
    """Layer norm without affine weights, scaled and shifted by rows picked by a condition id."""

    def __init__(self, num_embeddings: int, dim: int, eps: float = 1e-6):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.scale = nn.Embedding(num_embeddings, dim)
        self.shift = nn.Embedding(num_embeddings, dim)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``x (B, L, dim)``, ``cond (B,)`` or ``(1,)`` integer ids."""
        x = F.layer_norm(x, (self.dim,), eps=self.eps)
        return x * self.scale(cond)[:, None] + self.shift(cond)[:, None]


class ConvNeXtBlock(nn.Module):
    """Depthwise conv (k7) -> AdaLN -> Linear up -> GELU -> Linear down -> layer scale, residual."""

    def __init__(self, dim: int, intermediate_dim: int, layer_scale: float, num_conditions: int, eps: float = 1e-6):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = AdaLayerNorm(num_conditions, dim, eps)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale)))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.dwconv(x).transpose(1, 2), cond)
        h = self.pwconv2(F.gelu(self.pwconv1(h))) * self.gamma
        return x + h.transpose(1, 2)


class ResnetBlock(nn.Module):
    """GroupNorm -> SiLU -> conv k3, twice (dropout before the second conv), residual."""

    def __init__(self, dim: int, groups: int = 32, dropout: float = 0.1, eps: float = 1e-6):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, dim, eps=eps)
        self.conv1 = nn.Conv1d(dim, dim, kernel_size=3, padding=1)
        self.norm2 = nn.GroupNorm(groups, dim, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(dim, dim, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(self.dropout(F.silu(self.norm2(h))))


class SelfAttention(nn.Module):
    """Single-head self-attention over all frames (1x1-conv projections), residual. Runs on
    ``scaled_dot_product_attention`` with contiguous ``(B, 1, L, C)`` inputs, so a fused kernel
    (CPU flash attention; flash / memory-efficient on CUDA) keeps memory linear in ``L``."""

    def __init__(self, dim: int, groups: int = 32, eps: float = 1e-6):
        super().__init__()
        self.norm = nn.GroupNorm(groups, dim, eps=eps)
        self.q = nn.Conv1d(dim, dim, kernel_size=1)
        self.k = nn.Conv1d(dim, dim, kernel_size=1)
        self.v = nn.Conv1d(dim, dim, kernel_size=1)
        self.proj_out = nn.Conv1d(dim, dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        # contiguous (B, 1, L, C): the fused SDPA kernels need the last dim at stride 1; the bare
        # transpose of (B, C, L) sends SDPA to its math path, which materialises the L x L map
        q, k, v = (proj(h).transpose(1, 2).contiguous()[:, None] for proj in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)[:, 0].transpose(1, 2)
        return x + self.proj_out(out)


class VocosBackbone(nn.Module):
    """Latent ``(B, C_in, L)`` -> features ``(B, L, dim)`` at the same frame rate.

    ``pos_net`` = ResNet, ResNet, attention, ResNet, ResNet, GroupNorm (``attention=False`` swaps the
    attention for an identity, keeping the layout); then AdaLN, ``num_layers`` ConvNeXt blocks
    and a final LayerNorm. ``cond`` picks the AdaLN row (always 0 at inference).
    """

    def __init__(self, input_channels: int = 512, dim: int = 768, intermediate_dim: int = 2304, num_layers: int = 12,
                 num_conditions: int = 4, groups: int = 32, dropout: float = 0.1, attention: bool = True,
                 eps: float = 1e-6):
        super().__init__()
        self.embed = nn.Conv1d(input_channels, dim, kernel_size=7, padding=3)
        self.pos_net = nn.ModuleList([
            ResnetBlock(dim, groups, dropout, eps), ResnetBlock(dim, groups, dropout, eps),
            SelfAttention(dim, groups, eps) if attention else nn.Identity(),
            ResnetBlock(dim, groups, dropout, eps), ResnetBlock(dim, groups, dropout, eps),
            nn.GroupNorm(groups, dim, eps=eps),
        ])
        self.norm = AdaLayerNorm(num_conditions, dim, eps)
        self.convnext = nn.ModuleList(
            ConvNeXtBlock(dim, intermediate_dim, 1.0 / num_layers, num_conditions, eps) for _ in range(num_layers))
        self.final_layer_norm = nn.LayerNorm(dim, eps=eps)
        # the original initialises these before pos_net exists, so pos_net keeps PyTorch's defaults
        for module in [self.embed, *self.convnext.modules()]:
            if isinstance(module, (nn.Conv1d, nn.Linear)):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor, cond: Optional[torch.Tensor] = None) -> torch.Tensor:
        if cond is None:
            cond = torch.zeros(1, dtype=torch.long, device=x.device)
        x = self.embed(x)
        for layer in self.pos_net:
            x = layer(x)
        x = self.norm(x.transpose(1, 2), cond).transpose(1, 2)
        for block in self.convnext:
            x = block(x, cond)
        return self.final_layer_norm(x.transpose(1, 2))
