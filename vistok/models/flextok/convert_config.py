"""Official FlexTok configs read as data: the hydra ``_target_`` trees of the tokenizers and the
diffusers config of the VAEs, mapped onto :class:`FlexTokConfig` / :class:`FlexTokVAEConfig`.

Every ``_target_`` must name one of the release's own classes (:data:`KNOWN_TARGETS`); nothing a
config names is imported. Known fields are mapped; settings this implementation does not
reproduce are refused by name rather than ignored. The order of the decoder's ``module_dict`` is
its execution order and is kept (it decides :attr:`FlexTokConfig.register_ops`).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from vistok.errors import TokzooError
from vistok.models.flextok import FlexTokConfig, FlexTokVAEConfig

_P = "flextok."
KNOWN_TARGETS = frozenset(_P + t for t in [
    "flextok_wrapper.FlexTok", "flextok_wrapper.FlexTokFromHub", "vae_wrapper.StableDiffusionVAE",
    "flow_matching.pipelines.MinRFPipeline", "flow_matching.noise_modules.MinRFNoiseModule",
    "flow_matching.cfg_utils.MomentumBuffer",
    "model.utils.wrappers.SequentialModuleDictWrapper", "model.utils.posembs.PositionalEmbedding",
    "model.utils.posembs.PositionalEmbeddingAdder", "model.utils.dict_ops.DictKeyFilter",
    "model.utils.dict_ops.PerSampleOp", "model.utils.dict_ops.PerSampleReducer",
    "model.utils.dict_ops.channels_first_to_last", "model.utils.dict_ops.channels_last_to_first",
    "model.trunks.transformers.FlexTransformer", "model.trunks.transformers.FlexTransformerDecoder",
    "model.preprocessors.token_dropout.MaskedNestedDropout", "model.preprocessors.time_embedding.TimestepEmbedder",
    "model.preprocessors.registers.Registers1D", "model.preprocessors.patching.PatchEmbedder",
    "model.preprocessors.nullcond.ZeroNullCond", "model.preprocessors.nullcond.LearnedNullCond",
    "model.preprocessors.mask_tokens.MaskTokenModule", "model.preprocessors.linear.LinearLayer",
    "model.preprocessors.flex_seq_packing.BlockWiseSequencePacker",
    "model.postprocessors.seq_unpacking.SequenceUnpacker", "model.postprocessors.heads.LinearHead",
    "model.postprocessors.heads.ToPatchesLinearHead", "model.postprocessors.heads.MLPHead",
    "model.layers.transformer_blocks.FlexBlock", "model.layers.transformer_blocks.FlexBlockAdaLN",
    "model.layers.norm.Fp32LayerNorm", "model.layers.mlp.Mlp", "model.layers.mlp.GatedMlp",
    "regularizers.quantize_fsq.FSQ",
])
SECTIONS = ("vae", "encoder", "decoder", "regularizer")
_PLUMBING = ("PerSampleOp", "SequenceUnpacker", "DictKeyFilter")  # move tensors between keys; no weights
# FlexTransformer arguments read below, or that only matter for training or memory.
_TRUNK_KNOWN = {"input_seq_read_key", "output_seq_write_key", "block_mask_read_key", "score_mod_read_key",
                  "adaLN_emb_read_key", "adaLN_packing_fn_read_key", "use_act_checkpoint", "weight_init_style",
                  "zero_init_query_proj", "drop_path_rate", "drop", "intermediate_layer_write_key",
                  "intermediate_layers", "dim", "depth", "head_dim", "mlp_ratio", "qkv_bias", "proj_bias", "mlp_bias",
                  "gated_mlp", "qk_norm", "adaLN_expansion"}


class OfficialConfigError(TokzooError, ValueError):
    """An official FlexTok config is malformed, unsafe or not supported; names the file and field."""


def check_targets(tree: Any, where: str, path: str = "") -> None:
    """Refuse any ``_target_`` that is not one of the release's classes (nothing is imported here)."""
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            here = f"{path}.{key}" if path else str(key)
            if key == "_target_":
                if not isinstance(value, str) or value not in KNOWN_TARGETS:
                    raise OfficialConfigError(
                        f"{where}: {here} names {value!r}, which is not a FlexTok class; refusing the config "
                        "(downloaded configs are read as data and their targets are never imported)")
            else:
                check_targets(value, where, here)
    elif isinstance(tree, (list, tuple)):
        for i, item in enumerate(tree):
            check_targets(item, where, f"{path}[{i}]")


