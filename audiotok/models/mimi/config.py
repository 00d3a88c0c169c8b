"""Mimi's architecture as data: :class:`MimiConfig` (defaults: the released 24 kHz, 12.5 Hz codec)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List


@dataclass
class MimiConfig:
    """Everything that defines a Mimi model (defaults: the release, ``moshi.models.loaders._mimi_config``).

    SEANet (encoder and mirrored decoder): ``n_filters`` channels after the stem, doubled by each of
    ``strides`` (encoder order, first applied first; their product is the encoder hop, 960 samples:
    25 Hz at 24 kHz), ``residual_layers`` residual units per stage (identity shortcuts, hidden width
    ``dim // compress``, kernel ``residual_kernel_size`` dilated by ``dilation_base ** j``), causal
    zero-padded plain convolutions (stem kernel ``kernel_size``, last ``last_kernel_size``), no LSTM,
    latent width ``dim``. Transformers (one after the encoder, one before the decoder, at the
    encoder rate): ``num_layers`` pre-norm layers of width ``dim``, ``num_heads`` heads, interleaved
    RoPE (``max_period``), causal attention over the last ``context`` frames (itself included),
    GELU MLP of ``dim_feedforward``, layer scale, no biases. ``downsample`` (a learned causal
    convolution, kernel ``2 * downsample``, replicate left padding) takes the latent to the token
    rate; a depthwise transposed convolution upsamples it back. Bottleneck: a split residual VQ,
    ``num_semantic`` level(s) and ``num_quantizers - num_semantic`` acoustic levels, each side with
    its own 1x1 projections ``dim -> codebook_dim -> dim`` of the same latent, ``codebook_size``
    codes per level, nearest by euclidean distance.
    """

    sample_rate: int = 24000
    dim: int = 512
    n_filters: int = 64
    strides: List[int] = field(default_factory=lambda: [4, 5, 6, 8])
    residual_layers: int = 1
    kernel_size: int = 7
    last_kernel_size: int = 3
    residual_kernel_size: int = 3
    dilation_base: int = 2
    compress: int = 2
    num_layers: int = 8
    num_heads: int = 8
    dim_feedforward: int = 2048
    context: int = 250
    max_period: float = 10000.0
    layer_scale: float = 0.01
    downsample: int = 2
    num_quantizers: int = 32
    num_semantic: int = 1
    codebook_size: int = 2048
    codebook_dim: int = 256

    def __post_init__(self):
        self.strides = [int(s) for s in self.strides]
        if not self.strides or min(self.strides) < 1:
            raise ValueError(f"strides must be a non-empty list of positive integers, got {self.strides}")
        for name in ("sample_rate", "dim", "n_filters", "kernel_size", "last_kernel_size", "residual_kernel_size",
                     "dilation_base", "compress", "num_heads", "dim_feedforward", "context", "downsample",
                     "codebook_dim"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.residual_layers < 0 or self.num_layers < 0:
            raise ValueError(f"residual_layers and num_layers must be >= 0, got {self.residual_layers}, "
                             f"{self.num_layers}")
        if self.dim % self.num_heads or (self.dim // self.num_heads) % 2:
            raise ValueError(f"dim ({self.dim}) must split into num_heads ({self.num_heads}) heads of even width "
                             "(RoPE rotates pairs of channels)")
        if self.n_filters % self.compress:
            raise ValueError(f"n_filters ({self.n_filters}) must be a multiple of compress ({self.compress})")
        if not 1 <= self.num_semantic < self.num_quantizers:
            raise ValueError(f"num_semantic must be in 1..num_quantizers - 1 = {self.num_quantizers - 1}, "
                             f"got {self.num_semantic} (num_quantizers {self.num_quantizers})")
        if self.codebook_size < 2:
            raise ValueError(f"codebook_size must be >= 2, got {self.codebook_size}")
        self.max_period = float(self.max_period)
        self.layer_scale = float(self.layer_scale)

    @property
    def encoder_hop(self) -> int:
        """Samples per frame of the SEANet encoder (before the downsampling to the token rate)."""
        return math.prod(self.strides)

    @property
    def hop_length(self) -> int:
        """Samples per token (the frame size): 1920 for the release."""
        return self.encoder_hop * self.downsample

    @property
    def token_rate(self) -> float:
        """Tokens per level per second of audio (12.5 for the release)."""
        return self.sample_rate / self.hop_length

    def kbps(self, levels: int) -> float:
        """The bitrate of ``levels`` levels: ``levels * log2(codebook_size) * token_rate / 1000``."""
        return levels * math.log2(self.codebook_size) * self.token_rate / 1000

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)
