"""The FlexTok converter on official-layout checkpoints written here from the release's module names
and hydra structure (no official code needed), in both official formats."""
import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from vistok.models.state_dict import CheckpointMismatch
from vistok.models.flextok.convert import (OfficialConfigError, config_from_official, convert_flextok_state_dict, load_official,
                                load_official_vae)

D, DEPTH, NREG, GRID, CH, P, HEAD = 32, 2, 8, 2, 4, 2, 16
HIDDEN = int(2 * int(4 * D) / 3)  # the release's SwiGLU width
LEVELS = [8, 8, 8, 5, 5, 5]
TINY_VAE = dict(block_out_channels=[32, 32], layers_per_block=1)  # the release's VAE base, shrunk
VAE_ARGS = dict(block_out_channels=[32, 32], down_block_types=["DownEncoderBlock2D"] * 2,
                up_block_types=["UpDecoderBlock2D"] * 2, layers_per_block=1, latent_channels=CH, norm_num_groups=32)


def _t(name):
    return "flextok." + name


def _per_sample(read, write, fn):
    return {"_target_": _t("model.utils.dict_ops.PerSampleOp"), "read_key": read, "write_key": write,
            "per_sample_op": {"_target_": _t("model.utils.dict_ops." + fn), "_partial_": True}}


def _packer(keys, prefix, mode, **extra):
    return {"_target_": _t("model.preprocessors.flex_seq_packing.BlockWiseSequencePacker"), "input_list_read_keys": keys,
            "packed_seq_write_key": f"{prefix}_packed", "block_mask_write_key": f"{prefix}_mask",
            "inner_packed_shapes_write_key": f"{prefix}_ps_inner", "outer_packed_shapes_write_key": f"{prefix}_ps_outer",
            "mask_mode": mode, "pad_to_multiple": 128, **extra}


def _unpacker(prefix, keys):
    return {"_target_": _t("model.postprocessors.seq_unpacking.SequenceUnpacker"), "packed_seq_read_key": f"{prefix}_packed",
            "inner_seq_write_keys": keys, "inner_packed_shapes_read_key": f"{prefix}_ps_inner",
            "outer_packed_shapes_read_key": f"{prefix}_ps_outer"}


