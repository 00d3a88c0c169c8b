"""Causal pre-norm transformer blocks whose attention can read and extend a key/value cache
(timm's ViT ``Block``, used by the tokenizers, has neither a causal mode nor a cache)."""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """Root-mean-square norm with a learned gain (LLaMA); computed in fp32 (``nn.RMSNorm``
    needs torch 2.4, the package supports 2.1)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.float()
        y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.float()).to(x.dtype)


def make_norm(kind: str, dim: int) -> nn.Module:
    return RMSNorm(dim) if kind == "rmsnorm" else nn.LayerNorm(dim)


class KVCache:
    """Keys and values of every layer for the positions processed so far (preallocated to
    ``max_len``; allocated on first use with the dtype/device the keys arrive in)."""

    def __init__(self, max_len: int):
        self.max_len = max_len
        self.length = 0
        self.keys: List[torch.Tensor] = []
        self.values: List[torch.Tensor] = []

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Store ``(B, H, T, D)`` keys/values after the cached ones; return all of them."""
        end = self.length + k.shape[2]
        if end > self.max_len:
            raise ValueError(f"KV cache holds {self.max_len} positions; asked for {end}")
        if layer == len(self.keys):
            b, h, _, d = k.shape
            self.keys.append(k.new_empty(b, h, self.max_len, d))
            self.values.append(v.new_empty(b, h, self.max_len, d))
        self.keys[layer][:, :, self.length:end] = k
        self.values[layer][:, :, self.length:end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def advance(self, steps: int) -> None:
        """Called once all layers have stored ``steps`` new positions."""
        self.length += steps


class CausalSelfAttention(nn.Module):
    """Multi-head causal attention on ``F.scaled_dot_product_attention``."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.proj = nn.Linear(width, width, bias=False)

    def forward(self, x: torch.Tensor, cache: Optional[KVCache] = None, layer: int = 0) -> torch.Tensor:
        b, t, w = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        if cache is not None:
            k, v = cache.update(layer, k, v)
        s = k.shape[2]
        if t == s:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif t == 1:  # one new position sees every cached one
            out = F.scaled_dot_product_attention(q, k, v)
        else:  # several new positions after a cached prefix: the causal mask is shifted by s - t
            mask = torch.ones(t, s, dtype=torch.bool, device=x.device).tril(s - t)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(b, t, w))


class CausalBlock(nn.Module):
    """Pre-norm block: causal attention, then a GELU MLP, each on a residual branch."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, norm: str):
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.norm1 = make_norm(norm, width)
        self.attn = CausalSelfAttention(width, heads)
        self.norm2 = make_norm(norm, width)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor, cache: Optional[KVCache] = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cache, layer)
        return x + self.mlp(self.norm2(x))
