"""The Wav2Vec2-BERT speech encoder (Barrault et al., 2023, "Seamless"; released as
facebook/w2v-bert-2.0): a conformer over stacked log-mel frames, written here so that a codec using
it as its semantic encoder needs no extra package.

Input: ``(B, L, feature_dim)`` frames (two 80-bin log-mel frames side by side, see
:mod:`audiotok.nn.kaldi_fbank`). A feature projection (layer norm, linear) to ``dim``, then
``num_layers`` conformer layers: half-step feed-forward, self-attention with learned relative-key
position embeddings (distances clipped to ``[-left_max, right_max]``), a convolution module (GLU,
*causal* depthwise convolution, layer norm, activation), a second half-step feed-forward and a final
layer norm. Feed-forwards and the convolution module use SiLU ("swish").

Module names follow transformers' ``Wav2Vec2BertModel`` (``feature_projection``, ``encoder.layers.<i>``
with ``ffn1``, ``self_attn``, ``conv_module``, ``ffn2``), so its checkpoints load by a prefix rename.
No padding masks: callers batch items of equal length only.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FeedForward(nn.Module):
    """Linear up, SiLU, linear down."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.intermediate_dense = nn.Linear(dim, hidden)
        self.output_dense = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_dense(F.silu(self.intermediate_dense(x)))


class RelativeKeyAttention(nn.Module):
    """Multi-head self-attention whose scores add ``q . E[clip(j - i)]`` (one learned vector per clipped
    relative distance, shared by the heads) to ``q . k``, both scaled by ``1 / sqrt(head_dim)``."""

    def __init__(self, dim: int, num_heads: int, left_max: int, right_max: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be a multiple of num_heads ({num_heads})")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.left_max, self.right_max = left_max, right_max
        self.linear_q = nn.Linear(dim, dim)
        self.linear_k = nn.Linear(dim, dim)
        self.linear_v = nn.Linear(dim, dim)
        self.linear_out = nn.Linear(dim, dim)
        self.distance_embedding = nn.Embedding(left_max + right_max + 1, self.head_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        q, k, v = (proj(x).view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)
                   for proj in (self.linear_q, self.linear_k, self.linear_v))
        pos = torch.arange(length, device=x.device)
        distance = (pos[None, :] - pos[:, None]).clamp(-self.left_max, self.right_max) + self.left_max
        table = self.distance_embedding(distance).to(q.dtype)  # (L, L, head_dim)
        scale = self.head_dim ** -0.5
        scores = torch.matmul(q, k.transpose(2, 3)) * scale + torch.einsum("bhld,lrd->bhlr", q, table) * scale
        out = torch.matmul(scores.softmax(dim=-1), v).transpose(1, 2).reshape(batch, length, dim)
        return self.linear_out(out)


class ConvolutionModule(nn.Module):
    """Layer norm, pointwise conv to ``2 dim`` + GLU, causal depthwise conv (left zero padding of
    ``kernel_size - 1``), layer norm, SiLU, pointwise conv; no biases."""

    def __init__(self, dim: int, kernel_size: int, eps: float):
        super().__init__()
        self.layer_norm = nn.LayerNorm(dim, eps=eps)
        self.pointwise_conv1 = nn.Conv1d(dim, 2 * dim, 1, bias=False)
        self.depthwise_conv = nn.Conv1d(dim, dim, kernel_size, groups=dim, bias=False)
        self.depthwise_layer_norm = nn.LayerNorm(dim, eps=eps)
        self.pointwise_conv2 = nn.Conv1d(dim, dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.glu(self.pointwise_conv1(self.layer_norm(x).transpose(1, 2)), dim=1)
        h = self.depthwise_conv(F.pad(h, (self.depthwise_conv.kernel_size[0] - 1, 0)))
        h = F.silu(self.depthwise_layer_norm(h.transpose(1, 2)).transpose(1, 2))
        return self.pointwise_conv2(h).transpose(1, 2)


class ConformerLayer(nn.Module):
    """``x + ffn1 / 2``, ``+ attention``, ``+ convolution``, ``+ ffn2 / 2``, then a layer norm (pre-norm blocks)."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, kernel_size: int, left_max: int, right_max: int,
                 eps: float):
        super().__init__()
        self.ffn1_layer_norm = nn.LayerNorm(dim, eps=eps)
        self.ffn1 = FeedForward(dim, ffn_dim)
        self.self_attn_layer_norm = nn.LayerNorm(dim, eps=eps)
        self.self_attn = RelativeKeyAttention(dim, num_heads, left_max, right_max)
        self.conv_module = ConvolutionModule(dim, kernel_size, eps)
        self.ffn2_layer_norm = nn.LayerNorm(dim, eps=eps)
        self.ffn2 = FeedForward(dim, ffn_dim)
        self.final_layer_norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ffn1(self.ffn1_layer_norm(x)) * 0.5 + x
        x = self.self_attn(self.self_attn_layer_norm(x)) + x
        x = x + self.conv_module(x)
        x = self.ffn2(self.ffn2_layer_norm(x)) * 0.5 + x
        return self.final_layer_norm(x)


class FeatureProjection(nn.Module):
    """Layer norm over the input frames, then a linear map to the model width."""

    def __init__(self, feature_dim: int, dim: int, eps: float):
        super().__init__()
        self.layer_norm = nn.LayerNorm(feature_dim, eps=eps)
        self.projection = nn.Linear(feature_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.layer_norm(x))


class _Layers(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)


class W2vBertEncoder(nn.Module):
    """Frames ``(B, L, feature_dim)`` -> hidden states ``(B, L, dim)`` after ``num_layers`` conformer
    layers (a model truncated to its first layers gives that layer's hidden state exactly)."""

    def __init__(self, feature_dim: int = 160, dim: int = 1024, num_layers: int = 24, num_heads: int = 16,
                 ffn_dim: int = 4096, kernel_size: int = 31, left_max: int = 64, right_max: int = 8,
                 eps: float = 1e-5):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.feature_projection = FeatureProjection(feature_dim, dim, eps)
        self.encoder = _Layers(ConformerLayer(dim, num_heads, ffn_dim, kernel_size, left_max, right_max, eps)
                               for _ in range(num_layers))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.feature_projection(features)
        for layer in self.encoder.layers:
            x = layer(x)
        return x
