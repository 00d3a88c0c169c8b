"""The architecture of a LlamaGen VQ tokenizer and the two published presets (VQ-16, VQ-8)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Tuple

# The channel multipliers of the released tokenizers (FoundationVision/LlamaGen,
# tokenizer/tokenizer_image/vq_model.py): one entry per resolution, a 2x resampling between entries.
PRESETS: Dict[str, Dict[str, Any]] = {
    "VQ-16": dict(encoder_ch_mult=(1, 1, 2, 2, 4), decoder_ch_mult=(1, 1, 2, 2, 4)),
    "VQ-8": dict(encoder_ch_mult=(1, 2, 2, 4), decoder_ch_mult=(1, 2, 2, 4)),
}


@dataclass
class LlamaGenVQConfig:
    """A LlamaGen VQ tokenizer; the defaults are the VQ-16 release (``vq_ds16_c2i.pt``).

    ``entropy_loss_ratio`` is the authors' optional codebook entropy term; every release and the
    published training command use 0, the only value implemented here (a non-zero value is refused).
    """

    image_size: int = 256
    base_channels: int = 128
    encoder_ch_mult: Tuple[int, ...] = (1, 1, 2, 2, 4)
    decoder_ch_mult: Tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    z_channels: int = 256
    codebook_size: int = 16384
    codebook_dim: int = 8
    l2_norm: bool = True
    commitment: float = 0.25
    entropy_loss_ratio: float = 0.0
    dropout: float = 0.0

    def __post_init__(self):
        for name in ("encoder_ch_mult", "decoder_ch_mult"):
            mult = tuple(int(m) for m in getattr(self, name))
            if not mult or min(mult) < 1:
                raise ValueError(f"{name} must be a non-empty sequence of positive ints, got {getattr(self, name)}")
            setattr(self, name, mult)
        if len(self.encoder_ch_mult) != len(self.decoder_ch_mult):
            raise ValueError(f"encoder_ch_mult {self.encoder_ch_mult} and decoder_ch_mult {self.decoder_ch_mult} "
                             "must have the same length (the decoder undoes the encoder's downsampling)")
        for name in ("image_size", "base_channels", "num_res_blocks", "z_channels", "codebook_size", "codebook_dim"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        widths = sorted({self.base_channels * m for m in (1,) + self.encoder_ch_mult + self.decoder_ch_mult})
        if any(w % 32 for w in widths):
            raise ValueError(f"GroupNorm(32) needs every channel width divisible by 32; base_channels="
                             f"{self.base_channels} with these multipliers gives {widths}")
        if self.image_size % self.downsample_factor:
            raise ValueError(f"image_size {self.image_size} is not a multiple of the downsampling factor "
                             f"{self.downsample_factor} (2^(len(encoder_ch_mult) - 1))")
        if self.commitment < 0:
            raise ValueError(f"commitment must be >= 0, got {self.commitment}")
        if self.entropy_loss_ratio != 0:
            raise ValueError(f"entropy_loss_ratio={self.entropy_loss_ratio}: only 0 (the released tokenizers' "
                             "and the published training value) is implemented")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.encoder_ch_mult) - 1)

    @property
    def grid_size(self) -> int:
        return self.image_size // self.downsample_factor

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def preset(name: str, **overrides: Any) -> LlamaGenVQConfig:
    """The config of a published preset (``"VQ-16"`` or ``"VQ-8"``), with ``overrides`` applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown LlamaGen VQ preset {name!r}; known: {', '.join(PRESETS)}")
    return LlamaGenVQConfig(**dict(PRESETS[name], **overrides))
