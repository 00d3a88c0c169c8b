"""The recipe section audio codecs add, ``loss.audio`` (registered by the WavTokenizer family)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Dict, List, Tuple


@dataclass
class AudioLoss:
    """Audio codecs (loss.kind=audio); defaults are WavTokenizer's published settings."""

    CHOICES: ClassVar[Dict[str, Tuple[str, ...]]] = {"dac_mode": ("published", "corrected")}

    mel_weight: float = 45.0
    mel_n_fft: int = 1024
    mel_hop: int = 256
    mel_bins: int = 100
    mrstft_weight: float = 0.0
    discriminators: List[str] = field(default_factory=lambda: ["mpd", "mrd", "dac"])
    discriminator_conditions: int = 4  # class embeddings of the conditional MPD/MRD (0: unconditional)
    mrd_weight: float = 1.0
    dac_mode: str = "published"  # published (the DAC discriminator is never trained, as released) | corrected