def _sections(config: Mapping[str, Any], where: str) -> Dict[str, Any]:
    if isinstance(config.get("config"), Mapping) and "encoder" in config["config"]:
        config = config["config"]  # a mixin config.json wrapped once more
    missing = [s for s in SECTIONS if not isinstance(config.get(s), Mapping)]
    if missing:
        raise OfficialConfigError(f"{where}: not a FlexTok config (missing sections {missing}; "
                                  f"found {sorted(map(str, config))})")
    check_targets(config, where)
    top = config.get("_target_")
    if top is not None and not top.endswith(("FlexTok", "FlexTokFromHub")):
        raise OfficialConfigError(f"{where}: _target_ {top!r} is not a FlexTok model")
    return dict(config)


class _Module:
    """One entry of a ``module_dict``: its name, class name and arguments."""

    def __init__(self, section: str, name: str, spec: Mapping[str, Any], where: str):
        self.where = f"{where}: {section}.module_dict.{name}"
        self.name, self.args = name, dict(spec)
        self.cls = str(spec.get("_target_", "")).rsplit(".", 1)[-1]

    def get(self, key: str, default: Any = None) -> Any:
        return self.args.get(key, default)

    def require(self, key: str, expected: Any, default: Any = None) -> None:
        value = self.args.get(key, default)
        if value != expected:
            raise OfficialConfigError(f"{self.where}: {key}={value!r} is not supported (only {expected!r})")

    def refuse(self, what: str) -> OfficialConfigError:
        return OfficialConfigError(f"{self.where}: {what} is not supported by vistok's FlexTok")


def _module_list(config: Mapping[str, Any], section: str, where: str) -> List[_Module]:
    tree = config[section]
    if not str(tree.get("_target_", "")).endswith("SequentialModuleDictWrapper") or not isinstance(
            tree.get("module_dict"), Mapping):
        raise OfficialConfigError(f"{where}: {section} must be a SequentialModuleDictWrapper with a module_dict")
    return [_Module(section, name, spec, where) for name, spec in tree["module_dict"].items()]


def _trunk(m: _Module, decoder: bool) -> Dict[str, Any]:
    for key in ("act_layer", "rope_forward_read_key"):
        if m.get(key) is not None:
            raise m.refuse(f"{key}={m.get(key)!r}")
    if not _default_norm(m.args.get("norm_layer", "default")):
        raise m.refuse(f"norm_layer={m.get('norm_layer')!r}")
    if bool(m.get("adaLN_emb_read_key")) != decoder:
        raise m.refuse("adaLN time conditioning in the encoder / its absence in the decoder")
    unknown = set(m.args) - _TRUNK_KNOWN - {"_target_", "norm_layer"}
    if unknown:
        raise m.refuse(f"arguments {sorted(unknown)}")
    return dict(dim=int(m.get("dim", 768)), depth=int(m.get("depth", 12)), head_dim=int(m.get("head_dim", 64)),
                mlp_ratio=float(m.get("mlp_ratio", 4.0)), gated_mlp=bool(m.get("gated_mlp", True)),
                qkv_bias=bool(m.get("qkv_bias", False)), proj_bias=bool(m.get("proj_bias", False)),
                mlp_bias=bool(m.get("mlp_bias", False)), qk_norm=bool(m.get("qk_norm", True)),
                expansion=int(m.get("adaLN_expansion", 1)), intermediate=list(m.get("intermediate_layers") or []))


def _default_norm(value: Any) -> bool:
    """The release's default norm: a parameter-free fp32 LayerNorm (absent from the config, or
    spelled out as a partial Fp32LayerNorm without affine parameters)."""
    if value == "default":
        return True
    return (isinstance(value, Mapping) and str(value.get("_target_", "")).endswith("Fp32LayerNorm")
            and value.get("elementwise_affine", True) is False and value.get("bias", True) is False)


def _head_norm(m: _Module) -> bool:
    """Whether a head normalises its input (the default) or not (``norm_layer: null``)."""
    if m.get("use_mup_readout", False):
        raise m.refuse("use_mup_readout=True (muP readout scaling)")
    if m.get("proj_bias", True) is not True:
        raise m.refuse("proj_bias=False")
    norm = m.args.get("norm_layer", "default")
    if norm is not None and not _default_norm(norm):
        raise m.refuse(f"norm_layer={norm!r}")
    return norm is not None


