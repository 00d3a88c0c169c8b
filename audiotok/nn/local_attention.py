"""Windowed self-attention over ``(B, C, T)`` feature maps, as SNAC puts it at its bottleneck: the
sequence is cut into non-overlapping windows of ``window`` steps, each attends only to itself
(all heads, no mask), with rotary position embeddings counted from the start of every window.

Pre-norm and residual: ``x + out(attention(rotary(qkv(layer_norm(x)))))``, the projections
bias-free, ``heads = dim // head_dim``. The rotary embedding rotates the two halves of each head's
channels (``[-x2, x1]``) by ``position * inv_freq`` with ``inv_freq = 10000 ** (-2i / head_dim)``;
``inv_freq`` is a buffer saved with the weights, as the released checkpoints hold it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


class LocalAttention(nn.Module):
    """Self-attention within consecutive windows of ``window`` steps; ``T`` must be a multiple of
    ``window``. Parameters: ``norm`` (LayerNorm over ``dim``), ``to_qkv`` (``dim -> 3 dim``),
    ``to_out`` (``dim -> dim``), buffer ``rel_pos.inv_freq`` (``head_dim / 2``)."""

    def __init__(self, dim: int, window: int, head_dim: int = 64):
        super().__init__()
        if dim < head_dim or dim % head_dim:
            raise ValueError(f"attention dim must be a positive multiple of head_dim {head_dim}, got {dim}")
        if window < 1:
            raise ValueError(f"window must be positive, got {window}")
        self.dim, self.window, self.heads, self.head_dim = dim, window, dim // head_dim, head_dim
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)
        self.rel_pos = nn.Module()
        self.rel_pos.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim)))

    def _rotary(self, steps: int, device: torch.device):
        """(cos, sin) of ``(steps, head_dim)`` angles: position x frequency, each frequency twice."""
        inv_freq = self.rel_pos.inv_freq
        angles = torch.outer(torch.arange(steps, device=device).type_as(inv_freq), inv_freq)
        angles = torch.cat((angles, angles), dim=-1)
        return angles.cos(), angles.sin()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, steps = x.shape
        if steps % self.window:
            raise ValueError(f"LocalAttention: {steps} steps are not a multiple of the window {self.window}")
        h = self.norm(x.transpose(1, 2))
        windows = steps // self.window

        def split(t):  # (B, T, dim) -> (B, heads, windows, window, head_dim)
            return t.reshape(batch, windows, self.window, self.heads, self.head_dim).permute(0, 3, 1, 2, 4)

        q, k, v = (split(t) for t in self.to_qkv(h).chunk(3, dim=-1))
        cos, sin = self._rotary(self.window, x.device)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.permute(0, 2, 3, 1, 4).reshape(batch, steps, channels)
        return self.to_out(out).transpose(1, 2) + x

    def extra_repr(self) -> str:
        return f"dim={self.dim}, window={self.window}, heads={self.heads}"
