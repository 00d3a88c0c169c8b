"""Audio discriminators. Each takes ``(B, T)`` waveforms (plus an optional class id) and returns
``(logits, feature maps)``: one logits tensor ``(B, N)`` and one list of feature maps per
sub-discriminator."""
from audiotok.discriminators.base import DiscriminatorOutput
from audiotok.discriminators.collection import DiscriminatorSet, wavtokenizer_discriminators
from audiotok.discriminators.dac import ComplexBandDiscriminator, DACDiscriminator, DACPeriodDiscriminator
from audiotok.discriminators.msstft import MultiScaleSTFTDiscriminator, STFTDiscriminator
from audiotok.discriminators.period import MultiPeriodDiscriminator, PeriodDiscriminator
from audiotok.discriminators.resolution import MultiResolutionDiscriminator, ResolutionDiscriminator

__all__ = [
    "ComplexBandDiscriminator",
    "DACDiscriminator",
    "DACPeriodDiscriminator",
    "DiscriminatorOutput",
    "DiscriminatorSet",
    "MultiPeriodDiscriminator",
    "MultiResolutionDiscriminator",
    "MultiScaleSTFTDiscriminator",
    "PeriodDiscriminator",
    "ResolutionDiscriminator",
    "STFTDiscriminator",
    "wavtokenizer_discriminators",
]
