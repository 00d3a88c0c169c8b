"""Official FlexTok (apple/ml-flextok) checkpoints -> :class:`vistok.models.flextok.FlexTok` and
:class:`~vistok.models.flextok.FlexTokVAE`.

Formats read:
- the Hub-mixin layout: a directory with ``config.json`` (a hydra ``_target_`` tree with sections
  vae / encoder / decoder / regularizer / flow_matching_noise_module / pipeline) and
  ``model.safetensors``;
- the single file: ``model.safetensors`` whose ``__metadata__`` holds the same tree, one section
  per entry, as Python literals;
- the VAEs (``flextok_vae_c*``): a diffusers directory, ``config.json`` + ``diffusion_pytorch_model.safetensors``.

A downloaded config is data: it is parsed with ``json`` / ``ast.literal_eval`` and mapped by
:mod:`vistok.models.flextok.convert_config`; nothing it names is imported.

Weights are mapped by what each official module holds, not by its name in the config: ``wq/wk/wv``
are concatenated into ``qkv``, the gated MLP's ``fc1/fc3`` into ``fc_in``, ``fc2`` -> ``fc_out``,
``adaLN_modulation.1`` -> ``adaln``; ``vae.vae.*`` -> ``vae.autoencoder.*``. Activation-checkpoint
wrapper prefixes are dropped. Unrecognised keys are kept, so strict loading names them.
"""
from __future__ import annotations

import ast
import json
import re
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch

from vistok.models.state_dict import read_state_dict
from vistok.models.state_dict import load_strict
from vistok.models.flextok.convert_config import (KNOWN_TARGETS, SECTIONS, OfficialConfigError, check_targets,
                                       config_from_official, vae_config_from_diffusers)
from vistok.models.flextok import FlexTok, FlexTokConfig, FlexTokVAE, FlexTokVAEConfig

__all__ = ["KNOWN_TARGETS", "OfficialConfigError", "check_targets", "config_from_checkpoint", "config_from_official",
           "convert_flextok_state_dict", "convert_flextok_vae_state_dict", "load_flextok_state_dict", "load_official",
           "load_official_vae", "parse_metadata", "read_official", "resolve_card_config", "vae_config_from_diffusers"]

# ---------------------------------------------------------------------------------------------
# reading files
# ---------------------------------------------------------------------------------------------


def parse_metadata(metadata: Mapping[str, str]) -> Dict[str, Any]:
    """Safetensors ``__metadata__`` values are ``str(python object)``: parse them as literals only."""
    parsed = {}
    for key, value in metadata.items():
        try:
            parsed[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            parsed[key] = value
    return parsed


def _safetensors_metadata(path: Path) -> Dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def _weights_file(path: Path) -> Path:
    """The weights inside a Hub-mixin or diffusers directory, or ``path`` itself."""
    if not path.is_dir():
        return path
    weights = next((path / n for n in ("model.safetensors", "diffusion_pytorch_model.safetensors")
                    if (path / n).is_file()), None)
    if weights is None:
        raise FileNotFoundError(f"{path}: no model.safetensors or diffusion_pytorch_model.safetensors")
    return weights


def read_official_config(path: Union[str, Path]) -> Tuple[Dict[str, Any], str]:
    """``(config, where)`` of an official checkpoint without reading its tensors: the safetensors
    metadata, else ``config.json`` beside the weights ({} when neither holds one)."""
    path = _weights_file(Path(path))
    config: Dict[str, Any] = {}
    if path.suffix == ".safetensors":
        config = {k: v for k, v in parse_metadata(_safetensors_metadata(path)).items() if k != "format"}
    where = f"{path} (metadata)"
    if not any(k in config for k in SECTIONS) and (path.parent / "config.json").is_file():
        where = str(path.parent / "config.json")
        try:
            config = json.loads((path.parent / "config.json").read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise OfficialConfigError(f"{where}: cannot read the config ({err})") from None
    return config, where


def read_official(path: Union[str, Path]) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any], str]:
    """``(state_dict, config, where)`` from a Hub-mixin directory, a directory's ``model.safetensors``,
    or a single ``.safetensors`` file (config from its metadata, else from ``config.json`` beside it)."""
    config, where = read_official_config(path)
    return read_state_dict(_weights_file(Path(path))), config, where