def official_tree(scaling=0.7):
    """A FlexTok hydra config in the release's structure (module order = execution order)."""
    posemb = _t("model.utils.posembs.PositionalEmbeddingAdder")
    patch = _t("model.preprocessors.patching.PatchEmbedder")
    trunk = _t("model.trunks.transformers.FlexTransformer")
    encoder = {
        "enc_channels_to_last": _per_sample("vae_latents", "enc_bhwc", "channels_first_to_last"),
        "enc_patch_emb": {"_target_": patch, "input_tensor_list_read_key": "enc_bhwc", "patches_list_write_key": "enc_p",
                          "n_patches_write_key": "enc_n", "channels_in": CH, "dim": D, "patch_sizes": [P, P],
                          "flatten_patches": False},
        "enc_posemb_module": {"_target_": posemb, "read_key": "enc_p", "write_key": "enc_p", "dim": D,
                              "max_sizes": [GRID, GRID], "posemb_type": "sincos", "posemb_scaling": "absolute"},
        "enc_register_module": {"_target_": _t("model.preprocessors.registers.Registers1D"),
                                "input_tensor_list_read_key": "enc_p", "register_sizes_read_write_key": "reg_sizes",
                                "registers_write_key": "enc_r", "dim": D, "n_min": NREG, "n_max": NREG,
                                "size_sampling_mode": "uniform", "ordering_mode": "nested"},
        "enc_seq_packer": _packer(["enc_p", "enc_r"], "enc", "causal_last"),
        "enc_transformer": {"_target_": trunk, "input_seq_read_key": "enc_packed", "output_seq_write_key": "enc_packed",
                            "dim": D, "depth": DEPTH, "head_dim": HEAD, "block_mask_read_key": "enc_mask",
                            "use_act_checkpoint": True},
        "enc_unpacker": _unpacker("enc", ["enc_p", "enc_r"]),
        "enc_to_latents": {"_target_": _t("model.postprocessors.heads.LinearHead"), "read_key": "enc_r",
                           "write_key": "enc_z", "dim": D, "dim_out": len(LEVELS), "use_mup_readout": False,
                           "weight_init_style": "zero"},
    }
    decoder = {
        "dec_from_latents": {"_target_": _t("model.preprocessors.linear.LinearLayer"), "read_key": "quants",
                             "write_key": "dec_r", "dim_in": len(LEVELS), "dim": D},
        "dec_registers_posemb_module": {"_target_": posemb, "read_key": "dec_r", "write_key": "dec_r", "dim": D,
                                        "max_sizes": [NREG], "posemb_type": "learnable_sum"},
        "dec_nested_dropout": {"_target_": _t("model.preprocessors.token_dropout.MaskedNestedDropout"),
                               "read_write_key": "dec_r", "dim": D, "size_sampling_mode": "pow2"},
        "dec_latent_dropout": {"_target_": _t("model.preprocessors.nullcond.LearnedNullCond"), "read_write_key": "dec_r",
                               "dim": D, "dropout_prob": 0.1},
        "dec_noise_channels_to_last": _per_sample("noised", "dec_bhwc", "channels_first_to_last"),
        "dec_noise_patch_emb": {"_target_": patch, "input_tensor_list_read_key": "dec_bhwc", "patches_list_write_key": "dec_p",
                                "n_patches_write_key": "dec_n", "channels_in": CH, "dim": D, "patch_sizes": [P, P],
                                "flatten_patches": False},
        "dec_patches_posemb_module": {"_target_": posemb, "read_key": "dec_p", "write_key": "dec_p", "dim": D,
                                      "max_sizes": [GRID, GRID], "posemb_type": "sincos"},
        "dec_seq_packer": _packer(["dec_p", "dec_r"], "dec", "full", emb_packing_fn_write_key="dec_embfn",
                                  per_subseq_embs=True),
        "dec_time_embedder": {"_target_": _t("model.preprocessors.time_embedding.TimestepEmbedder"),
                              "timesteps_read_key": "timesteps", "time_embedding_write_key": "dec_temb", "dim": D,
                              "frequency_embedding_size": 256, "max_timestep": 1.0},
        "dec_transformer": {"_target_": trunk, "input_seq_read_key": "dec_packed", "output_seq_write_key": "dec_packed",
                            "dim": D, "depth": DEPTH, "head_dim": HEAD, "block_mask_read_key": "dec_mask",
                            "adaLN_emb_read_key": "dec_temb",
                            "adaLN_packing_fn_read_key": "dec_embfn", "adaLN_expansion": 2},
        "dec_unpacker": _unpacker("dec", ["dec_p", "dec_r"]),
        "dec_to_patches": {"_target_": _t("model.postprocessors.heads.ToPatchesLinearHead"), "read_key": "dec_p",
                           "write_key": "dec_v_bhwc", "dim": D, "channels_out": CH, "patch_sizes": [P, P],
                           "use_mup_readout": False, "adaLN_emb_read_key": "dec_temb"},
        "dec_channels_to_first": _per_sample("dec_v_bhwc", "vae_latents_reconst", "channels_last_to_first"),
    }
    wrap = _t("model.utils.wrappers.SequentialModuleDictWrapper")
    return {
        "vae": {"_target_": _t("vae_wrapper.StableDiffusionVAE"), "images_read_key": "rgb",
                "vae_latents_read_key": "vae_latents_reconst", "vae_latents_write_key": "vae_latents",
                "images_reconst_write_key": "rgb_reconst", "latent_channels": CH, "scaling_factor": scaling,
                "sample_posterior": False, "frozen": True},
        "encoder": {"_target_": wrap, "module_dict": encoder},
        "decoder": {"_target_": wrap, "module_dict": decoder},
        "regularizer": {"_target_": _t("regularizers.quantize_fsq.FSQ"), "latents_read_key": "enc_z",
                        "quants_write_key": "quants", "tokens_write_key": "tokens", "levels": LEVELS},
        "flow_matching_noise_module": {"_target_": _t("flow_matching.noise_modules.MinRFNoiseModule"),
                                       "clean_images_read_key": "vae_latents", "noised_images_write_key": "noised",
                                       "timesteps_write_key": "timesteps", "sigmas_write_key": "sigmas"},
        "pipeline": {"_target_": _t("flow_matching.pipelines.MinRFPipeline"), "_partial_": True,
                     "latents_read_key": "quants", "timesteps_read_key": "timesteps", "noised_images_read_key": "noised",
                     "reconst_write_key": "vae_latents_reconst", "out_channels": CH},
    }


