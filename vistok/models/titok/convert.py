"""Official TiTok (bytedance/1d-tokenizer) checkpoints -> :class:`vistok.models.titok.TiTok`.

Key mapping: ``latent_tokens`` moves into the encoder; ``class_embedding`` /
``positional_embedding`` / ``latent_token_positional_embedding`` become ``cls_token`` /
``pos_embed`` / ``latent_pos_embed``; ``ln_pre``/``ln_post`` -> ``norm_pre``/``norm_post``;
``nn.MultiheadAttention``'s packed ``in_proj`` is timm's ``qkv`` (same q, k, v order); the 1x1
convolutions ``encoder.conv_out`` and ``decoder.ffn.*`` become linear layers;
``quantize.embedding.weight`` -> ``quantize.embed``; ``pixel_quantize.embedding.weight`` ->
``pixel_codebook``; ``pixel_decoder.*`` keeps its names.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Mapping

import torch

from vistok.errors import InputError
from vistok.models.state_dict import load_strict, rename_prefix
from vistok.models.titok import TiTok, TiTokConfig

_BLOCK = [
    ("ln_1.", "norm1."), ("ln_2.", "norm2."), ("attn.in_proj_weight", "attn.qkv.weight"),
    ("attn.in_proj_bias", "attn.qkv.bias"), ("attn.out_proj.", "attn.proj."),
    ("mlp.c_fc.", "mlp.fc1."), ("mlp.c_proj.", "mlp.fc2."),
]
_TOP = [
    ("class_embedding", "cls_token"), ("latent_token_positional_embedding", "latent_pos_embed"),
    ("positional_embedding", "pos_embed"), ("ln_pre.", "norm_pre."), ("ln_post.", "norm_post."),
    ("decoder_embed.", "embed."),
]
_BLOCK_RE = re.compile(r"^(encoder|decoder)\.transformer\.(\d+)\.(.*)$")


def _convert_key(key: str, decoder_kind: str) -> str:
    if key == "latent_tokens":
        return "encoder.latent_tokens"
    if key == "quantize.embedding.weight":
        return "quantize.embed"
    if key == "pixel_quantize.embedding.weight":
        return "pixel_codebook"
    if key.startswith("pixel_decoder."):
        return key
    m = _BLOCK_RE.match(key)
    if m:
        part, idx, rest = m.groups()
        return f"{part}.transformer.blocks.{idx}.{rename_prefix(rest, _BLOCK)}"
    part, _, rest = key.partition(".")
    renamed = rename_prefix(rest, _TOP)
    if renamed != rest:
        return f"{part}.{renamed}"
    if part == "encoder" and rest.startswith("conv_out."):
        return "encoder.proj_out." + rest[len("conv_out."):]
    if part == "decoder" and rest.startswith("ffn."):
        index, _, leaf = rest[len("ffn."):].partition(".")
        if decoder_kind == "vqgan":
            return f"decoder.head.{index}.{leaf}"
        return f"decoder.head.{leaf}"
    return key


def convert_titok_state_dict(official: Mapping[str, torch.Tensor], config: TiTokConfig) -> Dict[str, torch.Tensor]:
    """Official TiTok state dict -> tokzoo TiTok state dict (unknown keys pass through unchanged,
    so :func:`load_titok_state_dict` can name them)."""
    out: Dict[str, torch.Tensor] = {}
    for key, value in official.items():
        new = _convert_key(key, config.decoder)
        if new.startswith(("encoder.proj_out.", "decoder.head.")) and new.endswith("weight") and value.dim() == 4:
            value = value.flatten(1)  # 1x1 conv -> linear
        out[new] = value
    if config.bottleneck == "vq":
        out.setdefault("quantize.cluster_size", torch.ones(config.codebook_size))
        out.setdefault("quantize.initted", torch.tensor([True]))
    return out


def load_titok_state_dict(model: TiTok, official: Mapping[str, torch.Tensor], source: str = "checkpoint") -> TiTok:
    """Convert and load strictly; mismatches raise an error naming the keys."""
    load_strict(model, convert_titok_state_dict(official, model.config), source)
    return model


def config_from_official(official_config: Mapping[str, Any]) -> TiTokConfig:
    """Map an official TiTok config (the ``config.json`` their Hub mixin writes, or an infer
    YAML loaded as a dict) onto :class:`TiTokConfig`. Only known fields are read."""
    try:
        vq = official_config["model"]["vq_model"]
    except (KeyError, TypeError):
        raise InputError("not a TiTok config: expected a 'model.vq_model' section") from None
    legacy = bool(vq.get("is_legacy", True))
    crop = official_config.get("dataset", {}).get("preprocessing", {}).get("crop_size", 256)
    if vq.get("vit_enc_patch_size", 16) != vq.get("vit_dec_patch_size", 16):
        raise InputError("encoder and decoder patch sizes differ; not supported")
    mode = vq.get("quantize_mode", "vq")
    if legacy and not vq.get("finetune_decoder", True):
        raise InputError("a stage-1 TiTok config (proxy-code logits, no pixel decoder) is not a tokenizer; "
                         "use the stage-2 (finetune_decoder: true) checkpoint")
    return TiTokConfig(
        image_size=int(crop),
        patch_size=int(vq.get("vit_enc_patch_size", 16)),
        encoder_size=str(vq["vit_enc_model_size"]),
        decoder_size=str(vq["vit_dec_model_size"]),
        num_latent_tokens=int(vq["num_latent_tokens"]),
        bottleneck={"vq": "vq", "vae": "kl"}[mode],
        codebook_size=int(vq.get("codebook_size", 4096)),
        token_size=int(vq["token_size"]),
        use_l2_norm=bool(vq.get("use_l2_norm", False)),
        commitment_cost=float(vq.get("commitment_cost", 0.25)),
        decoder="vqgan" if legacy else "pixels",
        legacy_reshape=legacy,
    )