# ---------------------------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------------------------

_VAE_LEGACY = [("query.", "to_q."), ("key.", "to_k."), ("value.", "to_v."), ("proj_attn.", "to_out.0.")]
_MODULE_RE = re.compile(r"^(encoder|decoder)\.module_dict\.([^.]+)\.(.+)$")
_BLOCK_RE = re.compile(r"^blocks\.(\d+)\.(.+)$")


def _vae_key(key: str, value: torch.Tensor) -> Tuple[str, torch.Tensor]:
    """diffusers key -> current diffusers key (attention names before diffusers 0.14 differ)."""
    if ".attentions." in key:
        head, _, leaf = key.rpartition("attentions.0.")
        for old, new in _VAE_LEGACY:
            if leaf.startswith(old):
                leaf = new + leaf[len(old):]
                if value.dim() == 4:  # very old checkpoints stored these projections as 1x1 convolutions
                    value = value[:, :, 0, 0]
        key = head + "attentions.0." + leaf
    return key, value


def _blocks(prefix: str, leaves: Dict[str, torch.Tensor], gated: bool) -> Dict[str, torch.Tensor]:
    per_block: Dict[int, Dict[str, torch.Tensor]] = defaultdict(dict)
    for leaf, value in leaves.items():
        per_block[int(_BLOCK_RE.match(leaf).group(1))][_BLOCK_RE.match(leaf).group(2)] = value
    out = {}
    for i, parts in per_block.items():
        base = f"{prefix}.blocks.{i}."
        for suffix in ("weight", "bias"):
            qkv = [parts.pop(f"attn.{n}.{suffix}", None) for n in ("wq", "wk", "wv")]
            if all(p is not None for p in qkv):
                out[base + f"attn.qkv.{suffix}"] = torch.cat(qkv)
            else:
                out.update({f"official:{base}attn.{n}.{suffix}": p for n, p in zip(("wq", "wk", "wv"), qkv)
                            if p is not None})
            if gated:
                gate, val = parts.pop(f"mlp.fc1.{suffix}", None), parts.pop(f"mlp.fc3.{suffix}", None)
                if gate is not None and val is not None:
                    out[base + f"mlp.fc_in.{suffix}"] = torch.cat([gate, val])
                else:
                    out.update({f"official:{base}mlp.{n}.{suffix}": p for n, p in (("fc1", gate), ("fc3", val))
                                if p is not None})
        for leaf, value in parts.items():
            for old, new in (("mlp.fc1.", "mlp.fc_in."), ("mlp.fc2.", "mlp.fc_out."), ("adaLN_modulation.1.", "adaln."),
                             ("attn.proj.", "attn.proj.")):
                if leaf.startswith(old):
                    out[base + new + leaf[len(old):]] = value
                    break
            else:
                out[f"official:{base}{leaf}"] = value
    return out