def _encoder_fields(mods: List[_Module], out: Dict[str, Any], where: str) -> None:
    seen = set()
    for m in mods:
        seen.add(m.cls)
        if m.cls == "PatchEmbedder":
            sizes = list(m.get("patch_sizes"))
            if len(set(sizes)) != 1:
                raise m.refuse(f"non-square patches {sizes}")
            out.update(patch_size=int(sizes[0]), enc_channels=int(m.get("channels_in")), encoder_dim=int(m.get("dim")))
        elif m.cls == "PositionalEmbeddingAdder":
            out.update(patch_posemb=m.get("posemb_type", "sincos"), posemb_scaling=m.get("posemb_scaling", "absolute"),
                       enc_max_sizes=list(m.get("max_sizes")))
        elif m.cls == "Registers1D":
            m.require("ordering_mode", "nested", "nested")
            if m.get("extra_registers_write_key") is not None:
                raise m.refuse("extra registers")
            out["num_registers"] = int(m.get("n_max"))  # n_min only matters for training
        elif m.cls == "BlockWiseSequencePacker":
            m.require("mask_mode", "causal_last", "full")
            if len(m.get("input_list_read_keys", [])) != 2:
                raise m.refuse("a sequence other than [patches, registers]")
        elif m.cls == "FlexTransformer":
            t = _trunk(m, decoder=False)
            out.update(encoder_dim=t["dim"], encoder_depth=t["depth"], enc_trunk=t)
        elif m.cls == "LinearHead":
            out.update(encoder_head_norm=_head_norm(m), token_dim=int(m.get("dim_out")))
        elif m.cls not in _PLUMBING:
            raise m.refuse(f"module {m.cls}")
    for needed in ("PatchEmbedder", "PositionalEmbeddingAdder", "Registers1D", "FlexTransformer", "LinearHead"):
        if needed not in seen:
            raise OfficialConfigError(f"{where}: the encoder has no {needed}")


def _decoder_fields(mods: List[_Module], out: Dict[str, Any], where: str) -> None:
    register_key = None
    ops: List[str] = []
    for m in mods:
        if m.cls == "LinearLayer":
            register_key = m.get("write_key")
            if m.get("proj_bias", True) is not True:
                raise m.refuse("proj_bias=False")
            out.update(dec_token_dim=int(m.get("dim_in")), decoder_dim=int(m.get("dim")))
        elif m.cls == "PositionalEmbeddingAdder" and register_key and m.get("read_key") == register_key:
            if len(m.get("max_sizes")) != 1:
                raise m.refuse("a 2D positional embedding on the registers")
            out["register_posemb"] = m.get("posemb_type", "sincos")
            ops.append("posemb")
        elif m.cls == "PositionalEmbeddingAdder":
            out.update(dec_patch_posemb=m.get("posemb_type", "sincos"), dec_max_sizes=list(m.get("max_sizes")),
                       dec_posemb_scaling=m.get("posemb_scaling", "absolute"))
        elif m.cls == "MaskedNestedDropout":
            out["nested_dropout"] = m.get("size_sampling_mode", "uniform")
            ops.append("nested_dropout")
        elif m.cls in ("LearnedNullCond", "ZeroNullCond"):
            out.update(null_cond="learned" if m.cls == "LearnedNullCond" else "zero",
                       cfg_dropout=float(m.get("dropout_prob", 0.0)),
                       null_cond_single_token=bool(m.get("replace_with_single_token", False)))
            if m.get("eval_drop_flag_read_key", "eval_dropout_mask") != "eval_dropout_mask":
                raise m.refuse("a null condition not driven by 'eval_dropout_mask' (the pipeline's CFG flag)")
            ops.append("null_cond")
        elif m.cls == "PatchEmbedder":
            out.update(dec_patch_size=list(m.get("patch_sizes")), dec_channels=int(m.get("channels_in")))
        elif m.cls == "BlockWiseSequencePacker":
            m.require("mask_mode", "full", "full")
            keys = list(m.get("input_list_read_keys", []))
            if len(keys) != 2 or keys[1] != register_key:
                raise m.refuse(f"a decoder sequence {keys} other than [patches, registers]")
            out["per_subseq_embs"] = bool(m.get("per_subseq_embs", False))
        elif m.cls == "TimestepEmbedder":
            if m.get("temb_as_tokens", False):
                raise m.refuse("temb_as_tokens=True")
            out.update(time_frequency_dim=int(m.get("frequency_embedding_size", 256)),
                       time_max_timestep=float(m.get("max_timestep", 1000.0)))
        elif m.cls == "FlexTransformer":
            t = _trunk(m, decoder=True)
            out.update(decoder_dim=t["dim"], decoder_depth=t["depth"], dec_trunk=t, adaln_expansion=t["expansion"])
            if len(t["intermediate"]) > 1:
                raise m.refuse("more than one REPA layer")
            out["repa_layer"] = t["intermediate"][0] if t["intermediate"] else None
        elif m.cls == "ToPatchesLinearHead":
            if not m.get("adaLN_emb_read_key") or m.get("adaLN_packing_fn_read_key"):
                raise m.refuse("a velocity head without per-image adaLN")
            out.update(decoder_head_norm=_head_norm(m), head_channels=int(m.get("channels_out")))
        elif m.cls == "MLPHead":
            norm = m.args.get("norm_layer", "default")
            if (m.get("use_mup_readout", False) or m.get("bias", True) is not True or m.get("act_layer") is not None
                    or not (norm is None or _default_norm(norm))):
                raise m.refuse("this REPA projector layout")
            out.update(repa_dim=int(m.get("dim_out")), repa_head_layers=int(m.get("num_layers")),
                       repa_head_ratio=float(m.get("dim_hidden_ratio", 4.0)),
                       repa_head_norm=norm is not None, has_repa_head=True)
        elif m.cls not in _PLUMBING:
            raise m.refuse(f"module {m.cls}")
    if "posemb" not in ops:
        ops.insert(0, "posemb")
    out["register_ops"] = ops
    if "nested_dropout" not in ops or "null_cond" not in ops:
        raise OfficialConfigError(f"{where}: the decoder needs a MaskedNestedDropout and a "
                                  "null condition (LearnedNullCond / ZeroNullCond)")
    out.setdefault("register_posemb", None)


