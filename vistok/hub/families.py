"""Model families the zoo can build: the model class and the converter from the authors' layout.

Entries are import paths, so listing the zoo imports no model code, and the audio package can
be named here without the image side depending on it.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Tuple

import torch

from vistok.errors import InputError, UnknownNameError


def resolve(target: str) -> Any:
    """The object a ``module:attribute`` string names (imported on use)."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Family:
    """How to build one kind of tokenizer and how to read its authors' checkpoints."""

    name: str
    model: str  # "module:Class": a vistok.models.base.Tokenizer subclass, or the token generator
    official_converter: str  # "module:function(official_state_dict, config) -> tokzoo state dict", or "" for none
    # "module:function(card_config, checkpoint_path, family) -> config": the config an official
    # checkpoint describes (read as data), completing the card's; "" keeps the card's config
    config_resolver: str = ""
    sidecars: Tuple[str, ...] = ()  # files beside the checkpoint in its Hugging Face repo that the resolver reads
    # "module:function(official_state_dict) -> discriminator state dict" when released checkpoints ship
    # the discriminators (fine-tuning with loss.adversarial.init); "" when they hold only the tokenizer
    discriminator_converter: str = ""

    def model_class(self) -> type:
        return resolve(self.model)

    def build(self, config: Mapping[str, Any]):
        return self.model_class()(dict(config))

    def resolve_config(self, converter: str, card_config: Mapping[str, Any], checkpoint: Path) -> Dict[str, Any]:
        """The config to build with: the card's, completed from an official checkpoint's own config."""
        if converter != "official" or not self.config_resolver:
            return dict(card_config)
        return resolve(self.config_resolver)(card_config, checkpoint, self.name)

    def convert(self, converter: str, state: Mapping[str, torch.Tensor], config: Any) -> Dict[str, torch.Tensor]:
        if converter == "tokzoo":
            return dict(state)
        if not self.official_converter:
            raise InputError(f"family {self.name!r} has no converter from an official checkpoint; "
                             "only tokzoo's own layout (converter: tokzoo) loads")
        fn: Callable = resolve(self.official_converter)
        return fn(state, config)


FAMILIES: Dict[str, Family] = {
    f.name: f
    for f in [
        Family("titok", "vistok.models.titok:TiTok", "vistok.hub.titok:convert_titok_state_dict"),
        Family("maskgit_vqgan", "vistok.models.maskgit_vqgan:MaskGITVQGAN",
               "vistok.hub.maskgit:convert_maskgit_state_dict"),
        Family("flextok", "vistok.models.flextok:FlexTok", "vistok.hub.flextok:convert_flextok_state_dict",
               "vistok.hub.flextok:resolve_card_config", ("config.json",)),
        Family("flextok_vae", "vistok.models.flextok:FlexTokVAE", "vistok.hub.flextok:convert_flextok_vae_state_dict",
               "vistok.hub.flextok:resolve_card_config", ("config.json",)),
        Family("wavtokenizer", "audiotok.models.wavtokenizer:WavTokenizer",
               "vistok.hub.wavtokenizer:convert_wavtokenizer_state_dict",
               discriminator_converter="vistok.hub.wavtokenizer:convert_wavtokenizer_discriminators"),
        # not a tokenizer: the class-conditional AR model over a tokenizer's ids (trained here only)
        Family("generator", "vistok.models.generator:ARGenerator", ""),
    ]
}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise UnknownNameError(f"unknown model family {name!r}; known: {', '.join(sorted(FAMILIES))}") from None