def _group(part: str, name: str, leaves: Dict[str, torch.Tensor], cfg: FlexTokConfig) -> Dict[str, torch.Tensor]:
    """Official module ``part.module_dict.name`` -> tokzoo keys, recognised by what it holds."""
    keys = set(leaves)

    def rename(target: str, mapping: Optional[Dict[str, str]] = None) -> Dict[str, torch.Tensor]:
        return {f"{target}.{(mapping or {}).get(leaf, leaf)}": v for leaf, v in leaves.items()}

    if any(k.startswith("blocks.") for k in keys):
        return _blocks(part, leaves, cfg.gated_mlp)
    if keys <= {"patch_proj.weight", "patch_proj.bias"}:
        return rename(f"{part}.patch_embed", {"patch_proj.weight": "weight", "patch_proj.bias": "bias"})
    if keys == {"posembs"}:
        value = leaves["posembs"]
        registers = part == "decoder" and value.dim() == 4 and value.shape[0] == 1 and value.shape[1] == 1
        return {f"{part}.{'register_pos_embed' if registers else 'pos_embed'}.posembs": value}
    if keys == {"registers"}:
        return {f"{part}.registers": leaves["registers"]}
    if keys == {"dropout_mask_token"}:
        return {"decoder.mask_token": leaves["dropout_mask_token"]}
    if keys == {"nullcond"}:
        return {"decoder.null_cond": leaves["nullcond"]}
    if "out_proj.weight" in keys:
        return rename("decoder.repa_head")
    if keys <= {"mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"}:
        return rename("decoder.time_embed")
    if "adaLN_modulation.1.weight" in keys:
        return {("decoder.head_adaln." + k[len("adaLN_modulation.1."):] if k.startswith("adaLN_modulation.1.")
                 else "decoder.head." + k[len("proj."):] if k.startswith("proj.") else f"official:{part}.{name}.{k}"): v
                for k, v in leaves.items()}
    if keys <= {"proj.weight", "proj.bias"}:
        if part == "encoder":
            return rename("encoder.head", {"proj.weight": "weight", "proj.bias": "bias"})
        if leaves["proj.weight"].shape[1] == cfg.token_dim:
            return rename("decoder.latent_proj", {"proj.weight": "weight", "proj.bias": "bias"})
    return {f"official:{part}.module_dict.{name}.{k}": v for k, v in leaves.items()}


def convert_flextok_state_dict(official: Mapping[str, torch.Tensor], config: FlexTokConfig) -> Dict[str, torch.Tensor]:
    """Official FlexTok state dict -> tokzoo FlexTok state dict (keys it does not recognise are kept,
    prefixed ``official:``, so strict loading names them)."""
    out: Dict[str, torch.Tensor] = {}
    groups: Dict[Tuple[str, str], Dict[str, torch.Tensor]] = defaultdict(dict)
    for key, value in official.items():
        key = key.replace("_checkpoint_wrapped_module.", "")
        match = _MODULE_RE.match(key)
        if key.startswith("vae.vae."):
            new, value = _vae_key(key[len("vae.vae."):], value)
            out["vae.autoencoder." + new] = value
        elif match:
            groups[(match.group(1), match.group(2))][match.group(3)] = value
        else:
            out[f"official:{key}"] = value
    for (part, name), leaves in groups.items():
        out.update(_group(part, name, leaves, config))
    return out


def load_flextok_state_dict(model: FlexTok, official: Mapping[str, torch.Tensor], source: str = "checkpoint") -> FlexTok:
    """Convert and load strictly; mismatches raise an error naming the keys."""
    load_strict(model, convert_flextok_state_dict(official, model.config), source)
    return model


def convert_flextok_vae_state_dict(official: Mapping[str, torch.Tensor], config: FlexTokVAEConfig) -> Dict[str, torch.Tensor]:
    """A diffusers AutoencoderKL state dict -> tokzoo FlexTokVAE keys (``autoencoder.*``)."""
    out = {}
    for key, value in official.items():
        new, value = _vae_key(key, value)
        out["autoencoder." + new] = value
    return out


# ---------------------------------------------------------------------------------------------
# one call
# ---------------------------------------------------------------------------------------------


def load_official(path: Union[str, Path], device: str = "cpu",
                  vae_overrides: Optional[Mapping[str, Any]] = None) -> FlexTok:
    """An official FlexTok checkpoint (Hub-mixin directory or single safetensors file) -> FlexTok in
    eval mode, config mapped from the checkpoint's own hydra tree."""
    state, config, where = read_official(path)
    if not config:
        raise OfficialConfigError(f"{path}: no FlexTok config (neither safetensors metadata nor config.json)")
    model = FlexTok(config_from_official(config, where, vae_overrides))
    load_flextok_state_dict(model, state, str(path))
    return model.to(device).eval()


