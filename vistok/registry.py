"""Model families, found through Python entry points: the core never names one.

A family declares, as import strings resolved on use (so listing the zoo imports no model code):
its model class, converters from the authors' layouts, its modality, its default training
objective, and what it adds to the core: objectives (``loss.kind``), data kinds (``data.kind``),
recipe sections and command-line subcommands. A distribution registers its families in the
``tokzoo.families`` entry-point group, each entry naming a :class:`Family`::

    [options.entry_points]
    tokzoo.families =
        mycodec = mypackage.family:FAMILY

tokzoo's own packages register theirs the same way (``setup.cfg``).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Tuple

from vistok.errors import InputError, TokzooError, UnknownNameError

ENTRY_POINT_GROUP = "tokzoo.families"
# Functions turning a name that is not a local directory (a zoo name, a hub repo) into a loaded
# model: the hub registers its own here, so the model layer's from_pretrained never imports it.
RESOLVER_GROUP = "tokzoo.resolvers"
MODALITIES = ("image", "audio", "tokens")


def resolve(target: str) -> Any:
    """The object a ``module:attribute`` string names (imported on use)."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Family:
    """How to build one kind of tokenizer, read its authors' checkpoints and train it."""

    name: str
    model: str  # "module:Class": a vistok.models.base.Tokenizer subclass (or the token generator)
    modality: str  # image | audio | tokens (a model over token ids, not a tokenizer)
    objective: str = "image"  # the loss.kind that trains it when a recipe says loss.kind: auto
    official_converter: str = ""  # "module:function(official_state_dict, config) -> tokzoo state dict"
    # "module:function(card_config, checkpoint_path, family) -> config": the config an official
    # checkpoint describes (read as data), completing the card's; "" keeps the card's config
    config_resolver: str = ""
    sidecars: Tuple[str, ...] = ()  # files beside the checkpoint in its Hugging Face repo that the resolver reads
    # "module:function(official_state_dict) -> discriminator state dict" when released checkpoints ship
    # the discriminators (fine-tuning with loss.adversarial.init); "" when they hold only the tokenizer
    discriminator_converter: str = ""
    # What the family adds to the core, each "module:attribute":
    objectives: Mapping[str, str] = field(default_factory=dict)  # loss.kind -> Objective class
    data_kinds: Mapping[str, str] = field(default_factory=dict)  # data.kind -> function(recipe, root, train) -> Dataset
    recipe_sections: Mapping[str, str] = field(default_factory=dict)  # "loss.audio" -> dataclass of its keys
    # name -> function(recipe section) -> (discriminator, its GAN term), for objectives that let a
    # recipe pick discriminators by name (audio codecs: loss.audio.discriminators)
    discriminators: Mapping[str, str] = field(default_factory=dict)
    commands: Tuple[str, ...] = ()  # function(subparsers) adding CLI subcommands

    def __post_init__(self):
        if self.modality not in MODALITIES:
            raise TokzooError(f"family {self.name!r}: modality must be one of {MODALITIES}, got {self.modality!r}")

    def model_class(self) -> type:
        return resolve(self.model)

    def build(self, config: Mapping[str, Any]):
        return self.model_class()(dict(config))

    def resolve_config(self, converter: str, card_config: Mapping[str, Any], checkpoint: Path) -> Dict[str, Any]:
        """The config to build with: the card's, completed from an official checkpoint's own config."""
        if converter != "official" or not self.config_resolver:
            return dict(card_config)
        return resolve(self.config_resolver)(card_config, checkpoint, self.name)

    def convert(self, converter: str, state: Mapping[str, Any], config: Any) -> Dict[str, Any]:
        if converter == "tokzoo":
            return dict(state)
        if not self.official_converter:
            raise InputError(f"family {self.name!r} has no converter from an official checkpoint; "
                             "only tokzoo's own layout (converter: tokzoo) loads")
        fn: Callable = resolve(self.official_converter)
        return fn(state, config)


@lru_cache(maxsize=1)
def families() -> Dict[str, Family]:
    """Every registered family by name (entry points read once per process)."""
    found: Dict[str, Family] = {}
    owners: Dict[str, str] = {}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        owner = entry.dist.name if entry.dist is not None else entry.value
        try:
            family = entry.load()
        except Exception as err:  # noqa: BLE001 - a broken plugin is named, not a traceback from importlib
            raise TokzooError(f"entry point {entry.name} = {entry.value} ({owner}) does not load: "
                              f"{type(err).__name__}: {err}") from err
        if not isinstance(family, Family) or family.name != entry.name:
            raise TokzooError(f"entry point {entry.name} = {entry.value} ({owner}) must name a "
                              f"vistok.registry.Family called {entry.name!r}")
        if family.name in found and found[family.name] != family:
            raise TokzooError(f"two distributions register the family {family.name!r}: {owners[family.name]} and {owner}")
        found[family.name], owners[family.name] = family, owner
    if not found:
        raise TokzooError(f"no model families are registered (entry-point group {ENTRY_POINT_GROUP!r}): "
                          "install tokzoo (pip install -e . in a checkout) so its entry points exist")
    return found


def get_family(name: str) -> Family:
    try:
        return families()[name]
    except KeyError:
        raise UnknownNameError(f"unknown model family {name!r}; known: {', '.join(sorted(families()))}") from None


def contributions(what: str) -> Dict[str, Tuple[str, str]]:
    """``{key: (target, family name)}`` of one kind of contribution (``objectives``, ``data_kinds``,
    ``recipe_sections``, ``discriminators``) over all families; two families giving the same key different targets is
    an error."""
    out: Dict[str, Tuple[str, str]] = {}
    for family in families().values():
        for key, target in getattr(family, what).items():
            if key in out and out[key][0] != target:
                raise TokzooError(f"families {out[key][1]!r} and {family.name!r} both define {what} {key!r}")
            out.setdefault(key, (target, family.name))
    return out


def command_registrars() -> Tuple[str, ...]:
    """The ``module:function`` CLI registrars every family adds, in family order, without repeats."""
    return tuple(dict.fromkeys(c for family in families().values() for c in family.commands))


@lru_cache(maxsize=1)
def name_resolver() -> Callable[..., Any]:
    """The ``function(name, **options) -> model`` registered in the ``tokzoo.resolvers`` group
    (tokzoo's hub: zoo names and Hugging Face repos); one must be installed."""
    entries = sorted(metadata.entry_points(group=RESOLVER_GROUP), key=lambda e: e.name)
    if not entries:
        raise TokzooError(f"no name resolver is registered (entry-point group {RESOLVER_GROUP!r}): only local "
                          "directories load; install tokzoo (pip install -e . in a checkout)")
    if len(entries) > 1:
        raise TokzooError(f"several name resolvers are registered ({', '.join(e.value for e in entries)}); "
                          "uninstall all but one")
    return entries[0].load()
