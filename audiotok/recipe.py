"""The recipe section audio codecs add, ``loss.audio`` (declared once in ``audiotok.registration``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Dict, List, Optional, Tuple


@dataclass
class AudioLoss:
    """Audio codecs (loss.kind=audio); defaults are WavTokenizer's published settings (EnCodec's are in
    ``train/encodec/``, DAC's in ``train/dac/``)."""

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
    dac_filters: int = 32  # width of the dac / dac_hann discriminators (published: 32; 42.5M parameters)
    # EnCodec's published losses (AudioCraft's compression solver); the defaults leave them off.
    l1_weight: float = 0.0  # waveform L1 (AudioCraft losses.l1)
    msspec_weight: float = 0.0  # multi-scale mel loss (AudioCraft losses.msspec; encodec_losses.MultiScaleMelLoss)
    msstft_filters: int = 32  # channels of the msstft discriminator's convolutions (EnCodec: 32)
    # EnCodec's loss balancer (audiotok.balancer): the weights of the losses on the reconstruction (mel,
    # mrstft, l1, msspec, and each discriminator's terms times loss.adversarial.weight) become gradient
    # shares; the quantizer loss stays outside it.
    balancer: bool = False
    balancer_total_norm: float = 1.0
    balancer_ema_decay: float = 0.999
    balancer_per_item: bool = True  # norms per batch item, averaged (else of the whole batch)
    # Multi-scale log10 spectral distances (audiotok.spectral_losses; DAC's mel and STFT losses), off by
    # default; the other keys default to DAC's published settings (conf/base.yml MelSpectrogramLoss.*).
    logmel_weight: float = 0.0  # DAC: lambdas mel/loss 15
    logmel_windows: List[int] = field(default_factory=lambda: [32, 64, 128, 256, 512, 1024, 2048])
    logmel_bins: List[int] = field(default_factory=lambda: [5, 10, 20, 40, 80, 160, 320])
    logmel_fmin: List[float] = field(default_factory=lambda: [0.0] * 7)
    logmel_fmax: List[Optional[float]] = field(default_factory=lambda: [None] * 7)  # null: Nyquist
    logmel_pow: float = 1.0
    logmel_clamp: float = 1e-5
    logmel_mag_weight: float = 0.0
    logmel_log_weight: float = 1.0
    logstft_weight: float = 0.0  # DAC logs its MultiScaleSTFTLoss with weight 0
    logstft_windows: List[int] = field(default_factory=lambda: [2048, 512])
    logstft_pow: float = 2.0
    logstft_clamp: float = 1e-5
    logstft_mag_weight: float = 1.0
    logstft_log_weight: float = 1.0