def _tiny_vae_state(seed=0):
    from diffusers.models import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(**VAE_ARGS).state_dict()


def official_state(seed=0):
    """Random weights under the release's parameter names (what its modules register)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=0.2):
        return torch.randn(*shape, generator=g) * scale

    def blocks(prefix, adaln):
        out = {}
        for i in range(DEPTH):
            b = f"{prefix}.blocks.{i}."
            out.update({b + f"attn.{n}.weight": r(D, D) for n in ("wq", "wk", "wv", "proj")})
            out.update({b + "mlp.fc1.weight": r(HIDDEN, D), b + "mlp.fc3.weight": r(HIDDEN, D),
                        b + "mlp.fc2.weight": r(D, HIDDEN)})
            if adaln:
                out.update({b + "adaLN_modulation.1.weight": r(2 * 6 * D, D), b + "adaLN_modulation.1.bias": r(2 * 6 * D)})
        return out

    e, d = "encoder.module_dict.", "decoder.module_dict."
    state = {
        e + "enc_patch_emb.patch_proj.weight": r(D, CH * P * P), e + "enc_patch_emb.patch_proj.bias": r(D),
        e + "enc_posemb_module.posembs": r(1, D, GRID, GRID), e + "enc_register_module.registers": r(NREG, D),
        **blocks(e + "enc_transformer", False),
        e + "enc_to_latents.proj.weight": r(len(LEVELS), D, scale=3.0), e + "enc_to_latents.proj.bias": r(len(LEVELS)),
        d + "dec_from_latents.proj.weight": r(D, len(LEVELS)), d + "dec_from_latents.proj.bias": r(D),
        d + "dec_registers_posemb_module.posembs": r(1, 1, D, NREG), d + "dec_nested_dropout.dropout_mask_token": r(D),
        d + "dec_latent_dropout.nullcond": r(D), d + "dec_noise_patch_emb.patch_proj.weight": r(D, CH * P * P),
        d + "dec_noise_patch_emb.patch_proj.bias": r(D), d + "dec_patches_posemb_module.posembs": r(1, D, GRID, GRID),
        d + "dec_time_embedder.mlp.0.weight": r(D, 256), d + "dec_time_embedder.mlp.0.bias": r(D),
        d + "dec_time_embedder.mlp.2.weight": r(D, D), d + "dec_time_embedder.mlp.2.bias": r(D),
        **blocks(d + "dec_transformer", True),
        d + "dec_to_patches.adaLN_modulation.1.weight": r(2 * D, D), d + "dec_to_patches.adaLN_modulation.1.bias": r(2 * D),
        d + "dec_to_patches.proj.weight": r(CH * P * P, D), d + "dec_to_patches.proj.bias": r(CH * P * P),
    }
    state.update({"vae.vae." + k: v for k, v in _tiny_vae_state(seed).items()})
    return state


def write_hub_layout(directory, state, tree):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(tree))  # plain json.dump keeps the module order
    save_file({k: v.contiguous() for k, v in state.items()}, str(directory / "model.safetensors"))
    return directory


def write_single_file(path, state, tree):
    metadata = {k: str(v) for k, v in tree.items()}  # the release's save_safetensors: str() of each section
    metadata["_target_"] = "flextok.flextok_wrapper.FlexTok"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata=metadata)
    return path


# --- an independent reading of the release's forward, in its own parameter names -------------------


def _norm(x):
    return F.layer_norm(x.float(), (x.shape[-1],))


def _ref_block(s, b, x, mask, mod=None):
    heads, hd = D // HEAD, HEAD

    def attn(h):
        q, k, v = (h @ s[b + f"attn.{n}.weight"].T for n in ("wq", "wk", "wv"))
        q, k, v = (t.view(*t.shape[:2], heads, hd).transpose(1, 2) for t in (q, k, v))
        o = F.scaled_dot_product_attention(_norm(q), _norm(k), v, attn_mask=mask, scale=8.0 / hd)
        return o.transpose(1, 2).reshape(h.shape) @ s[b + "attn.proj.weight"].T

    def mlp(h):
        return (F.silu(h @ s[b + "mlp.fc1.weight"].T) * (h @ s[b + "mlp.fc3.weight"].T)) @ s[b + "mlp.fc2.weight"].T

    if mod is None:
        x = x + attn(_norm(x))
        return x + mlp(_norm(x))
    ga, gm, sa, ca, sm, cm = mod
    x = x + ga * attn(_norm(x) * (1 + ca) + sa)
    return x + gm * mlp(_norm(x) * (1 + cm) + sm)


def _ref_patches(s, key, latents):
    b = latents.shape[0]
    x = latents.permute(0, 2, 3, 1).reshape(b, GRID, P, GRID, P, CH).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, GRID * GRID, P * P * CH) @ s[key + ".patch_proj.weight"].T + s[key + ".patch_proj.bias"]


def reference_encoder(s, latents):
    e = "encoder.module_dict."
    x = _ref_patches(s, e + "enc_patch_emb", latents)
    x = x + s[e + "enc_posemb_module.posembs"].flatten(2).transpose(1, 2)
    x = torch.cat([x, s[e + "enc_register_module.registers"].expand(len(x), -1, -1)], 1)
    n = GRID * GRID
    ids = torch.arange(n + NREG)
    query, key = ids[:, None], ids[None, :]
    mask = (key < n) | ((query >= n) & (key <= query))  # everyone sees the patches; registers causally
    mask &= (query >= n) | (key < n)  # patches never see registers
    for i in range(DEPTH):
        x = _ref_block(s, f"{e}enc_transformer.blocks.{i}.", x, mask)
    return _norm(x[:, n:]) @ s[e + "enc_to_latents.proj.weight"].T + s[e + "enc_to_latents.proj.bias"]


def reference_velocity(s, quants, keep_k, noised, t):
    d = "decoder.module_dict."
    r = quants @ s[d + "dec_from_latents.proj.weight"].T + s[d + "dec_from_latents.proj.bias"]
    r = r + s[d + "dec_registers_posemb_module.posembs"][0].transpose(1, 2)
    r = torch.where((torch.arange(NREG)[None] >= keep_k[:, None])[..., None], s[d + "dec_nested_dropout.dropout_mask_token"], r)
    x = _ref_patches(s, d + "dec_noise_patch_emb", noised) + s[d + "dec_patches_posemb_module.posembs"].flatten(2).transpose(1, 2)
    x = torch.cat([x, r], 1)
    half = 128
    freqs = torch.exp(-torch.log(torch.tensor(256.0)) * torch.arange(half) / half) * 1000.0  # max_timestep 1.0
    tf = torch.cat([torch.cos(t[:, None] * freqs), torch.sin(t[:, None] * freqs)], -1)
    temb = F.silu(tf @ s[d + "dec_time_embedder.mlp.0.weight"].T + s[d + "dec_time_embedder.mlp.0.bias"])
    temb = temb @ s[d + "dec_time_embedder.mlp.2.weight"].T + s[d + "dec_time_embedder.mlp.2.bias"]
    n = GRID * GRID
    for i in range(DEPTH):
        b = f"{d}dec_transformer.blocks.{i}."
        m = (F.silu(temb) @ s[b + "adaLN_modulation.1.weight"].T + s[b + "adaLN_modulation.1.bias"]).view(-1, 2, 6 * D)
        per_token = torch.cat([m[:, :1].expand(-1, n, -1), m[:, 1:].expand(-1, NREG, -1)], 1)
        x = _ref_block(s, b, x, None, per_token.chunk(6, -1))
    shift, scale = (F.silu(temb) @ s[d + "dec_to_patches.adaLN_modulation.1.weight"].T
                    + s[d + "dec_to_patches.adaLN_modulation.1.bias"]).chunk(2, -1)
    out = (_norm(x[:, :n]) * (1 + scale[:, None]) + shift[:, None]) @ s[d + "dec_to_patches.proj.weight"].T
    out = out + s[d + "dec_to_patches.proj.bias"]
    out = out.reshape(-1, GRID, GRID, P, P, CH).permute(0, 1, 3, 2, 4, 5).reshape(-1, GRID * P, GRID * P, CH)
    return out.permute(0, 3, 1, 2)


# --- tests -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def official():
    return official_tree(), official_state()


@pytest.mark.parametrize("layout", ["hub_dir", "single_file"])
def test_official_layout_loads_strictly_and_computes_what_the_release_does(official, tmp_path, layout):
    tree, state = official
    path = (write_hub_layout(tmp_path / "repo", state, tree) if layout == "hub_dir"
            else write_single_file(tmp_path / "model.safetensors", state, tree))
    model = load_official(path, vae_overrides=TINY_VAE)
    cfg = model.config
    assert (cfg.num_registers, cfg.encoder_dim, cfg.decoder_depth, cfg.adaln_expansion) == (NREG, D, DEPTH, 2)
    assert (cfg.nested_dropout, cfg.cfg_dropout, cfg.time_max_timestep, cfg.vae.scaling_factor) == ("pow2", 0.1, 1.0, 0.7)
    assert cfg.register_ops == ["posemb", "nested_dropout", "null_cond"] and cfg.image_size == GRID * P * 2
    with torch.no_grad():
        latents = torch.randn(3, CH, GRID * P, GRID * P)
        z = reference_encoder(state, latents)
        assert torch.allclose(model.encoder(latents), z, atol=1e-5)
        assert torch.equal(model.encode_latents(latents), model.quantize(z).indices)
        quants = model.quantize(z).z_q
        keep, t, noised = torch.tensor([1, 3, 8]), torch.tensor([0.9, 0.5, 0.1]), torch.randn(3, CH, 4, 4)
        registers, _ = model.decoder.condition(quants, keep)
        assert torch.allclose(model.decoder(noised, t, registers), reference_velocity(state, quants, keep, noised, t),
                              atol=1e-5)
        assert torch.equal(model.vae.autoencoder.state_dict()["decoder.conv_out.weight"],
                           state["vae.vae.decoder.conv_out.weight"])


def test_missing_and_unexpected_keys_are_named(official, tmp_path):
    tree, state = official
    broken = dict(state)
    del broken["decoder.module_dict.dec_nested_dropout.dropout_mask_token"]
    broken["decoder.module_dict.dec_extra.something"] = torch.zeros(3)
    with pytest.raises(CheckpointMismatch) as err:
        load_official(write_hub_layout(tmp_path / "repo", broken, tree), vae_overrides=TINY_VAE)
    message = str(err.value)
    assert "missing (1): decoder.mask_token" in message
    assert "official:decoder.module_dict.dec_extra.something" in message


def test_wrapped_checkpoint_prefixes_are_dropped(official):
    tree, state = official
    cfg = config_from_official(tree, vae_overrides=TINY_VAE)
    wrapped = {k.replace(".blocks.0.", ".blocks.0._checkpoint_wrapped_module."): v for k, v in state.items()}
    assert convert_flextok_state_dict(wrapped, cfg).keys() == convert_flextok_state_dict(state, cfg).keys()


@pytest.mark.parametrize("where", ["top", "nested", "metadata"])
def test_a_target_naming_an_arbitrary_callable_is_refused(official, tmp_path, where):
    tree, state = official
    tree = json.loads(json.dumps(tree))
    if where == "top":
        tree["vae"]["_target_"] = "os.system"
    else:
        tree["decoder"]["module_dict"]["dec_time_embedder"]["_target_"] = "builtins.eval"
    with pytest.raises(OfficialConfigError, match=r"names '(os\.system|builtins\.eval)', which is not a FlexTok "
                                                  r"class; refusing"):
        if where == "metadata":
            load_official(write_single_file(tmp_path / "m.safetensors", state, tree), vae_overrides=TINY_VAE)
        else:
            config_from_official(tree)


@pytest.mark.parametrize("change, message", [
    (lambda t: t["encoder"]["module_dict"]["enc_seq_packer"].update(mask_mode="full"), "mask_mode='full' is not supported"),
    (lambda t: t["encoder"]["module_dict"]["enc_to_latents"].update(use_mup_readout=True), "use_mup_readout"),
    (lambda t: t["decoder"]["module_dict"]["dec_time_embedder"].update(temb_as_tokens=True), "temb_as_tokens"),
    (lambda t: t["decoder"]["module_dict"].update(extra={"_target_": "flextok.model.preprocessors.mask_tokens."
                                                                     "MaskTokenModule"}), "module MaskTokenModule"),
    (lambda t: t.pop("regularizer"), "missing sections"),
])
def test_unsupported_settings_are_refused_by_name(official, change, message):
    tree = json.loads(json.dumps(official[0]))
    change(tree)
    with pytest.raises(OfficialConfigError, match=message):
        config_from_official(tree)


def test_module_order_sets_the_register_ops(official):
    tree = json.loads(json.dumps(official[0]))
    mods = tree["decoder"]["module_dict"]
    names = list(mods)
    i, j = names.index("dec_registers_posemb_module"), names.index("dec_latent_dropout")
    names[i], names[j] = names[j], names[i]
    tree["decoder"]["module_dict"] = {n: mods[n] for n in names}
    assert config_from_official(tree).register_ops == ["null_cond", "nested_dropout", "posemb"]


def test_diffusers_vae_directory_loads_including_legacy_attention_names(tmp_path):
    state = _tiny_vae_state(seed=3)
    legacy = {k.replace("to_q.", "query.").replace("to_k.", "key.").replace("to_v.", "value.")
              .replace("to_out.0.", "proj_attn."): v for k, v in state.items()}
    (tmp_path / "vae").mkdir()
    config = dict(_class_name="AutoencoderKL", in_channels=3, out_channels=3, act_fn="silu", scaling_factor=0.4, **VAE_ARGS)
    (tmp_path / "vae" / "config.json").write_text(json.dumps(config))
    save_file(legacy, str(tmp_path / "vae" / "diffusion_pytorch_model.safetensors"))
    vae = load_official_vae(tmp_path / "vae")
    assert vae.config.scaling_factor == 0.4 and vae.config.latent_channels == CH
    assert torch.equal(vae.autoencoder.state_dict()["encoder.mid_block.attentions.0.to_q.weight"],
                       state["encoder.mid_block.attentions.0.to_q.weight"])
    with torch.no_grad():
        x = torch.rand(1, 3, 16, 16)
        assert vae.decode(vae.encode(x, sample=False)).shape == x.shape
    config["shift_factor"] = 0.1
    (tmp_path / "vae" / "config.json").write_text(json.dumps(config))
    with pytest.raises(OfficialConfigError, match="shift_factor"):
        load_official_vae(tmp_path / "vae")
