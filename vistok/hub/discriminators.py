"""Discriminators that a release ships beside its tokenizer, for fine-tuning with the GAN warm
(``loss.adversarial.init: NAME``). A family declares a ``discriminator_converter`` when its
authors' checkpoints hold discriminator weights; for the others this says so by name."""
from __future__ import annotations

from typing import Dict

import torch

from vistok.errors import InputError
from vistok.hub.catalogue import get_card
from vistok.models.state_dict import read_state_dict
from vistok.hub.download import fetch
from vistok.registry import get_family, resolve


def release_discriminator_state(name: str) -> Dict[str, torch.Tensor]:
    """The discriminator weights of zoo model ``name``'s released checkpoint (downloaded and verified
    as the tokenizer is), in the layout of the family's training objective."""
    card = get_card(name)
    family = get_family(card.family)
    if not family.discriminator_converter or card.converter != "official":
        raise InputError(f"loss.adversarial.init: {name} ({card.family}) ships no discriminator, only the "
                         "tokenizer's weights; leave loss.adversarial.init unset to start the GAN from random weights")
    path, _ = fetch(card.source, name)
    try:
        return resolve(family.discriminator_converter)(read_state_dict(path))
    except ValueError as err:
        raise InputError(f"loss.adversarial.init: {name} ({path}): {err}") from None
