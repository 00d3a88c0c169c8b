"""Official Mimi checkpoints -> :class:`audiotok.models.mimi.Mimi`, and back; the config a
transformers ``config.json`` describes.

Layouts read (detected from the key names):

- **moshi** (``kyutai-labs/moshi``'s ``MimiModel``, the ``tokenizer-e351c8d8-checkpoint125.safetensors``
  of ``kyutai/moshiko-pytorch-bf16`` that ``moshi.models.loaders.get_mimi`` loads): the SEANet stacks
  as ``encoder.model.<i>`` / ``decoder.model.<i>`` (``nn.Sequential`` indices: stem, then per stage
  the residual units ``block.{1,3}`` with the ELUs between; ``conv.conv`` / ``convtr.convtr``
  leaves), ``{encoder,decoder}_transformer.transformer.layers.<l>.{self_attn.in_projs.0 (or
  in_proj_weight), self_attn.out_projs.0 (or out_proj), norm1, norm2, linear1, linear2,
  layer_scale_1, layer_scale_2}``, ``downsample.conv.conv.conv``, ``upsample.convtr.convtr.convtr``,
  ``quantizer.{rvq_first,rvq_rest}.{input_proj,output_proj}`` and
  ``.vq.layers.<j>._codebook.{embedding_sum,cluster_usage,_initialized}`` (or the older
  ``embed_avg`` / ``embed_sum`` / ``cluster_size`` / ``inited`` that moshi's loader renames).
- **transformers** (``MimiModel``; the flat layout of the hub's ``kyutai/mimi`` ``model.safetensors``,
  which transformers 5.25's ``save_pretrained`` writes and its loader renames): ``encoder.layers.<i>``
  / ``decoder.layers.<i>`` (the same indices, ``.conv`` leaves), ``{encoder,decoder}_transformer.layers.<l>.
  {self_attn.{q,k,v,o}_proj, input_layernorm, post_attention_layernorm, mlp.fc1, mlp.fc2,
  self_attn_layer_scale, mlp_layer_scale}``, ``downsample.conv``, ``upsample.conv``,
  ``quantizer.{semantic,acoustic}_residual_vector_quantizer.{input_proj,output_proj,layers.<j>.codebook.
  {embed_sum,cluster_usage,initialized}}``. Its attention applies RoPE to the two halves of each
  head (``rotate_half``) where moshi rotates adjacent pairs, so its ``q_proj`` / ``k_proj`` rows are
  moshi's permuted: they are permuted back here.

Codebooks become ``embed = embedding_sum / cluster_usage.clamp(min=1e-5)`` (the vectors the
official search uses), with ``embed_avg`` / ``cluster_size`` keeping the sums. Unknown keys pass
through unchanged so strict loading names them.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, Mapping, Union

import torch

from audiotok.models.mimi.config import MimiConfig
from audiotok.models.mimi.quantizer import EPS
from vistok.errors import InputError
from vistok.models.state_dict import load_strict

_CODEBOOK_LEAVES = {"embedding_sum": "sum", "embed_avg": "sum", "embed_sum": "sum", "cluster_usage": "usage",
                    "cluster_size": "usage", "_initialized": "init", "inited": "init", "initialized": "init"}
_HF_LAYER = {"input_layernorm": "norm1", "post_attention_layernorm": "norm2", "mlp.fc1": "linear1",
             "mlp.fc2": "linear2", "self_attn_layer_scale": "layer_scale_1", "mlp_layer_scale": "layer_scale_2",
             "self_attn.o_proj": "self_attn.out_proj"}
_MOSHI_LAYER = {"self_attn.in_projs.0": "self_attn.in_proj", "self_attn.out_projs.0": "self_attn.out_proj"}


def detect_layout(state: Mapping[str, Any]) -> str:
    """``"moshi"``, ``"transformers"`` or ``"tokzoo"`` (anything else)."""
    if any(k.startswith(("encoder.model.", "decoder.model.", "quantizer.rvq_first.")) for k in state):
        return "moshi"
    if any(k.startswith(("encoder.layers.", "decoder.layers.", "quantizer.semantic_residual_vector_quantizer."))
           for k in state):
        return "transformers"
    return "tokzoo"


def conv_table(config: MimiConfig, layout: str) -> Dict[str, str]:
    """Convolution module path in ``layout`` (``"moshi"`` or ``"transformers"``) -> ours, for every
    convolution with weights (their leaf module: ``conv.conv`` / ``convtr.convtr`` in moshi's,
    ``conv`` in transformers'; ours ``.conv``)."""
    if layout not in ("moshi", "transformers"):
        raise ValueError(f"layout must be 'moshi' or 'transformers', got {layout!r}")
    moshi = layout == "moshi"
    stack = "model" if moshi else "layers"
    conv, convtr = ("conv.conv", "convtr.convtr") if moshi else ("conv", "conv")
    table: Dict[str, str] = {}
    n, r = len(config.strides), config.residual_layers

    def unit(theirs: str, ours: str) -> None:
        table[f"{theirs}.block.1.{conv}"] = f"{ours}.conv1.conv"
        table[f"{theirs}.block.3.{conv}"] = f"{ours}.conv2.conv"

    table[f"encoder.{stack}.0.{conv}"] = "encoder.stem.conv"
    table[f"decoder.{stack}.0.{conv}"] = "decoder.stem.conv"
    for i in range(n):
        base = 1 + i * (r + 2)
        for j in range(r):
            unit(f"encoder.{stack}.{base + j}", f"encoder.stages.{i}.res.{j}")
            unit(f"decoder.{stack}.{base + 2 + j}", f"decoder.stages.{i}.res.{j}")
        table[f"encoder.{stack}.{base + r + 1}.{conv}"] = f"encoder.stages.{i}.down.conv"
        table[f"decoder.{stack}.{base + 1}.{convtr}"] = f"decoder.stages.{i}.up.conv"
    last = 2 + n * (r + 2)
    table[f"encoder.{stack}.{last}.{conv}"] = "encoder.proj.conv"
    table[f"decoder.{stack}.{last}.{conv}"] = "decoder.proj.conv"
    table["downsample.conv.conv.conv" if moshi else "downsample.conv"] = "downsample.conv"
    table["upsample.convtr.convtr.convtr" if moshi else "upsample.conv"] = "upsample.conv"
    return table


def rope_rows_to_interleaved(weight: torch.Tensor, num_heads: int) -> torch.Tensor:
    """transformers' ``q_proj`` / ``k_proj`` rows (per head: the first halves, then the second
    halves of the rotated pairs) -> moshi's order (adjacent pairs)."""
    out_dim, in_dim = weight.shape
    return weight.view(num_heads, 2, out_dim // num_heads // 2, in_dim).transpose(1, 2).reshape(out_dim, in_dim)


def rope_rows_to_halves(weight: torch.Tensor, num_heads: int) -> torch.Tensor:
    """The inverse of :func:`rope_rows_to_interleaved`."""
    out_dim, in_dim = weight.shape
    return weight.view(num_heads, out_dim // num_heads // 2, 2, in_dim).transpose(1, 2).reshape(out_dim, in_dim)


_QUANT = {"moshi": {"rvq_first": "semantic", "rvq_rest": "acoustic"},
          "transformers": {"semantic_residual_vector_quantizer": "semantic",
                           "acoustic_residual_vector_quantizer": "acoustic"}}
_CODEBOOK = re.compile(r"^quantizer\.(\w+)\.(?:vq\.layers\.(\d+)\._codebook|layers\.(\d+)\.codebook)\.(\w+)$")
_PROJ = re.compile(r"^quantizer\.(\w+)\.(input_proj|output_proj)\.weight$")
_LAYER = re.compile(r"^(encoder|decoder)_transformer\.(?:transformer\.)?layers\.(\d+)\.(.+)\.(weight|bias|scale)$")
_IN_PROJ_WEIGHT = re.compile(r"^(encoder|decoder)_transformer\.transformer\.layers\.(\d+)\.self_attn\.in_proj_weight$")


def convert_mimi_state_dict(official: Mapping[str, torch.Tensor], config) -> Dict[str, torch.Tensor]:
    """An official (moshi or transformers) Mimi state dict -> the tokzoo state dict for ``config``
    (a :class:`~audiotok.models.mimi.MimiConfig` or its dict). A tokzoo-layout dict passes through."""
    config = config if isinstance(config, MimiConfig) else MimiConfig(**config)
    layout = detect_layout(official)
    if layout == "tokzoo":
        return dict(official)
    convs = conv_table(config, layout)
    out: Dict[str, torch.Tensor] = {}
    codebooks: Dict[str, Dict[str, torch.Tensor]] = {}
    qkv: Dict[str, Dict[str, torch.Tensor]] = {}
    for key, value in official.items():
        module, _, leaf = key.rpartition(".")
        if module in convs and leaf in ("weight", "bias"):
            out[f"{convs[module]}.{leaf}"] = value
            continue
        m = _CODEBOOK.match(key)
        if m and m.group(1) in _QUANT[layout] and m.group(4) in _CODEBOOK_LEAVES:
            level = m.group(2) if m.group(2) is not None else m.group(3)
            prefix = f"quantizer.{_QUANT[layout][m.group(1)]}.quantizers.{level}"
            codebooks.setdefault(prefix, {})[_CODEBOOK_LEAVES[m.group(4)]] = value
            continue
        m = _PROJ.match(key)
        if m and m.group(1) in _QUANT[layout]:
            side = _QUANT[layout][m.group(1)]
            out[f"quantizer.{side}_{'in' if m.group(2) == 'input_proj' else 'out'}.weight"] = value
            continue
        m = _IN_PROJ_WEIGHT.match(key) if layout == "moshi" else None
        if m:
            out[f"{m.group(1)}_transformer.layers.{m.group(2)}.self_attn.in_proj.weight"] = value
            continue
        m = _LAYER.match(key)
        if m:
            prefix, name, leaf = f"{m.group(1)}_transformer.layers.{m.group(2)}", m.group(3), m.group(4)
            if layout == "transformers" and name in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
                qkv.setdefault(prefix, {})[name[-6]] = value
                continue
            table = _MOSHI_LAYER if layout == "moshi" else _HF_LAYER
            if layout == "moshi" and name == "self_attn.out_proj":
                name = "self_attn.out_proj"
            out[f"{prefix}.{table.get(name, name)}.{leaf}"] = value
            continue
        out[key] = value
    for prefix, parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            missing = sorted({"q", "k", "v"} - set(parts))
            raise InputError(f"checkpoint: {prefix}.self_attn lacks {', '.join(p + '_proj' for p in missing)}")
        heads = config.num_heads
        out[f"{prefix}.self_attn.in_proj.weight"] = torch.cat(
            [rope_rows_to_interleaved(parts["q"], heads), rope_rows_to_interleaved(parts["k"], heads), parts["v"]], 0)
    for prefix, parts in codebooks.items():
        if "sum" not in parts or "usage" not in parts:
            raise InputError(f"checkpoint: the codebook of {prefix} needs both its embedding sum and its cluster usage")
        total, usage = parts["sum"].float(), parts["usage"].float()
        out[f"{prefix}.embed"] = total / usage.clamp(min=EPS)[:, None]
        out[f"{prefix}.embed_avg"] = total
        out[f"{prefix}.cluster_size"] = usage
        out[f"{prefix}.initted"] = torch.ones(1, dtype=torch.bool)
    return out


def to_official_state_dict(state: Mapping[str, torch.Tensor], config, layout: str = "moshi") -> Dict[str, torch.Tensor]:
    """A tokzoo Mimi state dict -> ``layout`` (``"moshi"`` or ``"transformers"``): the inverse of
    :func:`convert_mimi_state_dict` (codebooks written as ``embedding_sum = embed * usage`` with the
    usage kept, so the round trip reproduces the code vectors up to one rounding)."""
    config = config if isinstance(config, MimiConfig) else MimiConfig(**config)
    moshi = layout == "moshi"
    inverse = {ours: theirs for theirs, ours in conv_table(config, layout).items()}
    sides = {v: k for k, v in _QUANT[layout].items()}
    layer_names = {v: k for k, v in (_MOSHI_LAYER if moshi else _HF_LAYER).items()}
    out: Dict[str, torch.Tensor] = {}
    for key, value in state.items():
        module, _, leaf = key.rpartition(".")
        if module in inverse:
            out[f"{inverse[module]}.{leaf}"] = value
            continue
        m = re.match(r"^quantizer\.(semantic|acoustic)\.quantizers\.(\d+)\.(embed|embed_avg|cluster_size|initted)$", key)
        if m:
            side, level, what = sides[m.group(1)], m.group(2), m.group(3)
            base = f"quantizer.{side}.vq.layers.{level}._codebook" if moshi else f"quantizer.{side}.layers.{level}.codebook"
            if what == "embed":
                usage = state[f"quantizer.{m.group(1)}.quantizers.{level}.cluster_size"]
                out[f"{base}.{'embedding_sum' if moshi else 'embed_sum'}"] = value * usage.clamp(min=EPS)[:, None]
            elif what == "cluster_size":
                out[f"{base}.cluster_usage"] = value
            elif what == "initted":
                out[f"{base}.{'_initialized' if moshi else 'initialized'}"] = value.float().reshape(1)
            continue
        m = re.match(r"^quantizer\.(semantic|acoustic)_(in|out)\.weight$", key)
        if m:
            out[f"quantizer.{sides[m.group(1)]}.{'input_proj' if m.group(2) == 'in' else 'output_proj'}.weight"] = value
            continue
        m = re.match(r"^(encoder|decoder)_transformer\.layers\.(\d+)\.(.+)\.(weight|bias|scale)$", key)
        if m:
            prefix = f"{m.group(1)}_transformer.{'transformer.' if moshi else ''}layers.{m.group(2)}"
            name, leaf = m.group(3), m.group(4)
            if not moshi and name == "self_attn.in_proj":
                q, k, v = value.chunk(3, 0)
                out[f"{prefix}.self_attn.q_proj.weight"] = rope_rows_to_halves(q, config.num_heads)
                out[f"{prefix}.self_attn.k_proj.weight"] = rope_rows_to_halves(k, config.num_heads)
                out[f"{prefix}.self_attn.v_proj.weight"] = v
                continue
            out[f"{prefix}.{layer_names.get(name, name)}.{leaf}"] = value
            continue
        out[key] = value
    return out


def load_mimi_state_dict(model, official: Mapping[str, torch.Tensor], source: str = "checkpoint"):
    """Convert and load strictly; mismatches raise an error naming the keys."""
    load_strict(model, convert_mimi_state_dict(official, model.config), source)
    return model


# ----- the config a transformers config.json describes -----

#: transformers ``MimiConfig`` fields whose other values tokzoo does not implement.
_TRANSFORMERS_FIXED = {"audio_channels": 1, "use_causal_conv": True, "pad_mode": "constant", "trim_right_ratio": 1.0,
                       "use_conv_shortcut": False, "hidden_act": "gelu", "attention_bias": False, "norm_eps": 1e-5}
_TRANSFORMERS_FIELDS = {"sampling_rate": "sample_rate", "hidden_size": "dim", "num_filters": "n_filters",
                        "num_residual_layers": "residual_layers", "kernel_size": "kernel_size",
                        "last_kernel_size": "last_kernel_size", "residual_kernel_size": "residual_kernel_size",
                        "dilation_growth_rate": "dilation_base", "compress": "compress",
                        "num_hidden_layers": "num_layers", "num_attention_heads": "num_heads",
                        "intermediate_size": "dim_feedforward", "sliding_window": "context",
                        "layer_scale_initial_scale": "layer_scale", "num_quantizers": "num_quantizers",
                        "num_semantic_quantizers": "num_semantic", "codebook_size": "codebook_size",
                        "vector_quantization_hidden_dimension": "codebook_dim"}


def config_from_transformers(data: Mapping[str, Any], where: str = "config.json") -> Dict[str, Any]:
    """Map the ``config.json`` of a transformers ``MimiModel`` onto :class:`MimiConfig` fields (a
    dict). ``upsampling_ratios`` are in decoder order (reversed into encoder ``strides``); the
    downsampling factor is the encoder frame rate over ``frame_rate``. Options tokzoo lacks are
    refused, naming the field."""
    if data.get("model_type") not in (None, "mimi"):
        raise InputError(f"{where}: not a transformers Mimi config (model_type {data.get('model_type')!r})")
    for name, expected in _TRANSFORMERS_FIXED.items():
        if name in data and data[name] != expected:
            raise InputError(f"{where}: {name}={data[name]!r} is not supported by tokzoo's Mimi (only {expected!r})")
    out: Dict[str, Any] = {theirs_ours: data[theirs] for theirs, theirs_ours in _TRANSFORMERS_FIELDS.items()
                           if data.get(theirs) is not None}
    defaults = MimiConfig()
    dim, heads = int(out.get("dim", defaults.dim)), int(out.get("num_heads", defaults.num_heads))
    if data.get("head_dim") is not None and int(data["head_dim"]) * heads != dim:
        raise InputError(f"{where}: head_dim={data['head_dim']} x num_attention_heads={heads} must equal "
                         f"hidden_size={dim} (tokzoo's Mimi has no attention projection to another width)")
    if data.get("num_key_value_heads") is not None and int(data["num_key_value_heads"]) != heads:
        raise InputError(f"{where}: num_key_value_heads={data['num_key_value_heads']} is not supported "
                         f"(grouped-query attention; only num_key_value_heads == num_attention_heads = {heads})")
    if data.get("upsample_groups") is not None and int(data["upsample_groups"]) != dim:
        raise InputError(f"{where}: upsample_groups={data['upsample_groups']} is not supported (only depthwise, "
                         f"= hidden_size {dim})")
    codebook_dim = data.get("codebook_dim")
    if codebook_dim is not None and int(codebook_dim) != int(out.get("codebook_dim", codebook_dim)):
        raise InputError(f"{where}: codebook_dim={codebook_dim} must equal vector_quantization_hidden_dimension="
                         f"{out['codebook_dim']}")
    if codebook_dim is not None and "codebook_dim" not in out:
        out["codebook_dim"] = int(codebook_dim)
    rope = data.get("rope_parameters") or {}
    if rope.get("rope_type", "default") != "default":
        raise InputError(f"{where}: rope_parameters.rope_type={rope['rope_type']!r} is not supported (only 'default')")
    theta = rope.get("rope_theta", data.get("rope_theta"))
    if theta is not None:
        out["max_period"] = float(theta)
    if data.get("upsampling_ratios") is not None:
        out["strides"] = [int(r) for r in reversed(data["upsampling_ratios"])]
    frame_rate = data.get("frame_rate", data.get("_frame_rate"))
    if frame_rate is not None:
        rate = int(out.get("sample_rate", defaults.sample_rate))
        hop = 1
        for s in out.get("strides", defaults.strides):
            hop *= int(s)
        factor = rate / hop / float(frame_rate)
        if abs(factor - round(factor)) > 1e-9 or round(factor) < 1:
            raise InputError(f"{where}: frame_rate={frame_rate} is not the encoder rate {rate / hop} over an integer")
        out["downsample"] = int(round(factor))
    for key in ("sample_rate", "dim", "n_filters", "residual_layers", "kernel_size", "last_kernel_size",
                "residual_kernel_size", "dilation_base", "compress", "num_layers", "num_heads", "dim_feedforward",
                "context", "num_quantizers", "num_semantic", "codebook_size", "codebook_dim"):
        if key in out:
            out[key] = int(out[key])
    if "layer_scale" in out:
        out["layer_scale"] = float(out["layer_scale"])
    MimiConfig(**out)  # refuse inconsistent values here, naming them
    return out


def resolve_card_config(card_config: Mapping[str, Any], path: Union[str, Path], family: str) -> Dict[str, Any]:
    """The config to build a zoo card's model with: the card's, checked against a transformers
    ``config.json`` next to the checkpoint when there is one (a field on which they disagree is an
    error naming both values). Without one, the card's config."""
    config_path = Path(path).with_name("config.json")
    if not config_path.is_file():
        return dict(card_config)
    try:
        data = json.loads(config_path.read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"{config_path}: not a readable JSON config ({err})") from err
    described = config_from_transformers(data, str(config_path))
    full = MimiConfig(**dict(card_config)).to_dict()
    conflicts = [f"{k}: card {full[k]!r}, config.json {v!r}" for k, v in described.items() if full[k] != v]
    if conflicts:
        raise InputError(f"{config_path}: the zoo card's config disagrees with it ({'; '.join(conflicts)}); "
                         "correct the card's config")
    return dict(card_config)
