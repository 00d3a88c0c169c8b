"""X-Codec 2's architecture as data: :class:`XCodec2Config` (defaults: the HKUSTAudio/xcodec2 release)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List

#: Samples per semantic frame: two 160-sample log-mel frames stacked (see audiotok.nn.kaldi_fbank).
SEMANTIC_HOP = 320


@dataclass
class XCodec2Config:
    """Everything that defines an X-Codec 2 model (defaults: the 16 kHz, 50 tokens/s release).

    Semantic branch: Wav2Vec2-BERT (:mod:`audiotok.nn.w2v_bert`) truncated to its first
    ``semantic_layers`` conformer layers (the release reads the hidden state after layer 16 of
    facebook/w2v-bert-2.0), width ``semantic_dim``, ``semantic_heads`` heads, feed-forward
    ``semantic_ffn_dim``, depthwise kernel ``semantic_kernel``, relative distances clipped to
    ``[-semantic_left_max, semantic_right_max]``; then a small convolutional adapter at
    ``semantic_dim``. Acoustic branch: a BigVGAN-style encoder, ``encoder_dim`` channels after the
    stem, doubled by each of ``strides`` (their product must be 320, the semantic frame), anti-aliased
    SnakeBeta activations, to ``hidden_dim``. Fusion: both concatenated and a linear layer at
    ``hidden_dim + semantic_dim``; one FSQ of ``fsq_levels`` (4^8 = 65,536 codes) with linear
    projections in and out. Decoder: a linear layer to ``hidden_dim``, a Vocos-style backbone (7-tap
    conv, 2 ResNet blocks, ``decoder_layers`` pre-RMSNorm transformer layers of ``decoder_heads``
    heads and SiLU MLP ``decoder_ffn_dim``, 2 ResNet blocks, layer norm) and an iSTFT head with
    ``n_fft = 4 * hop``.
    """

    sample_rate: int = 16000
    encoder_dim: int = 48
    strides: List[int] = field(default_factory=lambda: [2, 2, 4, 4, 5])
    hidden_dim: int = 1024
    semantic_dim: int = 1024
    semantic_layers: int = 16
    semantic_heads: int = 16
    semantic_ffn_dim: int = 4096
    semantic_kernel: int = 31
    semantic_left_max: int = 64
    semantic_right_max: int = 8
    fsq_levels: List[int] = field(default_factory=lambda: [4, 4, 4, 4, 4, 4, 4, 4])
    decoder_layers: int = 12
    decoder_heads: int = 16
    decoder_ffn_dim: int = 4096
    rope_base: float = 10000.0

    def __post_init__(self):
        self.strides = [int(s) for s in self.strides]
        self.fsq_levels = [int(v) for v in self.fsq_levels]
        for name in ("sample_rate", "encoder_dim", "hidden_dim", "semantic_dim", "semantic_layers", "semantic_heads",
                     "semantic_ffn_dim", "semantic_kernel", "decoder_layers", "decoder_heads", "decoder_ffn_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.strides or min(self.strides) < 1 or math.prod(self.strides) != SEMANTIC_HOP:
            raise ValueError(f"strides must be positive integers whose product is {SEMANTIC_HOP} (the semantic "
                             f"frame of 2 x 160 samples), got {self.strides}")
        if self.sample_rate != 16000:
            raise ValueError(f"sample_rate must be 16000 (the w2v-BERT features are defined at 16 kHz), "
                             f"got {self.sample_rate}")
        if self.semantic_dim % self.semantic_heads:
            raise ValueError(f"semantic_dim ({self.semantic_dim}) must be a multiple of semantic_heads "
                             f"({self.semantic_heads})")
        if self.hidden_dim % self.decoder_heads or (self.hidden_dim // self.decoder_heads) % 2:
            raise ValueError(f"hidden_dim ({self.hidden_dim}) must split into decoder_heads ({self.decoder_heads}) "
                             "heads of even width (RoPE rotates pairs of channels)")
        if self.hidden_dim % 32:
            raise ValueError(f"hidden_dim must be a multiple of 32 (GroupNorm of 32 groups), got {self.hidden_dim}")
        if self.semantic_kernel % 2 == 0:
            raise ValueError(f"semantic_kernel must be odd, got {self.semantic_kernel}")
        if not self.fsq_levels or min(self.fsq_levels) < 3:
            raise ValueError(f"fsq_levels must be integers >= 3, got {self.fsq_levels}")
        self.rope_base = float(self.rope_base)

    @property
    def hop_length(self) -> int:
        """Samples per token: 320 (50 tokens/s at 16 kHz)."""
        return math.prod(self.strides)

    @property
    def token_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def num_quantizers(self) -> int:
        """One codebook."""
        return 1

    @property
    def codebook_size(self) -> int:
        return math.prod(self.fsq_levels)

    @property
    def fused_dim(self) -> int:
        """Width of the concatenated semantic + acoustic features (the FSQ's projections' outer width)."""
        return self.hidden_dim + self.semantic_dim

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)
