"""The discriminators a recipe can name in ``loss.audio.discriminators``: each entry builds one
from the ``loss.audio`` section, with the GAN term it is trained with. Families register theirs in
``Family.discriminators`` (the audio package's: ``mpd``, ``mrd``, ``dac``, ``dac_hann``, ``msstft``), so a codec
with its own discriminator adds it in its folder."""
from __future__ import annotations

from typing import Tuple

from torch import nn

from audiotok.discriminators.dac import DACDiscriminator
from audiotok.discriminators.msstft import MultiScaleSTFTDiscriminator
from audiotok.discriminators.period import MultiPeriodDiscriminator
from audiotok.discriminators.resolution import MultiResolutionDiscriminator
from audiotok.encodec_losses import AudioCraftTerm
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
    """DAC's multi-band, multi-scale STFT discriminator (LSGAN); ``loss.audio.dac_filters`` sets its width."""
    return DACDiscriminator(channels=audio.dac_filters), wavtokenizer_terms(audio.mrd_weight)["dac"]


def dac_hann(audio) -> Built:
    """DAC's discriminator as descript-audio-codec trains it (``conf/base.yml`` ``Discriminator.*``:
    periods 2, 3, 5, 7, 11, STFT sizes 2048, 1024, 512, the five bands, no multi-scale part): its band
    discriminators see a Hann-windowed, stride-matched STFT (the ``dac`` entry is WavTokenizer's port,
    rectangular window). Its term is DAC's ``GANLoss`` with the lambdas of ``conf/base.yml``
    (``adv/gen_loss`` 1, ``adv/feat_loss`` 2): LSGAN on each sub-discriminator's last output, summed
    over the eight; feature matching sums the L1 means of every other feature map over layers and
    sub-discriminators; the discriminator loss has weight 1. ``loss.audio.dac_filters`` sets its width
    (published: 32)."""
    return (DACDiscriminator(window="hann", match_stride=True, channels=audio.dac_filters),
            AdversarialTerm("lsgan", 1.0, 2.0, "sum"))


def msstft(audio) -> Built:
    """EnCodec's multi-scale STFT discriminator with the term of AudioCraft's compression recipe
    (``config/solver/compression/default.yaml``: ``adversarial.adv_loss: hinge``, ``feat_loss: l1``,
    ``normalize`` true; ``losses.adv: 4``, ``losses.feat: 4``), normalised as AudioCraft does
    (:class:`audiotok.encodec_losses.AudioCraftTerm`: generator term ``-mean(D(fake))``, feature
    matching averaged over each scale's feature maps, both averaged over the five scales). Under
    ``loss.audio.balancer`` the weights 4 and 4 are gradient shares, as published; without it they
    are plain multipliers. The discriminator's own hinge loss is scaled by 4 too, where AudioCraft's is
    not: with Adam (and no gradient clipping, as published) that changes its updates only through
    Adam's epsilon. ``loss.audio.msstft_filters`` sets its width (published: 32)."""
    return MultiScaleSTFTDiscriminator(filters=audio.msstft_filters), AudioCraftTerm("hinge", 4.0, 4.0, "mean")
