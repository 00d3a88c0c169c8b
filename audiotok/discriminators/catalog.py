"""The discriminators a recipe can name in ``loss.audio.discriminators``: each entry builds one
from the ``loss.audio`` section, with the GAN term it is trained with. Families register theirs in
``Family.discriminators`` (the audio package's: ``mpd``, ``mrd``, ``dac``, ``msstft``), so a codec
with its own discriminator adds it in its folder."""
from __future__ import annotations

from typing import Tuple

from torch import nn

from audiotok.discriminators.dac import DACDiscriminator
from audiotok.discriminators.msstft import MultiScaleSTFTDiscriminator
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


def msstft(audio) -> Built:
    """EnCodec's multi-scale STFT discriminator, with the term of AudioCraft's compression recipe
    (``config/solver/compression/default.yaml``: ``adv_loss: hinge``, ``feat_loss: l1``, loss weights
    ``adv: 4`` and ``feat: 4``, means over the five scales). There those weights feed EnCodec's loss
    balancer (gradient shares, not plain multipliers); without it they only fix adv : feat at 1 : 1.
    Two normalisations differ from AudioCraft's: its generator hinge term is ``-mean(D(fake))`` (here
    ``mean(relu(1 - D(fake)))``), and its feature matching averages the L1 distances over a scale's five
    feature maps (here summed, so 5x larger)."""
    return MultiScaleSTFTDiscriminator(), AdversarialTerm("hinge", 4.0, 4.0, "mean")
