"""The discriminators a recipe can name in ``loss.audio.discriminators``: each entry builds one
from the ``loss.audio`` section, with the GAN term it is trained with. Families register theirs in
``Family.discriminators`` (WavTokenizer's: ``mpd``, ``mrd``, ``dac``), so a codec with its own
discriminator adds it in its folder."""
from __future__ import annotations

from typing import Tuple

from torch import nn

from audiotok.discriminators.dac import DACDiscriminator
from audiotok.discriminators.period import MultiPeriodDiscriminator
from audiotok.discriminators.resolution import MultiResolutionDiscriminator
from audiotok.losses import AdversarialTerm, wavtokenizer_terms

Built = Tuple[nn.Module, AdversarialTerm]


def mpd(audio) -> Built:
    """Multi-period discriminator (HiFi-GAN), conditional on ``discriminator_conditions`` ids."""
    return (MultiPeriodDiscriminator(num_embeddings=audio.discriminator_conditions or None),
            wavtokenizer_terms(audio.mrd_weight)["mpd"])


def mrd(audio) -> Built:
    """Multi-resolution spectrogram discriminator (Vocos), weighted by ``mrd_weight``."""
    return (MultiResolutionDiscriminator(num_embeddings=audio.discriminator_conditions or None),
            wavtokenizer_terms(audio.mrd_weight)["mrd"])


def dac(audio) -> Built:
    """DAC's multi-band, multi-scale STFT discriminator (LSGAN)."""
    return DACDiscriminator(), wavtokenizer_terms(audio.mrd_weight)["dac"]
