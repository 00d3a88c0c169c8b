"""Several named discriminators run as one module, so a training engine can wrap, optimise and
checkpoint them together."""
from __future__ import annotations

from typing import Dict, Iterable, Mapping, Optional, Sequence

import torch
from torch import nn

from audiotok.discriminators.base import DiscriminatorOutput
from audiotok.discriminators.dac import DACDiscriminator
from audiotok.discriminators.period import MultiPeriodDiscriminator
from audiotok.discriminators.resolution import MultiResolutionDiscriminator


class DiscriminatorSet(nn.ModuleDict):
    """A ``ModuleDict`` of discriminators with a ``forward``: ``(B, T)`` waveforms (and an optional
    class id for the conditional ones) -> ``{name: (logits, feature maps)}``, for all of them or the
    ``names`` given. Having a forward lets DDP/FSDP (accelerate ``prepare``) wrap the set as one module."""

    def __init__(self, discriminators: Mapping[str, nn.Module]):
        super().__init__(dict(discriminators))

    def forward(self, x: torch.Tensor, cond: Optional[torch.Tensor] = None,
                names: Optional[Iterable[str]] = None) -> Dict[str, DiscriminatorOutput]:
        names = list(self.keys()) if names is None else list(names)
        unknown = [n for n in names if n not in self]
        if unknown:
            raise KeyError(f"DiscriminatorSet: no discriminator named {unknown}; have {list(self.keys())}")
        return {name: self[name](x, cond) for name in names}


WAVTOKENIZER_DISCRIMINATORS = ("mpd", "mrd", "dac")


def wavtokenizer_discriminators(num_embeddings: Optional[int] = 4,
                                names: Sequence[str] = WAVTOKENIZER_DISCRIMINATORS) -> DiscriminatorSet:
    """The discriminators WavTokenizer trains, as ``mpd``, ``mrd`` and ``dac`` (84.2 M parameters for
    all three with the default 4 class embeddings; ``None`` builds unconditional MPD/MRD); ``names``
    builds only those, in the order given."""
    build = {"mpd": lambda: MultiPeriodDiscriminator(num_embeddings=num_embeddings),
             "mrd": lambda: MultiResolutionDiscriminator(num_embeddings=num_embeddings),
             "dac": DACDiscriminator}
    return DiscriminatorSet({n: build[n]() for n in names})
