"""DAC's architecture as data: :class:`DACConfig` and the three released configurations."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

#: The released checkpoints of ``descript-audio-codec`` (8 kbps class; the training configs
#: ``conf/final/{16khz,24khz,44khz}.yml`` of the official repository), as overrides of the defaults.
PRESETS: Dict[str, Dict[str, Any]] = {
    "16khz": dict(sample_rate=16000, encoder_rates=[2, 4, 5, 8], decoder_rates=[8, 5, 4, 2], num_quantizers=12),
    "24khz": dict(sample_rate=24000, encoder_rates=[2, 4, 5, 8], decoder_rates=[8, 5, 4, 2], num_quantizers=32),
    "44khz": dict(sample_rate=44100, encoder_rates=[2, 4, 8, 8], decoder_rates=[8, 8, 4, 2], num_quantizers=9),
}


@dataclass
class DACConfig:
    """Everything that defines a DAC model (defaults: the released 44.1 kHz one).

    ``encoder_dim``: channels after the encoder's stem, doubled by each of ``encoder_rates``
    (strides, first applied first; their product is the hop). ``latent_dim``: the encoder's output
    channels (default ``encoder_dim * 2 ** len(encoder_rates)``). ``decoder_dim``: channels after
    the decoder's stem, halved by each of ``decoder_rates`` (their product must equal the hop).
    Bottleneck: ``num_quantizers`` residual levels, each projecting the residual to
    ``codebook_dim`` channels, looking up the nearest of ``codebook_size`` codes by cosine
    similarity (both sides l2-normalised) and projecting the raw code back. Training:
    ``quantizer_dropout`` is the fraction of each batch (its first items) coded with a random number
    of levels in ``1..num_quantizers`` (0.5 in the official training configs; the released models
    record 0); the quantizer loss is ``commitment_weight`` x commitment + ``codebook_weight`` x
    codebook loss (0.25 and 1.0 officially), each summed over the levels.
    """

    sample_rate: int = 44100
    encoder_dim: int = 64
    encoder_rates: List[int] = field(default_factory=lambda: [2, 4, 8, 8])
    latent_dim: Optional[int] = None
    decoder_dim: int = 1536
    decoder_rates: List[int] = field(default_factory=lambda: [8, 8, 4, 2])
    num_quantizers: int = 9
    codebook_size: int = 1024
    codebook_dim: int = 8
    quantizer_dropout: float = 0.0
    commitment_weight: float = 0.25
    codebook_weight: float = 1.0

    def __post_init__(self):
        self.encoder_rates = [int(s) for s in self.encoder_rates]
        self.decoder_rates = [int(s) for s in self.decoder_rates]
        for name in ("encoder_rates", "decoder_rates"):
            rates = getattr(self, name)
            if not rates or min(rates) < 1:
                raise ValueError(f"{name} must be a non-empty list of positive integers, got {rates}")
        if math.prod(self.decoder_rates) != math.prod(self.encoder_rates):
            raise ValueError(f"decoder_rates {self.decoder_rates} must upsample by the encoder's hop "
                             f"{math.prod(self.encoder_rates)} (encoder_rates {self.encoder_rates})")
        if self.sample_rate < 1 or self.encoder_dim < 1:
            raise ValueError(f"sample_rate and encoder_dim must be positive, got {self.sample_rate}, {self.encoder_dim}")
        if self.latent_dim is None:
            self.latent_dim = self.encoder_dim * 2 ** len(self.encoder_rates)
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be positive, got {self.latent_dim}")
        if self.decoder_dim < 2 ** len(self.decoder_rates) or self.decoder_dim % 2 ** len(self.decoder_rates):
            raise ValueError(f"decoder_dim must be a positive multiple of 2 ** len(decoder_rates) = "
                             f"{2 ** len(self.decoder_rates)}, got {self.decoder_dim}")
        if self.num_quantizers < 1:
            raise ValueError(f"num_quantizers must be >= 1, got {self.num_quantizers}")
        if self.codebook_size < 2 or self.codebook_dim < 1:
            raise ValueError(f"codebook_size must be >= 2 and codebook_dim >= 1, got {self.codebook_size}, "
                             f"{self.codebook_dim}")
        self.quantizer_dropout = float(self.quantizer_dropout)
        if not 0.0 <= self.quantizer_dropout <= 1.0:
            raise ValueError(f"quantizer_dropout must be a fraction in [0, 1], got {self.quantizer_dropout}")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "DACConfig":
        """A released configuration (``"16khz"``, ``"24khz"`` or ``"44khz"``), with optional overrides."""
        if name not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
        return cls(**{**PRESETS[name], **overrides})

    @property
    def hop_length(self) -> int:
        return math.prod(self.encoder_rates)

    @property
    def token_rate(self) -> float:
        """Latent frames (tokens per level) per second of audio."""
        return self.sample_rate / self.hop_length

    @property
    def kbps(self) -> float:
        """The bitrate with all levels: ``num_quantizers * log2(codebook_size) * token_rate / 1000``."""
        return self.num_quantizers * math.log2(self.codebook_size) * self.token_rate / 1000

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)
