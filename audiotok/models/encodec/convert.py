"""Official EnCodec checkpoints -> :class:`audiotok.models.encodec.EnCodec`, and back.

Two layouts are read (detected from the key names):

- **encodec** (the ``encodec`` package's ``.th`` files): ``encoder.model.<i>.*`` and
  ``decoder.model.<i>.*`` (each SEANet as one ``Sequential``, activations included in the
  numbering), convolutions wrapped twice (``conv.conv.*``, ``convtr.convtr.*``) with legacy weight
  norm (``weight_g`` / ``weight_v``) or a group norm beside them (``conv.norm.*``,
  ``convtr.norm.*``); residual units ``block.1`` / ``block.3`` / ``shortcut``; the LSTM as
  ``lstm.*``; codebooks ``quantizer.vq.layers.<q>._codebook.{embed,embed_avg,cluster_size,inited}``.
- **transformers** (``EncodecModel``): ``encoder.layers.<i>.*`` / ``decoder.layers.<i>.*`` with the
  same numbering, convolutions as ``conv.*`` (torch parametrizations or legacy ``weight_g`` /
  ``weight_v``) and ``norm.*``; codebooks ``quantizer.layers.<q>.codebook.*``. Checked against the
  modules of transformers 5.25 (see ``eval/parity_encodec.py``), not against the files on the hub.

Mapping: Sequential index -> ``encoder.stem`` / ``encoder.stages.<s>.res.<j>`` /
``encoder.stages.<s>.down`` / ``encoder.lstm`` / ``encoder.proj``, and ``decoder.stem`` /
``decoder.lstm`` / ``decoder.stages.<s>.up`` / ``decoder.stages.<s>.res.<j>`` / ``decoder.proj``;
``weight_g`` / ``weight_v`` -> ``parametrizations.weight.original0`` / ``original1`` (the same
tensors); codebook buffers -> ``quantizer.quantizers.<q>.*`` with ``inited`` -> ``initted`` (bool).
Unknown keys pass through unchanged so strict loading names them.
"""
from __future__ import annotations

import re
from typing import Dict, Mapping, Optional

import torch

from vistok.models.state_dict import load_strict, rename_prefix

_SEQUENTIAL = re.compile(r"^(encoder|decoder)\.(?:model|layers)\.(\d+)\.(.+)$")
_CODEBOOK = re.compile(r"^quantizer\.(?:vq\.layers\.(\d+)\._codebook|layers\.(\d+)\.codebook)\.(.+)$")
_RESIDUAL = [("block.1.", "conv1."), ("block.3.", "conv2."), ("shortcut.", "shortcut.")]
_WEIGHT_NORM = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1"}


def detect_layout(state: Mapping[str, torch.Tensor]) -> str:
    """``"encodec"``, ``"transformers"`` or ``"tokzoo"`` (anything else)."""
    if any(k.startswith(("encoder.model.", "quantizer.vq.")) for k in state):
        return "encodec"
    if any(k.startswith(("encoder.layers.", "quantizer.layers.")) for k in state):
        return "transformers"
    return "tokzoo"


def sequential_modules(config) -> Dict[str, Dict[int, str]]:
    """Index in the original encoder / decoder ``Sequential`` -> our module path (for layers with weights)."""
    stages, res = len(config.strides), config.residual_layers
    encoder = {0: "encoder.stem"}
    for s in range(stages):
        base = 1 + s * (res + 2)  # residual units, ELU, strided conv
        encoder.update({base + j: f"encoder.stages.{s}.res.{j}" for j in range(res)})
        encoder[base + res + 1] = f"encoder.stages.{s}.down"
    tail = 1 + stages * (res + 2)
    if config.lstm_layers:
        encoder[tail] = "encoder.lstm"
        tail += 1
    encoder[tail + 1] = "encoder.proj"  # after an ELU
    decoder = {0: "decoder.stem"}
    base = 1
    if config.lstm_layers:
        decoder[1] = "decoder.lstm"
        base = 2
    for s in range(stages):
        start = base + s * (res + 2)  # ELU, transposed conv, residual units
        decoder[start + 1] = f"decoder.stages.{s}.up"
        decoder.update({start + 2 + j: f"decoder.stages.{s}.res.{j}" for j in range(res)})
    decoder[base + stages * (res + 2) + 1] = "decoder.proj"  # after an ELU
    return {"encoder": encoder, "decoder": decoder}


