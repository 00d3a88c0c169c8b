"""EnCodec's architecture as data: :class:`EnCodecConfig` and the two released configurations."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from audiotok.nn.seanet import check_norm

#: The released checkpoints (``encodec_24khz``: causal mono, ``encodec_48khz``: non-causal stereo on
#: 1 s segments), as overrides of the defaults.
PRESETS: Dict[str, Dict[str, Any]] = {
    "24khz": dict(sample_rate=24000, channels=1, causal=True, norm="weight_norm", normalize=False, segment=None,
                  target_bandwidths=[1.5, 3.0, 6.0, 12.0, 24.0]),
    "48khz": dict(sample_rate=48000, channels=2, causal=False, norm="time_group_norm", normalize=True, segment=1.0,
                  overlap=0.01, target_bandwidths=[3.0, 6.0, 12.0, 24.0]),
}


@dataclass
class EnCodecConfig:
    """Everything that defines an EnCodec model (defaults: the released 24 kHz one).

    ``strides`` are in encoder order (first applied first; the paper lists them in decoder order,
    8-5-4-2); their product is the hop. ``norm``: ``weight_norm`` or ``time_group_norm`` (see
    :data:`audiotok.nn.seanet.NORMS`); ``causal`` padding needs weight norm. ``normalize``: each
    segment is divided by its RMS (of the channel mean, plus 1e-8) before encoding, and the decoder
    output multiplied back. ``segment``: seconds per independently coded segment (None: the whole
    input is one), consecutive segments overlapping by ``overlap`` of a segment and cross-faded
    linearly on decode. ``target_bandwidths`` (kbps) select ``floor(bw / kbps_per_level)`` residual
    levels, a level costing ``log2(codebook_size) * frame_rate / 1000`` kbps (frame rate
    ``ceil(sample_rate / hop)``); ``num_quantizers`` defaults to what the largest bandwidth needs.
    The quantizer is an EMA residual VQ with k-means initialisation and dead-code expiry;
    ``quantizer_dropout`` draws the number of levels per training step (:class:`vistok.quant.ResidualVQ`).
    """

    sample_rate: int = 24000
    channels: int = 1
    strides: List[int] = field(default_factory=lambda: [2, 4, 5, 8])
    n_filters: int = 32
    residual_layers: int = 1
    lstm_layers: int = 2
    dim: int = 128
    kernel_size: int = 7
    last_kernel_size: int = 7
    residual_kernel_size: int = 3
    dilation_base: int = 2
    compress: int = 2
    true_skip: bool = False
    causal: bool = True
    norm: str = "weight_norm"
    trim_right_ratio: float = 1.0
    normalize: bool = False
    segment: Optional[float] = None
    overlap: float = 0.01
    target_bandwidths: List[float] = field(default_factory=lambda: list(PRESETS["24khz"]["target_bandwidths"]))
    codebook_size: int = 1024
    num_quantizers: Optional[int] = None
    quantizer_dropout: bool = False
    commitment: float = 1.0
    ema_decay: float = 0.99
    kmeans_init: bool = True
    kmeans_iters: int = 50
    dead_code_threshold: float = 2.0

    def __post_init__(self):
        self.strides = [int(s) for s in self.strides]
        if not self.strides or min(self.strides) < 1:
            raise ValueError(f"strides must be positive integers, got {self.strides}")
        if self.sample_rate < 1 or self.channels < 1:
            raise ValueError(f"sample_rate and channels must be positive, got {self.sample_rate}, {self.channels}")
        check_norm(self.norm, self.causal)
        if self.codebook_size < 2:
            raise ValueError(f"codebook_size must be at least 2, got {self.codebook_size}")
        if self.segment is not None and self.segment <= 0:
            raise ValueError(f"segment must be positive seconds or None, got {self.segment}")
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap}")
        self.target_bandwidths = [float(b) for b in self.target_bandwidths]
        if not self.target_bandwidths or min(self.target_bandwidths) <= 0:
            raise ValueError(f"target_bandwidths must be positive kbps, got {self.target_bandwidths}")
        needed = self.levels_for_bandwidth(max(self.target_bandwidths))
        if self.num_quantizers is None:
            self.num_quantizers = needed
        if self.num_quantizers < 1:
            raise ValueError(f"num_quantizers must be >= 1, got {self.num_quantizers}")
        if needed > self.num_quantizers:
            raise ValueError(f"target bandwidth {max(self.target_bandwidths)} kbps needs {needed} levels, "
                             f"num_quantizers is {self.num_quantizers}")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "EnCodecConfig":
        """A released configuration (``"24khz"`` or ``"48khz"``), with optional overrides."""
        if name not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
        return cls(**{**PRESETS[name], **overrides})

    @property
    def hop_length(self) -> int:
        return math.prod(self.strides)

    @property
    def token_rate(self) -> float:
        """Encoder frames (tokens per level) per second of audio."""
        return self.sample_rate / self.hop_length

    @property
    def frame_rate(self) -> int:
        """The integer frame rate the bandwidth arithmetic uses (``ceil(sample_rate / hop)``)."""
        return math.ceil(self.sample_rate / self.hop_length)

    @property
    def kbps_per_level(self) -> float:
        return math.log2(self.codebook_size) * self.frame_rate / 1000

    def levels_for_bandwidth(self, bandwidth: float) -> int:
        return int(max(1, math.floor(bandwidth / self.kbps_per_level)))

    @property
    def segment_length(self) -> Optional[int]:
        """Samples per segment (None: unsegmented)."""
        return None if self.segment is None else int(self.segment * self.sample_rate)

    @property
    def segment_stride(self) -> Optional[int]:
        """Samples between segment starts."""
        length = self.segment_length
        return None if length is None else max(1, int((1 - self.overlap) * length))

    @property
    def segment_tokens(self) -> Optional[int]:
        """Tokens of one full segment."""
        length = self.segment_length
        return None if length is None else -(-length // self.hop_length)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)
