"""Official DAC checkpoints -> :class:`audiotok.models.dac.DAC`, and back; the config a release
describes.

Layouts read (detected from the key names):

- **dac** (the ``descript-audio-codec`` package: the ``.pth`` its ``dac.utils.download`` fetches,
  ``{"state_dict": ..., "metadata": {"kwargs": ...}}``): the encoder as ``encoder.block.<i>`` (stem,
  encoder blocks, Snake, projection), each block's residual units ``block.<j>.block.<0..3>`` (Snake,
  dilated conv, Snake, 1x1 conv) then ``block.3`` (Snake) and ``block.4`` (strided conv); the decoder
  as ``decoder.model.<i>`` (stem, decoder blocks ``block.0`` Snake / ``block.1`` transposed conv /
  ``block.2..4`` residual units, Snake, projection); levels ``quantizer.quantizers.<q>.{in_proj,
  out_proj,codebook}``. Convolutions carry legacy weight norm (``weight_g`` / ``weight_v``), or the
  parametrization form (``parametrizations.weight.original0`` / ``original1``) after a re-save.
- **transformers** (``DacModel``, checked against the modules of transformers 5.25, not against the
  files on the hub): ``encoder.conv1``, ``encoder.block.<i>.res_unit<1..3>.{snake1,conv1,snake2,conv2}``,
  ``encoder.block.<i>.{snake1,conv1}``, ``encoder.{snake1,conv2}``; ``decoder.conv1``,
  ``decoder.block.<i>.{snake1,conv_t1,res_unit<1..3>}``, ``decoder.{snake1,conv2}``; the same
  quantizer keys. ``DacModel`` has its weight norm removed (plain ``weight``), which becomes
  ``weight_g = |weight|`` (per output channel; per input channel for a transposed convolution) and
  ``weight_v = weight``: the same function up to one rounding of the product.

Ours: ``encoder.{stem,blocks.<i>.{res.<j>.{act1,conv1,act2,conv2},act,down},act,proj}``,
``decoder.{stem,blocks.<i>.{act,up,res.<j>.*},act,proj}``, ``quantizer.levels.<q>.{in_proj,out_proj,
codebook}``, weight norm as torch parametrizations (``weight_g`` / ``weight_v`` ->
``parametrizations.weight.original0`` / ``original1``, the same tensors). Unknown keys pass through
unchanged so strict loading names them.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import torch

from audiotok.models.dac.config import DACConfig
from vistok.errors import InputError
from vistok.models.state_dict import load_strict

_NORM = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1"}
_OURS_UNIT = ("act1", "conv1", "act2", "conv2")
_HF_UNIT = ("snake1", "conv1", "snake2", "conv2")
_LEAF = re.compile(r"^(.*?)\.(alpha|bias|weight|weight_g|weight_v|parametrizations\.weight\.original[01])$")


def detect_layout(state: Mapping[str, Any]) -> str:
    """``"dac"``, ``"transformers"`` or ``"tokzoo"`` (anything else)."""
    if any(k.startswith(("encoder.conv1.", "decoder.conv1.")) for k in state):
        return "transformers"  # (its encoder blocks are encoder.block.<i> too)
    if any(k.startswith(("encoder.block.0.", "decoder.model.")) for k in state):
        return "dac"
    return "tokzoo"


def module_table(config: DACConfig, layout: str) -> Dict[str, str]:
    """Module path in ``layout`` (``"dac"`` or ``"transformers"``) -> ours, for every module with weights."""
    if layout not in ("dac", "transformers"):
        raise ValueError(f"layout must be 'dac' or 'transformers', got {layout!r}")
    dac = layout == "dac"
    table: Dict[str, str] = {}

    def unit(theirs: str, ours: str) -> None:
        for k, name in enumerate(_OURS_UNIT):
            table[f"{theirs}.block.{k}" if dac else f"{theirs}.{_HF_UNIT[k]}"] = f"{ours}.{name}"

    n = len(config.encoder_rates)
    table["encoder.block.0" if dac else "encoder.conv1"] = "encoder.stem"
    for i in range(n):
        theirs, ours = (f"encoder.block.{i + 1}" if dac else f"encoder.block.{i}"), f"encoder.blocks.{i}"
        for j in range(3):
            unit(f"{theirs}.block.{j}" if dac else f"{theirs}.res_unit{j + 1}", f"{ours}.res.{j}")
        table[f"{theirs}.block.3" if dac else f"{theirs}.snake1"] = f"{ours}.act"
        table[f"{theirs}.block.4" if dac else f"{theirs}.conv1"] = f"{ours}.down"
    table[f"encoder.block.{n + 1}" if dac else "encoder.snake1"] = "encoder.act"
    table[f"encoder.block.{n + 2}" if dac else "encoder.conv2"] = "encoder.proj"
    m = len(config.decoder_rates)
    table["decoder.model.0" if dac else "decoder.conv1"] = "decoder.stem"
    for i in range(m):
        theirs, ours = (f"decoder.model.{i + 1}" if dac else f"decoder.block.{i}"), f"decoder.blocks.{i}"
        table[f"{theirs}.block.0" if dac else f"{theirs}.snake1"] = f"{ours}.act"
        table[f"{theirs}.block.1" if dac else f"{theirs}.conv_t1"] = f"{ours}.up"
        for j in range(3):
            unit(f"{theirs}.block.{j + 2}" if dac else f"{theirs}.res_unit{j + 1}", f"{ours}.res.{j}")
    table[f"decoder.model.{m + 1}" if dac else "decoder.snake1"] = "decoder.act"
    table[f"decoder.model.{m + 2}" if dac else "decoder.conv2"] = "decoder.proj"
    for q in range(config.num_quantizers):
        for part in ("in_proj", "out_proj", "codebook"):
            table[f"quantizer.quantizers.{q}.{part}"] = f"quantizer.levels.{q}.{part}"
    return table


def _norm_of(weight: torch.Tensor) -> torch.Tensor:
    """``weight_g`` of a plain weight under weight norm over its first dimension."""
    return torch.norm_except_dim(weight, 2, 0)


def convert_dac_state_dict(official: Mapping[str, torch.Tensor], config) -> Dict[str, torch.Tensor]:
    """An official (``descript-audio-codec`` or transformers) DAC state dict -> the tokzoo state
    dict for ``config`` (a :class:`~audiotok.models.dac.DACConfig` or its dict). A tokzoo-layout
    dict passes through."""
    config = config if isinstance(config, DACConfig) else DACConfig(**config)
    layout = detect_layout(official)
    if layout == "tokzoo":
        return dict(official)
    table = module_table(config, layout)
    out: Dict[str, torch.Tensor] = {}
    for key, value in official.items():
        match = _LEAF.match(key)
        module = table.get(match.group(1)) if match else None
        if module is None:
            out[key] = value
            continue
        leaf = match.group(2)
        if leaf == "weight" and not module.endswith(".codebook"):  # weight norm removed (transformers)
            out[f"{module}.{_NORM['weight_g']}"] = _norm_of(value)
            out[f"{module}.{_NORM['weight_v']}"] = value
            continue
        out[f"{module}.{_NORM.get(leaf, leaf)}"] = value
    return out


def to_official_state_dict(state: Mapping[str, torch.Tensor], config) -> Dict[str, torch.Tensor]:
    """A tokzoo DAC state dict -> the ``descript-audio-codec`` layout with legacy ``weight_g`` /
    ``weight_v`` (what its ``DAC.load_state_dict`` reads): the inverse of :func:`convert_dac_state_dict`."""
    config = config if isinstance(config, DACConfig) else DACConfig(**config)
    inverse = {ours: theirs for theirs, ours in module_table(config, "dac").items()}
    leaves = {v: k for k, v in _NORM.items()}
    out: Dict[str, torch.Tensor] = {}
    for key, value in state.items():
        match = _LEAF.match(key)
        module = inverse.get(match.group(1)) if match else None
        out[key if module is None else f"{module}.{leaves.get(match.group(2), match.group(2))}"] = value
    return out


def load_dac_state_dict(model, official: Mapping[str, torch.Tensor], source: str = "checkpoint"):
    """Convert and load strictly; mismatches raise an error naming the keys."""
    load_strict(model, convert_dac_state_dict(official, model.config), source)
    return model


# ----- the config a release describes -----

#: ``DAC.__init__`` keyword (the release metadata's ``kwargs``) -> our config field.
_KWARGS = {"sample_rate": "sample_rate", "encoder_dim": "encoder_dim", "encoder_rates": "encoder_rates",
           "latent_dim": "latent_dim", "decoder_dim": "decoder_dim", "decoder_rates": "decoder_rates",
           "n_codebooks": "num_quantizers", "codebook_size": "codebook_size", "codebook_dim": "codebook_dim"}


def config_from_kwargs(kwargs: Mapping[str, Any], where: str = "metadata") -> Dict[str, Any]:
    """The architecture fields of our config from the official ``DAC(**kwargs)`` (unknown keys ignored)."""
    out: Dict[str, Any] = {}
    for theirs, ours in _KWARGS.items():
        if kwargs.get(theirs) is None:
            continue
        value = kwargs[theirs]
        if theirs == "codebook_dim" and isinstance(value, (list, tuple)):
            if len(set(value)) != 1:
                raise InputError(f"{where}: per-level codebook_dim {list(value)} is not supported (one dimension for all)")
            value = value[0]
        out[ours] = [int(v) for v in value] if isinstance(value, (list, tuple)) else int(value)
    return out


def read_metadata_kwargs(path: Union[str, Path]) -> Optional[Dict[str, Any]]:
    """``metadata["kwargs"]`` of an official ``.pth`` (read with ``weights_only``), or None when the
    file holds none (a plain state dict, safetensors)."""
    path = Path(path)
    if path.suffix == ".safetensors" or not path.is_file():
        return None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, EOFError, ValueError, OSError):
        return None
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    kwargs = meta.get("kwargs") if isinstance(meta, dict) else None
    return dict(kwargs) if isinstance(kwargs, dict) else None


def resolve_card_config(card_config: Mapping[str, Any], path: Union[str, Path], family: str) -> Dict[str, Any]:
    """The config to build a zoo card's model with: the card's, its null fields filled from the
    release's metadata kwargs. An architecture field on which the card and the checkpoint
    disagree is an error naming both values (correct the card); training-only fields (quantizer
    dropout, loss weights) are the card's. A checkpoint without metadata leaves the card's config."""
    kwargs = read_metadata_kwargs(path)
    if kwargs is None:
        return dict(card_config)
    ckpt = config_from_kwargs(kwargs, str(path))
    conflicts = [f"{field}: card {card_config[field]!r}, checkpoint {value!r}" for field, value in ckpt.items()
                 if card_config.get(field) is not None and card_config[field] != value]
    if conflicts:
        raise InputError(f"{path}: the zoo card's config disagrees with the checkpoint's ({'; '.join(conflicts)}); "
                         "correct the card's config")
    return {**dict(card_config), **{k: v for k, v in ckpt.items() if card_config.get(k) is None}}
