"""Official SNAC checkpoints -> :class:`audiotok.models.snac.SNAC`, and back; the config a release's
``config.json`` describes.

The official layout (the ``snac`` package, 1.2.1: ``pytorch_model.bin``, a pickled state dict read
here with ``weights_only=True``, beside ``config.json``, the keyword arguments of ``SNAC``):

- ``encoder.block.<i>``: 0 the stem; ``1..n`` the encoder blocks, each ``block.<0..2>`` residual
  units (``block.<0..3>``: Snake, dilated conv, Snake, 1x1 conv), ``block.3`` Snake, ``block.4`` the
  strided conv; then the attention (``norm``, ``to_qkv``, ``to_out``, ``rel_pos.inv_freq``) when
  the config has a window; then the last conv;
- ``decoder.model.<i>``: the stem (with ``depthwise``: the depthwise conv, then the 1x1 conv), the
  attention, the decoder blocks (``block.0`` Snake, ``block.1`` transposed conv, ``block.2`` the
  noise block's ``linear`` when ``noise``, then three residual units), Snake, the last conv;
- ``quantizer.quantizers.<q>.{in_proj,out_proj,codebook}``.

Convolutions carry torch's parametrized weight norm (``parametrizations.weight.original0`` /
``original1``, what 1.2.1 saves), or the legacy ``weight_g`` / ``weight_v`` (torch converts those
on load, so a file may hold them). Ours: ``encoder.{stem,blocks.<i>.{res.<j>.{act1,conv1,act2,
conv2},act,down},attn,proj}``, ``decoder.{stem,mix,attn,blocks.<i>.{act,up,noise.linear,res.<j>},
act,proj}``, ``quantizer.levels.<q>.*``. Unknown keys pass through unchanged so strict loading
names them.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import torch

from audiotok.models.snac.config import SNACConfig
from vistok.errors import InputError
from vistok.models.state_dict import load_strict

_NORM = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1"}
_UNIT = ("act1", "conv1", "act2", "conv2")
_ATTN = ("norm", "to_qkv", "to_out", "rel_pos")
_LEAF = re.compile(r"^(.*?)\.(alpha|bias|weight|weight_g|weight_v|inv_freq|parametrizations\.weight\.original[01])$")


def _config(config) -> SNACConfig:
    return config if isinstance(config, SNACConfig) else SNACConfig(**config)


def module_table(config) -> Dict[str, str]:
    """Official module path -> ours, for every module with weights."""
    cfg = _config(config)
    table: Dict[str, str] = {}

    def unit(theirs: str, ours: str) -> None:
        for k, name in enumerate(_UNIT):
            table[f"{theirs}.block.{k}"] = f"{ours}.{name}"

    def attention(theirs: str, ours: str) -> None:
        for name in _ATTN:
            table[f"{theirs}.{name}"] = f"{ours}.{name}"

    n = len(cfg.encoder_rates)
    table["encoder.block.0"] = "encoder.stem"
    for i in range(n):
        theirs, ours = f"encoder.block.{i + 1}", f"encoder.blocks.{i}"
        for j in range(3):
            unit(f"{theirs}.block.{j}", f"{ours}.res.{j}")
        table[f"{theirs}.block.3"] = f"{ours}.act"
        table[f"{theirs}.block.4"] = f"{ours}.down"
    i = n + 1
    if cfg.attn_window_size:
        attention(f"encoder.block.{i}", "encoder.attn")
        i += 1
    table[f"encoder.block.{i}"] = "encoder.proj"

    table["decoder.model.0"] = "decoder.stem"
    i = 1
    if cfg.depthwise:
        table["decoder.model.1"] = "decoder.mix"
        i = 2
    if cfg.attn_window_size:
        attention(f"decoder.model.{i}", "decoder.attn")
        i += 1
    for b in range(len(cfg.decoder_rates)):
        theirs, ours = f"decoder.model.{i}", f"decoder.blocks.{b}"
        table[f"{theirs}.block.0"] = f"{ours}.act"
        table[f"{theirs}.block.1"] = f"{ours}.up"
        first = 2
        if cfg.noise:
            table[f"{theirs}.block.2.linear"] = f"{ours}.noise.linear"
            first = 3
        for j in range(3):
            unit(f"{theirs}.block.{first + j}", f"{ours}.res.{j}")
        i += 1
    table[f"decoder.model.{i}"] = "decoder.act"
    table[f"decoder.model.{i + 1}"] = "decoder.proj"
    for q in range(cfg.num_quantizers):
        for part in ("in_proj", "out_proj", "codebook"):
            table[f"quantizer.quantizers.{q}.{part}"] = f"quantizer.levels.{q}.{part}"
    return table


def detect_layout(state: Mapping[str, Any]) -> str:
    """``"snac"`` (the official layout) or ``"tokzoo"`` (anything else)."""
    if any(k.startswith(("encoder.block.", "decoder.model.", "quantizer.quantizers.")) for k in state):
        return "snac"
    return "tokzoo"


def convert_snac_state_dict(official: Mapping[str, torch.Tensor], config) -> Dict[str, torch.Tensor]:
    """An official SNAC state dict -> the tokzoo state dict for ``config`` (a
    :class:`~audiotok.models.snac.SNACConfig` or its dict). A tokzoo-layout dict passes through."""
    if detect_layout(official) == "tokzoo":
        return dict(official)
    table = module_table(config)
    out: Dict[str, torch.Tensor] = {}
    for key, value in official.items():
        match = _LEAF.match(key)
        module = table.get(match.group(1)) if match else None
        if module is None:
            out[key] = value
            continue
        out[f"{module}.{_NORM.get(match.group(2), match.group(2))}"] = value
    return out


def to_official_state_dict(state: Mapping[str, torch.Tensor], config) -> Dict[str, torch.Tensor]:
    """A tokzoo SNAC state dict -> the official layout (parametrized weight norm, as ``snac`` 1.2.1
    saves it): the inverse of :func:`convert_snac_state_dict`."""
    inverse = {ours: theirs for theirs, ours in module_table(config).items()}
    out: Dict[str, torch.Tensor] = {}
    for key, value in state.items():
        match = _LEAF.match(key)
        module = inverse.get(match.group(1)) if match else None
        out[key if module is None else f"{module}.{match.group(2)}"] = value
    return out


def load_snac_state_dict(model, official: Mapping[str, torch.Tensor], source: str = "checkpoint"):
    """Convert and load strictly; mismatches raise an error naming the keys."""
    load_strict(model, convert_snac_state_dict(official, model.config), source)
    return model


# ----- the config a release describes -----

#: ``SNAC.__init__`` keyword (the release's ``config.json``) -> our config field.
_KWARGS = {"sampling_rate": "sample_rate", "encoder_dim": "encoder_dim", "encoder_rates": "encoder_rates",
           "latent_dim": "latent_dim", "decoder_dim": "decoder_dim", "decoder_rates": "decoder_rates",
           "attn_window_size": "attn_window_size", "codebook_size": "codebook_size",
           "codebook_dim": "codebook_dim", "vq_strides": "vq_strides", "noise": "noise", "depthwise": "depthwise"}


def config_from_official(kwargs: Mapping[str, Any], where: str = "config.json") -> Dict[str, Any]:
    """Our config fields from the official ``SNAC(**kwargs)`` (``config.json``). A key the official
    constructor does not take is an error (it would refuse it too); a missing one keeps our default
    (the official defaults differ: they are not a release, so a complete file is expected)."""
    if not isinstance(kwargs, Mapping):
        raise InputError(f"{where}: expected a JSON object of SNAC keyword arguments, got {type(kwargs).__name__}")
    unknown = sorted(set(kwargs) - set(_KWARGS))
    if unknown:
        raise InputError(f"{where}: unknown SNAC config keys {unknown} (known: {sorted(_KWARGS)})")
    out: Dict[str, Any] = {}
    for theirs, ours in _KWARGS.items():
        if theirs not in kwargs:
            continue
        value = kwargs[theirs]
        if isinstance(value, (list, tuple)):
            value = [int(v) for v in value]
        elif isinstance(value, bool) or value is None:
            pass
        else:
            value = int(value)
        out[ours] = value
    if out.get("latent_dim") is None:
        out.pop("latent_dim", None)
    return out


def read_official_config(path: Union[str, Path]) -> Optional[Dict[str, Any]]:
    """Our config fields from the ``config.json`` beside checkpoint ``path`` (or ``path`` itself when it
    is a JSON file or a directory holding one), or None when there is none."""
    path = Path(path)
    candidate = path if path.suffix == ".json" else (path / "config.json" if path.is_dir() else path.parent / "config.json")
    if not candidate.is_file():
        return None
    try:
        kwargs = json.loads(candidate.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{candidate}: cannot read the SNAC config ({err})") from None
    return config_from_official(kwargs, str(candidate))


def resolve_card_config(card_config: Mapping[str, Any], path: Union[str, Path], family: str) -> Dict[str, Any]:
    """The config to build a zoo card's model with: the card's, its null fields filled from the
    release's ``config.json`` (fetched beside the checkpoint). An architecture field on which the
    card and the file disagree is an error naming both values (correct the card); training-only
    fields are the card's. No ``config.json`` beside the checkpoint leaves the card's config."""
    official = read_official_config(path)
    if official is None:
        return dict(card_config)
    conflicts = [f"{field}: card {card_config[field]!r}, config.json {value!r}" for field, value in official.items()
                 if card_config.get(field) is not None and card_config[field] != value]
    if conflicts:
        raise InputError(f"{path}: the zoo card's config disagrees with the release's config.json "
                         f"({'; '.join(conflicts)}); correct the card's config")
    return {**dict(card_config), **{k: v for k, v in official.items() if card_config.get(k) is None}}