def _vae_fields(vae: Mapping[str, Any], where: str) -> Dict[str, Any]:
    if not str(vae.get("_target_", "")).endswith("StableDiffusionVAE"):
        raise OfficialConfigError(f"{where}: vae must be a StableDiffusionVAE")
    if vae.get("learnable_logvar", False):
        raise OfficialConfigError(f"{where}: vae.learnable_logvar=True is not supported")
    scaling = vae.get("scaling_factor")
    dtype = vae.get("dtype_override", "fp32") or "fp32"
    precision = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}.get(dtype, dtype)
    return dict(latent_channels=int(vae.get("latent_channels", 16)),
                scaling_factor=float(scaling) if scaling is not None else None,
                sample_posterior=bool(vae.get("sample_posterior", True)), precision=precision)


def config_from_official(config: Mapping[str, Any], where: str = "config",
                         vae_overrides: Optional[Mapping[str, Any]] = None) -> FlexTokConfig:
    """Map an official FlexTok hydra tree (read as data) onto :class:`FlexTokConfig`.

    The release builds its VAE from a fixed base config (four levels, widths 128-512) with only
    the latent width configurable; ``vae_overrides`` replaces architecture fields of that base
    (small test models)."""
    config = _sections(config, where)
    f: Dict[str, Any] = {}
    _encoder_fields(_module_list(config, "encoder", where), f, where)
    _decoder_fields(_module_list(config, "decoder", where), f, where)
    vae = FlexTokVAEConfig(**{**_vae_fields(config["vae"], where), **dict(vae_overrides or {})})
    reg = config["regularizer"]
    if not str(reg.get("_target_", "")).endswith("FSQ"):
        raise OfficialConfigError(f"{where}: regularizer must be FSQ")
    levels = [int(v) for v in reg.get("levels", [])]
    enc, dec = f["enc_trunk"], f["dec_trunk"]
    shared = ("head_dim", "mlp_ratio", "gated_mlp", "qkv_bias", "proj_bias", "mlp_bias", "qk_norm")
    differing = [k for k in shared if enc[k] != dec[k]]
    consistency = [
        (not differing, f"encoder and decoder differ in {differing}"),
        (f["token_dim"] == len(levels) == f["dec_token_dim"], "encoder head, FSQ levels and decoder input disagree"),
        (f["dec_patch_size"] == [f["patch_size"]] * 2, "encoder and decoder patch sizes differ"),
        (f["enc_channels"] == f["dec_channels"] == f["head_channels"] == vae.latent_channels,
         "latent channel counts differ between the VAE, encoder and decoder"),
        (f["enc_max_sizes"] == f["dec_max_sizes"] and len(set(f["enc_max_sizes"])) == 1,
         "encoder and decoder position tables differ or are not square"),
        ((f["dec_patch_posemb"], f["dec_posemb_scaling"]) == (f["patch_posemb"], f["posemb_scaling"]),
         "encoder and decoder patch positional embeddings differ"),
        (f["per_subseq_embs"] == (f["adaln_expansion"] == 2),
         "adaLN_expansion must be 2 with per_subseq_embs (patches, registers) or 1 without"),
    ]
    for ok, message in consistency:
        if not ok:
            raise OfficialConfigError(f"{where}: {message}")
    noise = config.get("flow_matching_noise_module") or {}
    if noise.get("ln", True):
        sampling = "stratified_logit_normal" if noise.get("stratisfied", False) else "logit_normal"
    else:
        sampling = "uniform"
    image_size = f["enc_max_sizes"][0] * f["patch_size"] * vae.downsample_factor
    vae.image_size = image_size
    repa_fields = {k: f[k] for k in ("repa_dim", "repa_head_layers", "repa_head_ratio", "repa_head_norm") if k in f}
    if f.get("repa_layer") is not None and not f.get("has_repa_head"):
        f["repa_layer"] = None  # intermediate features exported but no projector weights to load
    return FlexTokConfig(
        image_size=image_size, vae=vae, patch_size=f["patch_size"],
        num_registers=f["num_registers"], fsq_levels=levels, encoder_dim=f["encoder_dim"],
        encoder_depth=f["encoder_depth"], decoder_dim=f["decoder_dim"], decoder_depth=f["decoder_depth"],
        **{k: enc[k] for k in shared}, patch_posemb=f["patch_posemb"], posemb_scaling=f["posemb_scaling"],
        register_posemb=f["register_posemb"], register_ops=f["register_ops"], null_cond=f["null_cond"],
        null_cond_single_token=f["null_cond_single_token"], adaln_expansion=f["adaln_expansion"],
        time_frequency_dim=f["time_frequency_dim"], time_max_timestep=f["time_max_timestep"],
        encoder_head_norm=f["encoder_head_norm"], decoder_head_norm=f["decoder_head_norm"],
        nested_dropout=f["nested_dropout"], cfg_dropout=f["cfg_dropout"],
        fsq_drop_quant_p=float(reg.get("drop_quant_p", 0.0)), corrupt_tokens_p=float(reg.get("corrupt_tokens_p", 0.0)),
        min_corrupt_tokens_p=reg.get("min_corrupt_tokens_p"),
        apply_corrupt_tokens_p=float(reg.get("apply_corrupt_tokens_p", 0.2)),
        timestep_sampling=sampling, timestep_mode_scale=float(noise.get("mode_scale", 0.0)),
        repa_layer=f.get("repa_layer"), **repa_fields)


