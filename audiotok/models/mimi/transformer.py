"""Mimi's causal transformer: pre-norm layers with interleaved rotary embeddings, attention limited
to a window of past frames, layer scale and no biases (the arithmetic of moshi's
``StreamingTransformer`` as Mimi configures it: ``gating="none"``, ``norm="layer_norm"``,
``positional_embedding="rope"``).

Input and output are channels-first ``(B, dim, T)`` (the convolutional layout around it). A frame at
position ``t`` attends to positions ``t - context + 1 .. t``; ``offset`` shifts the positions (rotary
phases and the window) for a chunk that continues a stream, and ``cache`` then holds the keys and
values of earlier frames (see :class:`KVCache`).
"""
from __future__ import annotations

import math
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn


def rotate_interleaved(q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, max_period: float):
    """RoPE on ``(B, H, T, D)`` queries and keys, channel pairs ``(2i, 2i + 1)`` rotated by
    ``positions * max_period ** (-2i / D)`` (fp32 phases, results in the input dtype)."""
    d = q.shape[-1]
    freqs = torch.exp(torch.arange(d // 2, device=q.device, dtype=torch.float32) * (-math.log(max_period) * 2 / d))
    phase = freqs * positions.float().view(1, 1, -1, 1)
    cos, sin = torch.cos(phase), torch.sin(phase)

    def turn(x):
        pairs = x.view(*x.shape[:-1], d // 2, 2)
        re, im = pairs[..., 0].float(), pairs[..., 1].float()
        out = torch.stack([(re * cos - im * sin).to(x.dtype), (re * sin + im * cos).to(x.dtype)], dim=-1)
        return out.view(*x.shape)

    return turn(q), turn(k)


class KVCache:
    """Keys and values of the last ``context - 1`` frames per layer, for chunk-by-chunk inference
    (the window never needs more)."""

    def __init__(self, num_layers: int, context: int):
        self.keep = max(context - 1, 0)
        self.keys: List[Optional[torch.Tensor]] = [None] * num_layers
        self.values: List[Optional[torch.Tensor]] = [None] * num_layers
        self.offset = 0  # frames seen so far

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """The cached keys/values followed by ``k`` / ``v``; the cache keeps the tail of that."""
        if self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=2)
            v = torch.cat([self.values[layer], v], dim=2)
        cut = max(k.shape[2] - self.keep, 0)
        self.keys[layer], self.values[layer] = k[:, :, cut:], v[:, :, cut:]
        return k, v


class Attention(nn.Module):
    """Causal multi-head self-attention over a window of ``context`` frames, rotary positions."""

    def __init__(self, dim: int, num_heads: int, context: int, max_period: float):
        super().__init__()
        self.num_heads, self.context, self.max_period = num_heads, context, max_period
        self.in_proj = nn.Linear(dim, 3 * dim, bias=False)
        self.out_proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor, offset: int = 0, cache: Optional[KVCache] = None, layer: int = 0):
        b, t, c = x.shape
        q, k, v = self.in_proj(x).view(b, t, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        pos_q = torch.arange(t, device=x.device) + offset
        q, k = rotate_interleaved(q, k, pos_q, self.max_period)
        if cache is not None:
            k, v = cache.extend(layer, k, v)
        pos_k = torch.arange(k.shape[2], device=x.device) + (offset + t - k.shape[2])
        delta = pos_q[:, None] - pos_k[None, :]
        mask = (delta >= 0) & (delta < self.context)
        y = F.scaled_dot_product_attention(q, k, v, mask[None, None], dropout_p=0.0)
        return self.out_proj(y.transpose(1, 2).reshape(b, t, c))


class LayerScale(nn.Module):
    """A learned per-channel scale of a residual branch."""

    def __init__(self, dim: int, init: float):
        super().__init__()
        self.scale = nn.Parameter(torch.full((dim,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x


class TransformerLayer(nn.Module):
    """``x + s1 * attn(LN(x))``, then ``x + s2 * W2 gelu(W1 LN(x))``."""

    def __init__(self, dim: int, num_heads: int, dim_feedforward: int, context: int, max_period: float,
                 layer_scale: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.self_attn = Attention(dim, num_heads, context, max_period)
        self.layer_scale_1 = LayerScale(dim, layer_scale)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.linear1 = nn.Linear(dim, dim_feedforward, bias=False)
        self.linear2 = nn.Linear(dim_feedforward, dim, bias=False)
        self.layer_scale_2 = LayerScale(dim, layer_scale)

    def forward(self, x: torch.Tensor, offset: int = 0, cache: Optional[KVCache] = None, layer: int = 0):
        x = x + self.layer_scale_1(self.self_attn(self.norm1(x), offset, cache, layer))
        return x + self.layer_scale_2(self.linear2(F.gelu(self.linear1(self.norm2(x)))))


class MimiTransformer(nn.Module):
    """A stack of :class:`TransformerLayer` on channels-first ``(B, dim, T)``."""

    def __init__(self, dim: int, num_layers: int, num_heads: int, dim_feedforward: int, context: int,
                 max_period: float, layer_scale: float):
        super().__init__()
        self.context = context
        self.layers = nn.ModuleList(
            TransformerLayer(dim, num_heads, dim_feedforward, context, max_period, layer_scale)
            for _ in range(num_layers))

    def new_cache(self) -> KVCache:
        return KVCache(len(self.layers), self.context)

    def forward(self, x: torch.Tensor, cache: Optional[KVCache] = None) -> torch.Tensor:
        """``(B, dim, T)`` -> ``(B, dim, T)``; with ``cache``, ``x`` continues the frames it has seen."""
        offset = 0 if cache is None else cache.offset
        h = x.transpose(1, 2)
        for i, layer in enumerate(self.layers):
            h = layer(h, offset, cache, i)
        if cache is not None:
            cache.offset += x.shape[-1]
        return h.transpose(1, 2)
