"""X-Codec 2 checkpoints -> :class:`audiotok.models.xcodec2.XCodec2`, and back.

Layouts read (detected from the key names):

- **official** (the ``xcodec2`` package's ``XCodec2Model``, the ``model.safetensors`` of
  HKUSTAudio/xcodec2): ``semantic_model.*`` (a whole ``Wav2Vec2BertModel``: all 24 layers, of which
  the first 16 are used), ``SemanticEncoder_module.{initial_conv,residual_blocks.1,residual_blocks.3,
  final_conv}``, ``CodecEnc.conv_blocks.<0..5>`` (stem, encoder blocks ``block.<0..2>`` residual
  units ``block.<0..3>`` then ``block.3`` activation / ``block.4`` strided conv),
  ``CodecEnc.conv_final_block.{0,1}``, ``fc_prior``, ``generator.quantizer.project_{in,out}``,
  ``fc_post_a``, ``generator.backbone.{embed,prior_net,transformers.<i>.{att_norm,att.c_attn,
  att.c_proj,ffn_norm,mlp.fc1,mlp.fc2},post_net,final_layer_norm}``, ``generator.head.out``.
  Convolutions under torch weight-norm parametrizations (``parametrizations.weight.original0/1``;
  legacy ``weight_g`` / ``weight_v`` accepted); SnakeBeta's magnitude is called ``bias``; the
  anti-aliasing filters and the iSTFT window are stored as buffers (dropped: they are fixed).
- **transformers** (``Xcodec2Model``, checked against transformers 5.25's modules):
  ``semantic_encoder.*`` (16 layers), ``semantic_adapter.conv<1..4>``, ``acoustic_encoder.{conv1,
  block.<i>.{res_unit<1..3>.{snake1,conv1,snake2,conv2},snake1,conv1},snake1,conv2}``, ``fc_encoder``,
  ``quantizer.project_{in,out}``, ``acoustic_decoder.{fc,embed,prior_net,layers.<i>.{input_layernorm,
  self_attn.{q,k,v,o}_proj,post_attention_layernorm,mlp.fc1,mlp.fc2},post_net,norm,head.linear}``.
  Weight norm is removed there (plain ``weight``), which becomes ``g = |weight|`` per output channel
  and ``v = weight``; its q/k rows are permuted for half-split RoPE and are permuted back to the
  interleaved pairs ours (and the official torchtune RoPE) rotate.

Unused parts of the official semantic model (layers from ``semantic_layers`` on, the SpecAugment
vector ``masked_spec_embed``, an adapter) are dropped; unknown keys pass through unchanged so strict
loading names them.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Tuple

import torch

from audiotok.models.xcodec2.config import XCodec2Config
from vistok.models.state_dict import load_strict

_G, _V = "parametrizations.weight.original0", "parametrizations.weight.original1"
_SEMANTIC_LAYER = re.compile(r"^semantic\.encoder\.layers\.(\d+)\.")
_DROP = re.compile(r"(\.upsample\.filter|\.downsample\.lowpass\.filter|^generator\.head\.istft\.window|"
                   r"\.masked_spec_embed|^semantic_model\.adapter\.|^semantic_encoder\.adapter\.|"
                   r"^semantic_model\.intermediate_ffn\.|^semantic_encoder\.intermediate_ffn\.)")


def detect_layout(state: Mapping[str, Any]) -> str:
    """``"official"``, ``"transformers"`` or ``"tokzoo"`` (anything else)."""
    if any(k.startswith(("CodecEnc.", "generator.", "SemanticEncoder_module.")) for k in state):
        return "official"
    if any(k.startswith(("acoustic_encoder.", "acoustic_decoder.", "semantic_encoder.")) for k in state):
        return "transformers"
    return "tokzoo"


def module_table(config: XCodec2Config, layout: str) -> List[Tuple[str, str, str]]:
    """``(their module, our module, kind)`` for every module with weights outside the semantic model;
    kind: ``plain`` (same leaves), ``wn`` (weight-normed conv), ``snake`` (SnakeBeta), ``attn`` (qkv)."""
    if layout not in ("official", "transformers"):
        raise ValueError(f"layout must be 'official' or 'transformers', got {layout!r}")
    off = layout == "official"
    rows: List[Tuple[str, str, str]] = []

    def add(official: str, hf: str, ours: str, kind: str = "plain") -> None:
        rows.append((official if off else hf, ours, kind))

    adapter = {"conv_in": ("initial_conv", "conv1"), "conv1": ("residual_blocks.1", "conv2"),
               "conv2": ("residual_blocks.3", "conv3"), "conv_out": ("final_conv", "conv4")}
    for ours, (official, hf) in adapter.items():
        add(f"SemanticEncoder_module.{official}", f"semantic_adapter.{hf}", f"semantic_adapter.{ours}")
    add("CodecEnc.conv_blocks.0", "acoustic_encoder.conv1", "acoustic.stem", "wn")
    for i in range(len(config.strides)):
        theirs_o, theirs_h, ours = f"CodecEnc.conv_blocks.{i + 1}.block", f"acoustic_encoder.block.{i}", \
            f"acoustic.blocks.{i}"
        for j in range(3):
            uo, uh, uu = f"{theirs_o}.{j}.block", f"{theirs_h}.res_unit{j + 1}", f"{ours}.res.{j}"
            add(f"{uo}.0", f"{uh}.snake1", f"{uu}.act1", "snake")
            add(f"{uo}.1", f"{uh}.conv1", f"{uu}.conv1", "wn")
            add(f"{uo}.2", f"{uh}.snake2", f"{uu}.act2", "snake")
            add(f"{uo}.3", f"{uh}.conv2", f"{uu}.conv2", "wn")
        add(f"{theirs_o}.3", f"{theirs_h}.snake1", f"{ours}.act", "snake")
        add(f"{theirs_o}.4", f"{theirs_h}.conv1", f"{ours}.down", "wn")
    add("CodecEnc.conv_final_block.0", "acoustic_encoder.snake1", "acoustic.act", "snake")
    add("CodecEnc.conv_final_block.1", "acoustic_encoder.conv2", "acoustic.proj", "wn")
    add("fc_prior", "fc_encoder", "fuse")
    add("generator.quantizer.project_in", "quantizer.project_in", "project_in")
    add("generator.quantizer.project_out", "quantizer.project_out", "project_out")
    add("fc_post_a", "acoustic_decoder.fc", "post")
    bo, bh = "generator.backbone", "acoustic_decoder"
    add(f"{bo}.embed", f"{bh}.embed", "backbone.embed")
    for net in ("prior_net", "post_net"):
        for j in range(2):
            add(f"{bo}.{net}.{j}", f"{bh}.{net}.{j}", f"backbone.{net}.{j}")
    for i in range(config.decoder_layers):
        lo, lh, lu = f"{bo}.transformers.{i}", f"{bh}.layers.{i}", f"backbone.layers.{i}"
        add(f"{lo}.att_norm", f"{lh}.input_layernorm", f"{lu}.norm1")
        add(f"{lo}.att.c_attn", f"{lh}.self_attn", f"{lu}.attn.qkv", "attn")
        add(f"{lo}.att.c_proj", f"{lh}.self_attn.o_proj", f"{lu}.attn.out")
        add(f"{lo}.ffn_norm", f"{lh}.post_attention_layernorm", f"{lu}.norm2")
        add(f"{lo}.mlp.fc1", f"{lh}.mlp.fc1", f"{lu}.fc1")
        add(f"{lo}.mlp.fc2", f"{lh}.mlp.fc2", f"{lu}.fc2")
    add(f"{bo}.final_layer_norm", f"{bh}.norm", "backbone.norm")
    add("generator.head.out", f"{bh}.head.linear", "head.proj")
    return rows


def _halves_to_interleaved(weight: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Rows of a q/k projection ordered for half-split RoPE (per head: all first halves, then all
    second halves) -> interleaved pairs (per head: 0, d/2, 1, d/2 + 1, ...)."""
    out_dim, in_dim = weight.shape
    head = out_dim // num_heads
    return weight.view(num_heads, 2, head // 2, in_dim).transpose(1, 2).reshape(out_dim, in_dim)


def _interleaved_to_halves(weight: torch.Tensor, num_heads: int) -> torch.Tensor:
    out_dim, in_dim = weight.shape
    head = out_dim // num_heads
    return weight.view(num_heads, head // 2, 2, in_dim).transpose(1, 2).reshape(out_dim, in_dim)


def _norm_of(weight: torch.Tensor) -> torch.Tensor:
    """Weight-norm gain of a plain conv weight: its norm per output channel, ``(out, 1, 1)``."""
    return torch.linalg.vector_norm(weight.reshape(weight.shape[0], -1), dim=1).reshape(-1, 1, 1)


def convert_xcodec2_state_dict(official: Mapping[str, torch.Tensor], config) -> Dict[str, torch.Tensor]:
    """An official or transformers X-Codec 2 state dict -> ours (see the module docstring)."""
    cfg = config if isinstance(config, XCodec2Config) else XCodec2Config(**dict(config))
    layout = detect_layout(official)
    if layout == "tokzoo":
        return dict(official)
    state = {k: v for k, v in official.items() if not _DROP.search(k)}
    out: Dict[str, torch.Tensor] = {}
    semantic_prefix = "semantic_model." if layout == "official" else "semantic_encoder."
    for key in [k for k in state if k.startswith(semantic_prefix)]:
        ours = "semantic." + key[len(semantic_prefix):]
        layer = _SEMANTIC_LAYER.match(ours)
        value = state.pop(key)
        if layer is None or int(layer.group(1)) < cfg.semantic_layers:
            out[ours] = value
    for theirs, ours, kind in module_table(cfg, layout):
        if kind == "attn":
            if layout == "official":
                if f"{theirs}.weight" in state:
                    out[f"{ours}.weight"] = state.pop(f"{theirs}.weight")
            elif all(f"{theirs}.{p}_proj.weight" in state for p in "qkv"):
                q, k, v = (state.pop(f"{theirs}.{p}_proj.weight") for p in "qkv")
                heads = cfg.decoder_heads
                out[f"{ours}.weight"] = torch.cat([_halves_to_interleaved(q, heads), _halves_to_interleaved(k, heads), v])
            continue
        for leaf in [k[len(theirs) + 1:] for k in list(state) if k.startswith(theirs + ".")]:
            value = state.pop(f"{theirs}.{leaf}")
            if kind == "snake":
                leaf = {"act.alpha": "act.alpha", "act.bias": "act.beta", "act.beta": "act.beta"}.get(leaf, leaf)
            elif kind == "wn":
                if leaf == "weight_g":
                    leaf = _G
                elif leaf == "weight_v":
                    leaf = _V
                elif leaf == "weight":
                    out[f"{ours}.{_G}"] = _norm_of(value)
                    leaf = _V
            out[f"{ours}.{leaf}"] = value
    out.update(state)  # unknown keys: strict loading names them
    return out


def to_official_state_dict(state: Mapping[str, torch.Tensor], config, layout: str = "official") -> Dict[str, torch.Tensor]:
    """Ours -> the ``layout`` (``"official"`` or ``"transformers"``) key names, for tests and export. The
    semantic model gets only our layers; transformers' convolutions get the weight-normed product."""
    cfg = config if isinstance(config, XCodec2Config) else XCodec2Config(**dict(config))
    rest = dict(state)
    out: Dict[str, torch.Tensor] = {}
    prefix = "semantic_model." if layout == "official" else "semantic_encoder."
    for key in [k for k in rest if k.startswith("semantic.")]:
        out[prefix + key[len("semantic."):]] = rest.pop(key)
    for theirs, ours, kind in module_table(cfg, layout):
        if kind == "attn":
            weight = rest.pop(f"{ours}.weight")
            if layout == "official":
                out[f"{theirs}.weight"] = weight
            else:
                q, k, v = weight.chunk(3)
                out[f"{theirs}.q_proj.weight"] = _interleaved_to_halves(q, cfg.decoder_heads)
                out[f"{theirs}.k_proj.weight"] = _interleaved_to_halves(k, cfg.decoder_heads)
                out[f"{theirs}.v_proj.weight"] = v
            continue
        for leaf in [k[len(ours) + 1:] for k in list(rest) if k.startswith(ours + ".")]:
            value = rest.pop(f"{ours}.{leaf}")
            if kind == "snake" and layout == "official" and leaf == "act.beta":
                leaf = "act.bias"
            elif kind == "wn" and layout == "transformers":
                if leaf == _G:
                    continue
                if leaf == _V:
                    g = state[f"{ours}.{_G}"]
                    value, leaf = value * (g / _norm_of(value)), "weight"
            out[f"{theirs}.{leaf}"] = value
    out.update(rest)
    return out


def load_xcodec2_state_dict(model, official: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Convert ``official`` for ``model`` and load it strictly (errors name the keys)."""
    load_strict(model, convert_xcodec2_state_dict(official, model.config), source)