def _conv_leaf(rest: str) -> Optional[str]:
    """A wrapped convolution's key -> ours (``conv.*`` / ``norm.*``), from either layout."""
    rest = re.sub(r"^(?:conv\.conv|convtr\.convtr)\.", "conv.", rest)
    rest = re.sub(r"^(?:conv|convtr)\.norm\.", "norm.", rest)
    head, _, leaf = rest.partition(".")
    if head not in ("conv", "norm") or not leaf:
        return None
    return f"{head}.{_WEIGHT_NORM.get(leaf, leaf)}"


def _module_key(path: str, rest: str) -> Optional[str]:
    if path.endswith(".lstm"):
        return f"{path}.{rest[len('lstm.'):]}" if rest.startswith("lstm.") else None
    if ".res." in path:
        if not rest.startswith(tuple(old for old, _ in _RESIDUAL)):
            return None
        unit, _, leaf = rename_prefix(rest, _RESIDUAL).partition(".")
        leaf = _conv_leaf(leaf)
        return None if leaf is None else f"{path}.{unit}.{leaf}"
    leaf = _conv_leaf(rest)
    return None if leaf is None else f"{path}.{leaf}"


def convert_encodec_state_dict(official: Mapping[str, torch.Tensor], config) -> Dict[str, torch.Tensor]:
    """An official (``encodec`` package or transformers) EnCodec state dict -> the tokzoo state dict
    for ``config`` (an :class:`~audiotok.models.encodec.EnCodecConfig`). A tokzoo-layout dict
    passes through."""
    if detect_layout(official) == "tokzoo":
        return dict(official)
    modules = sequential_modules(config)
    out: Dict[str, torch.Tensor] = {}
    for key, value in official.items():
        new: Optional[str] = None
        seq = _SEQUENTIAL.match(key)
        book = _CODEBOOK.match(key)
        if seq:
            path = modules[seq.group(1)].get(int(seq.group(2)))
            new = None if path is None else _module_key(path, seq.group(3))
        elif book:
            level = int(book.group(1) if book.group(1) is not None else book.group(2))
            name = "initted" if book.group(3) == "inited" else book.group(3)
            if level < config.num_quantizers:
                new = f"quantizer.quantizers.{level}.{name}"
        if new is not None and new.endswith(".initted"):
            value = value.bool().reshape(1)
        out[new if new is not None else key] = value
    return out


def to_official_state_dict(state: Mapping[str, torch.Tensor], config) -> Dict[str, torch.Tensor]:
    """A tokzoo EnCodec state dict -> the ``encodec`` package's layout (what its
    ``EncodecModel.load_state_dict`` reads): the inverse of :func:`convert_encodec_state_dict`."""
    paths = {path: f"{part}.model.{index}" for part, table in sequential_modules(config).items()
             for index, path in table.items()}
    inverse_norm = {v: k for k, v in _WEIGHT_NORM.items()}
    out: Dict[str, torch.Tensor] = {}
    for key, value in state.items():
        book = re.match(r"^quantizer\.quantizers\.(\d+)\.(.+)$", key)
        if book:
            name = "inited" if book.group(2) == "initted" else book.group(2)
            out[f"quantizer.vq.layers.{book.group(1)}._codebook.{name}"] = (
                value.float() if name == "inited" else value)
            continue
        module = next((p for p in sorted(paths, key=len, reverse=True) if key.startswith(p + ".")), None)
        if module is None:
            out[key] = value
            continue
        rest = key[len(module) + 1:]
        if module.endswith(".lstm"):
            out[f"{paths[module]}.lstm.{rest}"] = value
            continue
        prefix = paths[module]
        if ".res." in module:
            unit, _, rest = rest.partition(".")
            prefix += {"conv1": ".block.1", "conv2": ".block.3", "shortcut": ".shortcut"}[unit]
        head, _, leaf = rest.partition(".")
        wrapper = "convtr" if module.endswith(".up") else "conv"
        leaf = inverse_norm.get(leaf, leaf)
        out[f"{prefix}.{wrapper}.{wrapper if head == 'conv' else 'norm'}.{leaf}"] = value
    return out


def load_encodec_state_dict(model, official: Mapping[str, torch.Tensor], source: str = "checkpoint"):
    """Convert and load strictly; mismatches raise an error naming the keys."""
    load_strict(model, convert_encodec_state_dict(official, model.config), source)
    return model
