"""X-Codec 2's decoder: a Vocos-style backbone whose middle is a stack of pre-RMSNorm transformer
layers, then the shared iSTFT head (:class:`audiotok.nn.heads.ISTFTHead`).

RoPE quirk of the release: its rotary embedding (torchtune's, interleaved pairs) is applied to
``(B, heads, T, head_dim)`` tensors while it expects ``(B, T, heads, head_dim)``, so the "position"
of a query or key is its *head index*, not its time step. Every time step of a head is rotated by the
same angle; attention carries no positional information. The weights depend on it, so it is
reproduced (transformers' port does the same with positions ``0..heads-1``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from audiotok.nn.vocos import ResnetBlock


class RMSNorm(nn.Module):
    """``x * rsqrt(mean(x^2) + eps) * weight`` over the last dimension."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_by_head(x: torch.Tensor, base: float) -> torch.Tensor:
    """Interleaved RoPE on ``(B, H, T, D)`` with head ``h`` rotated as position ``h`` (see the module doc)."""
    heads, dim = x.shape[1], x.shape[-1]
    theta = 1.0 / (base ** (torch.arange(0, dim, 2, device=x.device)[: dim // 2].float() / dim))
    angles = torch.arange(heads, device=x.device, dtype=theta.dtype)[:, None] * theta[None]  # (H, D/2)
    cos, sin = angles.cos()[None, :, None], angles.sin()[None, :, None]
    pairs = x.float().reshape(*x.shape[:-1], dim // 2, 2)
    even, odd = pairs[..., 0], pairs[..., 1]
    out = torch.stack([even * cos - odd * sin, odd * cos + even * sin], dim=-1)
    return out.flatten(-2).type_as(x)


class Attention(nn.Module):
    """Bidirectional multi-head attention, fused ``qkv`` and ``out`` projections without biases."""

    def __init__(self, dim: int, num_heads: int, rope_base: float):
        super().__init__()
        self.num_heads, self.rope_base = num_heads, rope_base
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.num_heads, dim // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k = rotate_by_head(q, self.rope_base), rotate_by_head(k, self.rope_base)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(batch, length, dim))


class TransformerLayer(nn.Module):
    """``x + attn(norm1(x))``, then ``+ fc2(silu(fc1(norm2(x))))`` (bias-free MLP)."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, rope_base: float):
        super().__init__()
        self.norm1 = RMSNorm(dim)
        self.attn = Attention(dim, num_heads, rope_base)
        self.norm2 = RMSNorm(dim)
        self.fc1 = nn.Linear(dim, ffn_dim, bias=False)
        self.fc2 = nn.Linear(ffn_dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.silu(self.fc1(self.norm2(x))))


class TransformerBackbone(nn.Module):
    """``(B, L, dim)`` -> ``(B, L, dim)``: 7-tap conv, 2 ResNet blocks, transformer layers, 2 ResNet
    blocks, layer norm (eps 1e-6)."""

    def __init__(self, dim: int, num_layers: int, num_heads: int, ffn_dim: int, rope_base: float):
        super().__init__()
        self.embed = nn.Conv1d(dim, dim, 7, padding=3)
        self.prior_net = nn.ModuleList([ResnetBlock(dim), ResnetBlock(dim)])
        self.layers = nn.ModuleList(TransformerLayer(dim, num_heads, ffn_dim, rope_base) for _ in range(num_layers))
        self.post_net = nn.ModuleList([ResnetBlock(dim), ResnetBlock(dim)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x.transpose(1, 2))
        for block in self.prior_net:
            x = block(x)
        x = x.transpose(1, 2)
        for layer in self.layers:
            x = layer(x)
        x = x.transpose(1, 2)
        for block in self.post_net:
            x = block(x)
        return self.norm(x.transpose(1, 2))