def load_official_vae(path: Union[str, Path], device: str = "cpu") -> FlexTokVAE:
    """A ``flextok_vae_c*`` diffusers directory (config.json + diffusion_pytorch_model.safetensors) -> FlexTokVAE."""
    state, config, where = read_official(path)
    if not config:
        raise OfficialConfigError(f"{path}: no diffusers config.json beside the weights")
    model = FlexTokVAE(vae_config_from_diffusers(config, where))
    load_strict(model, convert_flextok_vae_state_dict(state, model.config), str(path))
    return model.to(device).eval()


def config_from_checkpoint(path: Union[str, Path], family: str,
                           vae_overrides: Optional[Mapping[str, Any]] = None) -> Optional[Dict[str, Any]]:
    """The tokzoo config dict a checkpoint's own config describes (``family`` "flextok" or
    "flextok_vae"), or None when the checkpoint carries no config: what a zoo card's config must
    agree with, and the source of values, such as the VAE latent scaling factor, that only the
    checkpoint's config holds. ``vae_overrides``: VAE architecture fields a FlexTok tree does not
    state (the release builds its VAE from a fixed base)."""
    config, where = read_official_config(path)
    if not config:
        return None
    if family == "flextok_vae":
        return vae_config_from_diffusers(config, where).to_dict()
    return config_from_official(config, where, vae_overrides).to_dict()


# fields the release's configs do not state, so the card's values stand: FlexTok's sampling defaults;
# the diffusers VAE config's image size, posterior sampling and precision
_CARD_ONLY = {"flextok": ("decode_steps", "decode_guidance", "decode_apg"),
              "flextok_vae": ("image_size", "sample_posterior", "precision")}
_VAE_BASE = ("block_out_channels", "layers_per_block", "norm_num_groups")  # not in a FlexTok tree: the card's, if set


def _flatten(d: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    out = {}
    for key, value in d.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _weight_shapes(config: Mapping[str, Any], family: str) -> Dict[str, Tuple[int, ...]]:
    """Parameter names and shapes of the model ``config`` builds (on the meta device: no memory)."""
    cls, cfg_cls = (FlexTokVAE, FlexTokVAEConfig) if family == "flextok_vae" else (FlexTok, FlexTokConfig)
    with torch.device("meta"):
        model = cls(cfg_cls(**config))
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def resolve_card_config(card_config: Mapping[str, Any], path: Union[str, Path], family: str) -> Dict[str, Any]:
    """The config to build a zoo card's model with: the checkpoint's own config (it holds values,
    such as the VAE latent scaling factor, that only it knows), keeping the card's sampling
    defaults (and, for a VAE, its image size, posterior sampling and precision, which a diffusers
    config does not state); card fields left null are filled from it. A card field that disagrees with the
    checkpoint and changes a weight's shape is an :class:`OfficialConfigError`; other
    disagreements are reported in a warning and the checkpoint wins. A checkpoint without a
    config leaves the card's config unchanged."""
    vae_card = card_config.get("vae") if family == "flextok" else None
    overrides = {k: vae_card[k] for k in _VAE_BASE if isinstance(vae_card, Mapping) and vae_card.get(k) is not None}
    ckpt = config_from_checkpoint(path, family, overrides or None)
    if ckpt is None:
        return dict(card_config)
    card_flat, ckpt_flat = _flatten(card_config), _flatten(ckpt)
    card_only = _CARD_ONLY.get(family, ())
    conflicts = {k: f"{k}: card {v!r}, checkpoint {ckpt_flat[k]!r}" for k, v in card_flat.items()
                 if v is not None and k in ckpt_flat and k not in card_only and v != ckpt_flat[k]}
    resolved = {**ckpt, **{k: card_config[k] for k in card_only if card_config.get(k) is not None}}
    if conflicts:
        card_shapes = _weight_shapes(card_config, family)
        if card_shapes != _weight_shapes(resolved, family):
            raise OfficialConfigError(
                f"{path}: the zoo card's config disagrees with the checkpoint's in fields that change the weights' "
                f"shapes ({'; '.join(conflicts.values())}); correct the card's config")
        warnings.warn(f"{path}: the zoo card's config differs from the checkpoint's (using the checkpoint's): "
                      + "; ".join(conflicts.values()), stacklevel=2)
    return resolved
