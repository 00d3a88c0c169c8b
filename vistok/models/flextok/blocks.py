"""FlexTok transformer blocks: pre-norm, QK-norm, SwiGLU, no biases, attention through SDPA.

What the released weights fix: LayerNorms without affine parameters computed in fp32 (also on
the per-head queries and keys), attention scale ``8 / head_dim`` (the usual ``head_dim**-0.5``
at the released ``head_dim = 64``), SiLU-gated MLP with ``int(2/3 * mlp_ratio * dim)`` hidden
units, and an adaLN-zero variant whose modulation is ordered
``(gate_attn, gate_mlp, shift_attn, scale_attn, shift_mlp, scale_mlp)``. Query, key and value
projections are fused into one ``qkv`` matrix, and the two gated-MLP inputs into one ``fc_in``,
for speed; the converter concatenates the official ``wq/wk/wv`` and ``fc1/fc3``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def fp32_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """LayerNorm over the last dim without affine parameters, in fp32, cast back (autocast-safe)."""
    return F.layer_norm(x.float(), (x.shape[-1],), eps=eps).type_as(x)


def per_segment(values: torch.Tensor, lengths: Sequence[int]) -> torch.Tensor:
    """``(B, S, D)`` per-segment values -> something that broadcasts against ``(B, sum(lengths), D)``."""
    if values.shape[1] == 1:
        return values
    return torch.cat([values[:, i : i + 1].expand(-1, n, -1) for i, n in enumerate(lengths)], dim=1)


def _xavier_chunks(weight: torch.Tensor, chunks: int) -> None:
    # Initialise each fused projection like the separate layers of the release.
    with torch.no_grad():
        for part in weight.chunk(chunks, dim=0):
            nn.init.xavier_uniform_(part)


class Attention(nn.Module):
    """Multi-head self-attention with optional QK-norm; ``mask`` is a boolean SDPA mask (True = attend)."""

    def __init__(self, dim: int, head_dim: int = 64, qkv_bias: bool = False, proj_bias: bool = False,
                 qk_norm: bool = True):
        super().__init__()
        if dim % head_dim:
            raise ValueError(f"width {dim} is not a multiple of head_dim {head_dim}")
        self.heads, self.head_dim, self.qk_norm = dim // head_dim, head_dim, qk_norm
        self.scale = 8.0 / head_dim
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        _xavier_chunks(self.qkv.weight, 3)
        nn.init.xavier_uniform_(self.proj.weight)
        for layer in (self.qkv, self.proj):
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if self.qk_norm:
            q, k = fp32_norm(q), fp32_norm(k)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    """SiLU-gated MLP (``fc_out(silu(a) * b)`` with ``a, b = fc_in(x)``) or, ungated, Linear-SiLU-Linear."""

    def __init__(self, dim: int, mlp_ratio: float = 4.0, gated: bool = True, bias: bool = False):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.gated = gated
        if gated:
            hidden = int(2 * hidden / 3)
        self.fc_in = nn.Linear(dim, 2 * hidden if gated else hidden, bias=bias)
        self.fc_out = nn.Linear(hidden, dim, bias=bias)
        _xavier_chunks(self.fc_in.weight, 2 if gated else 1)
        nn.init.xavier_uniform_(self.fc_out.weight)
        for layer in (self.fc_in, self.fc_out):
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc_in(x)
        if self.gated:
            a, b = h.chunk(2, dim=-1)
            return self.fc_out(F.silu(a) * b)
        return self.fc_out(F.silu(h))


@dataclass(frozen=True)
class BlockSpec:
    """Width and options shared by every block of one transformer."""

    dim: int
    head_dim: int = 64
    mlp_ratio: float = 4.0
    gated_mlp: bool = True
    qkv_bias: bool = False
    proj_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = True


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, spec: BlockSpec):
        super().__init__()
        self.attn = Attention(spec.dim, spec.head_dim, spec.qkv_bias, spec.proj_bias, spec.qk_norm)
        self.mlp = Mlp(spec.dim, spec.mlp_ratio, spec.gated_mlp, spec.mlp_bias)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = x + self.attn(fp32_norm(x), mask)
        return x + self.mlp(fp32_norm(x))


class AdaLNBlock(Block):
    """Block with adaLN-zero time conditioning; ``expansion`` separate modulations, one per
    segment of the sequence (the release modulates patches and registers separately)."""

    def __init__(self, spec: BlockSpec, expansion: int = 1):
        super().__init__(spec)
        self.expansion = expansion
        self.adaln = nn.Linear(spec.dim, expansion * 6 * spec.dim)
        nn.init.zeros_(self.adaln.weight)
        nn.init.zeros_(self.adaln.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, lengths: Sequence[int],
                mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``cond``: the time embedding ``(B, dim)``; ``lengths``: the ``expansion`` segment lengths."""
        mod = self.adaln(F.silu(cond)).view(x.shape[0], self.expansion, -1)
        gate_a, gate_m, shift_a, scale_a, shift_m, scale_m = (per_segment(m, lengths) for m in mod.chunk(6, dim=-1))
        x = x + gate_a * self.attn(fp32_norm(x) * (1 + scale_a) + shift_a, mask)
        return x + gate_m * self.mlp(fp32_norm(x) * (1 + scale_m) + shift_m)