def vae_config_from_diffusers(config: Mapping[str, Any], where: str = "config.json") -> FlexTokVAEConfig:
    """A diffusers ``AutoencoderKL`` config.json -> :class:`FlexTokVAEConfig` (other layouts refused)."""
    depth = len(config.get("block_out_channels", []))
    expected = {"_class_name": "AutoencoderKL", "act_fn": "silu", "in_channels": 3, "out_channels": 3,
                "down_block_types": ["DownEncoderBlock2D"] * depth, "up_block_types": ["UpDecoderBlock2D"] * depth}
    for key, value in expected.items():
        if key in config and config[key] != value:
            raise OfficialConfigError(f"{where}: {key}={config[key]!r} is not supported (only {value!r})")
    for key in ("use_quant_conv", "use_post_quant_conv", "mid_block_add_attention"):
        if config.get(key, True) is not True:
            raise OfficialConfigError(f"{where}: {key}=False is not supported")
    if config.get("shift_factor") not in (None, 0, 0.0):
        raise OfficialConfigError(f"{where}: shift_factor is not supported")
    scaling = config.get("scaling_factor")
    return FlexTokVAEConfig(latent_channels=int(config["latent_channels"]),
                            block_out_channels=list(config["block_out_channels"]),
                            layers_per_block=int(config.get("layers_per_block", 2)),
                            norm_num_groups=int(config.get("norm_num_groups", 32)),
                            scaling_factor=float(scaling) if scaling is not None else None)
