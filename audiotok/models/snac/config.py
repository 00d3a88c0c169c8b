"""SNAC's architecture as data: :class:`SNACConfig` and the three released configurations."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

#: The released checkpoints (``hubertsiuzdak/snac_{24,32,44}khz`` on the Hugging Face hub), as
#: overrides of the defaults. Where the values come from: the hub's ``config.json`` files could not
#: be read here (no network); the 24 kHz values are those of several third-party copies of its
#: ``config.json``, the 32 / 44.1 kHz ones those of third-party notes on theirs, and all three give
#: the parameter counts (19.8 M, 54.5 M, 54.5 M) and bitrates (0.98, 1.9, 2.6 kbps) of the official
#: README and its example ``[12, 24, 48, 96]`` tokens for one second at 32 kHz. The config resolver
#: checks a card against the downloaded ``config.json``.
PRESETS: Dict[str, Dict[str, Any]] = {
    "24khz": dict(sample_rate=24000, encoder_dim=48, encoder_rates=[2, 4, 8, 8], decoder_dim=1024,
                  decoder_rates=[8, 8, 4, 2], attn_window_size=None, vq_strides=[4, 2, 1]),
    "32khz": dict(sample_rate=32000, encoder_dim=64, encoder_rates=[2, 3, 8, 8], decoder_dim=1536,
                  decoder_rates=[8, 8, 3, 2], attn_window_size=32, vq_strides=[8, 4, 2, 1]),
    "44khz": dict(sample_rate=44100, encoder_dim=64, encoder_rates=[2, 3, 8, 8], decoder_dim=1536,
                  decoder_rates=[8, 8, 3, 2], attn_window_size=32, vq_strides=[8, 4, 2, 1]),
}


@dataclass
class SNACConfig:
    """Everything that defines a SNAC model (defaults: the released 32 kHz one).

    ``encoder_dim``: channels after the encoder's stem, doubled by each of ``encoder_rates`` (their
    product is the encoder hop); the latent has ``latent_dim = encoder_dim * 2 ** len(encoder_rates)``
    channels (no other width is possible). ``decoder_dim``: channels after the decoder's stem, halved
    by each of ``decoder_rates`` (their product must equal the encoder hop). ``attn_window_size``:
    windowed self-attention after the encoder's blocks and before the decoder's (None: none).
    ``noise``: noise blocks after the decoder's upsamplings; ``depthwise``: depthwise dilated
    convolutions. Bottleneck: one residual level per entry of ``vq_strides``, level ``q`` quantizing
    the residual average-pooled by ``vq_strides[q]`` with ``codebook_size`` codes of
    ``codebook_dim`` (cosine search, DAC's factorised codes) and repeating its code back to the
    latent rate; every stride must divide ``vq_strides[0]`` (the coarsest).

    Training (not in the released files, which have no training code): ``quantizer_dropout`` is the
    fraction of each batch coded with a random number of levels; the quantizer loss is
    ``commitment_weight`` x commitment + ``codebook_weight`` x codebook loss, summed over levels
    (DAC's objective, which SNAC builds on).
    """

    sample_rate: int = 32000
    encoder_dim: int = 64
    encoder_rates: List[int] = field(default_factory=lambda: [2, 3, 8, 8])
    latent_dim: Optional[int] = None
    decoder_dim: int = 1536
    decoder_rates: List[int] = field(default_factory=lambda: [8, 8, 3, 2])
    attn_window_size: Optional[int] = 32
    codebook_size: int = 4096
    codebook_dim: int = 8
    vq_strides: List[int] = field(default_factory=lambda: [8, 4, 2, 1])
    noise: bool = True
    depthwise: bool = True
    quantizer_dropout: float = 0.0
    commitment_weight: float = 0.25
    codebook_weight: float = 1.0

    def __post_init__(self):
        for name in ("encoder_rates", "decoder_rates", "vq_strides"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or not value or min(int(v) for v in value) < 1:
                raise ValueError(f"{name} must be a non-empty list of positive integers, got {value}")
            setattr(self, name, [int(v) for v in value])
        if math.prod(self.decoder_rates) != math.prod(self.encoder_rates):
            raise ValueError(f"decoder_rates {self.decoder_rates} must upsample by the encoder's hop "
                             f"{math.prod(self.encoder_rates)} (encoder_rates {self.encoder_rates})")
        coarsest = self.vq_strides[0]
        if any(coarsest % s for s in self.vq_strides):
            raise ValueError(f"vq_strides {self.vq_strides}: every stride must divide the first (coarsest), {coarsest}")
        if self.sample_rate < 1 or self.encoder_dim < 1:
            raise ValueError(f"sample_rate and encoder_dim must be positive, got {self.sample_rate}, {self.encoder_dim}")
        width = self.encoder_dim * 2 ** len(self.encoder_rates)
        if self.latent_dim is None:
            self.latent_dim = width
        if self.latent_dim != width:
            raise ValueError(f"latent_dim must be encoder_dim * 2 ** len(encoder_rates) = {width} (SNAC's encoder "
                             f"ends at that width), got {self.latent_dim}")
        if self.decoder_dim < 2 ** len(self.decoder_rates) or self.decoder_dim % 2 ** len(self.decoder_rates):
            raise ValueError(f"decoder_dim must be a positive multiple of 2 ** len(decoder_rates) = "
                             f"{2 ** len(self.decoder_rates)}, got {self.decoder_dim}")
        if self.attn_window_size is not None:
            self.attn_window_size = int(self.attn_window_size)
            if self.attn_window_size < 1:
                raise ValueError(f"attn_window_size must be positive or null, got {self.attn_window_size}")
            for name, dim in (("latent_dim", self.latent_dim), ("decoder_dim", self.decoder_dim)):
                if dim % 64:
                    raise ValueError(f"{name} {dim} must be a multiple of 64 (the attention's head width) "
                                     "when attn_window_size is set")
        if self.codebook_size < 2 or self.codebook_dim < 1:
            raise ValueError(f"codebook_size must be >= 2 and codebook_dim >= 1, got {self.codebook_size}, "
                             f"{self.codebook_dim}")
        self.noise, self.depthwise = bool(self.noise), bool(self.depthwise)
        self.quantizer_dropout = float(self.quantizer_dropout)
        if not 0.0 <= self.quantizer_dropout <= 1.0:
            raise ValueError(f"quantizer_dropout must be a fraction in [0, 1], got {self.quantizer_dropout}")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "SNACConfig":
        """A released configuration (``"24khz"``, ``"32khz"`` or ``"44khz"``), with optional overrides."""
        if name not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
        return cls(**{**PRESETS[name], **overrides})

    # ----- derived sizes -----

    @property
    def encoder_hop(self) -> int:
        """Waveform samples per latent step (the finest level's token)."""
        return math.prod(self.encoder_rates)

    @property
    def num_quantizers(self) -> int:
        """Residual levels (one per ``vq_strides`` entry)."""
        return len(self.vq_strides)

    @property
    def level_repeats(self) -> List[int]:
        """Tokens of each level per coarsest token: ``vq_strides[0] // vq_strides[q]``."""
        return [self.vq_strides[0] // s for s in self.vq_strides]

    @property
    def hop_length(self) -> int:
        """Waveform samples per id position (one coarsest token): ``encoder_hop * vq_strides[0]``."""
        return self.encoder_hop * self.vq_strides[0]

    @property
    def token_rate(self) -> float:
        """Id positions (coarsest tokens) per second."""
        return self.sample_rate / self.hop_length

    @property
    def level_rates(self) -> List[float]:
        """Tokens per second of each level, coarsest first."""
        return [self.sample_rate / (self.encoder_hop * s) for s in self.vq_strides]

    @property
    def pad_multiple(self) -> int:
        """Inputs are zero-padded on the right to a multiple of this many samples:
        ``encoder_hop * lcm(vq_strides[0], attn_window_size or 1)``, as the official ``preprocess``."""
        return self.encoder_hop * math.lcm(self.vq_strides[0], self.attn_window_size or 1)

    @property
    def kbps(self) -> float:
        """The bitrate with all levels."""
        return sum(self.level_rates) * math.log2(self.codebook_size) / 1000

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)
