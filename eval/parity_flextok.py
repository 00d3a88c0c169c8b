"""Parity with the OFFICIAL FlexTok classes (apple/ml-flextok), imported from a source tree given on
the command line (their code is never copied here).

What it proves: the official ``FlexTok`` is built at the d12_d12 size (encoder and decoder 768 wide,
12 blocks, 256 registers, FSQ [8,8,8,5,5,5], the 16-channel f8 VAE) from a hydra config written
below in the release's structure, with seeded random weights; it is saved in BOTH official
layouts (Hub-mixin directory: ``config.json`` + ``model.safetensors``; single file: config in the
safetensors metadata) and each is converted by :func:`vistok.models.flextok.convert.load_official`. On the four
bundled photos (256x256), fp32:

- token ids identical (exact), the official ``tokenize`` vs our ``encode``;
- decoded VAE latents (the flow sampler's output) and decoded pixels for the same noise
  (``torch.Generator`` seeded alike: the release draws one ``randn((1, 16, 32, 32))`` per image in
  batch order), for three decodes: all 256 tokens without guidance; a batch of different
  lengths k = 1, 16, 64, 256 in one call with CFG; the same with adaptive projected guidance
  (the README's recommended sampling, scale 7.5);
- speed of both on the same inputs (tokenize; the three detokenizations), one timed run each
  after a warm-up run with the same shapes.

Pass: ``max |ours - official| <= 1e-4`` (pixels compared in the release's [-1, 1] range). The
sampled latents match to ~1e-6; the pixels differ by up to ~3e-5 because the same diffusers VAE
decoder, run in two module instances, rounds differently in fp32 (one GroupNorm onwards); the
script repeats that decoder in float64 on the same latents (tolerance 1e-9) to show it.

Weights: the official initialisation, seeded, then every parameter the release initialises to
zero (adaLN modulations, output heads, biases) redrawn N(0, 0.02^2), the encoder's output head
redrawn N(0, 0.05^2) and its registers N(0, 1), and the latent scaling factor set to 6 (the
random VAE's latents then have a standard deviation of about 1.4), so that the pre-FSQ values
spread over the code grid and depend on the image (unique ids and the fraction of ids that
differ between photos are reported). The VAE takes the posterior mode (``sample_posterior: false``) so tokenizing is
deterministic on both sides. Settings the public code does not pin and the released configs
could not be read for (register positional embedding, learned null condition, adaLN
expansion 2, timestep scaling, the VAE scaling factor) are set as written in
``official_config``; the converter reads them from each checkpoint's own config.

The official code runs on the CPU here through its own SDPA fallback: ``use_flex_attention`` and
``return_materialized_mask`` are constructor defaults the config cannot reach, so they are set
on the built modules. Its pure-Python dependencies (hydra-core, mup; einops and diffusers are
needed as well) come from the environment if installed (a throwaway venv), else minimal
stand-ins are used (an ``instantiate`` for this script's own config, and mup's init functions,
which the forward pass never calls)::

    git --git-dir=MIRROR/ml-flextok.git archive HEAD flextok | tar -x -C /tmp/official/flextok
    python eval/parity_flextok.py /tmp/official/flextok [--official-git-dir MIRROR/ml-flextok.git]

Results go to ``eval/results/parity_flextok.{json,txt}``; the exit code is non-zero on any failure.
"""
from __future__ import annotations

import argparse
import datetime
import functools
import importlib
import json
import platform
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from provenance import tree_provenance  # eval/ is on sys.path when a script here runs

TOL = 1e-4
TOL64 = 1e-9  # the VAE decoder repeated in float64: shows its fp32 differences are rounding
SEED = 0
ZERO_INIT_STD = 0.02
ENC_HEAD_STD = 0.05
REGISTER_STD = 1.0
SCALING = 6.0  # VAE latent scaling factor written into the config (latents of std ~1.4 with the random VAE)
STEPS = 4
DECODES = [  # (name, per-image token counts, guidance, APG)
    ("k=256, no guidance", [256, 256, 256, 256], 1.0, False),
    ("k=1/16/64/256 in one batch, CFG 3.0", [1, 16, 64, 256], 3.0, False),
    ("k=1/16/64/256 in one batch, APG 7.5", [1, 16, 64, 256], 7.5, True),
]


# ---------------------------------------------------------------------------------------------
# the official config, in the release's hydra structure (module order = execution order)
# ---------------------------------------------------------------------------------------------


def _t(name: str) -> str:
    return "flextok." + name


def _per_sample(read: str, write: str, fn: str) -> Dict[str, Any]:
    return {"_target_": _t("model.utils.dict_ops.PerSampleOp"), "read_key": read, "write_key": write,
            "per_sample_op": {"_target_": _t("model.utils.dict_ops." + fn), "_partial_": True}}


def _packer(keys: List[str], prefix: str, mode: str, **extra) -> Dict[str, Any]:
    return {"_target_": _t("model.preprocessors.flex_seq_packing.BlockWiseSequencePacker"), "input_list_read_keys": keys,
            "packed_seq_write_key": f"{prefix}_packed_seq", "block_mask_write_key": f"{prefix}_block_mask",
            "inner_packed_shapes_write_key": f"{prefix}_ps_inner", "outer_packed_shapes_write_key": f"{prefix}_ps_outer",
            "mask_mode": mode, "pad_to_multiple": 128, **extra}


def _unpacker(prefix: str, keys: List[str]) -> Dict[str, Any]:
    return {"_target_": _t("model.postprocessors.seq_unpacking.SequenceUnpacker"),
            "packed_seq_read_key": f"{prefix}_packed_seq", "inner_seq_write_keys": keys,
            "inner_packed_shapes_read_key": f"{prefix}_ps_inner", "outer_packed_shapes_read_key": f"{prefix}_ps_outer"}


def official_config(enc_dim=768, enc_depth=12, dec_dim=768, dec_depth=12, registers=256, grid=16, channels=16):
    posemb = _t("model.utils.posembs.PositionalEmbeddingAdder")
    patch = _t("model.preprocessors.patching.PatchEmbedder")
    trunk = _t("model.trunks.transformers.FlexTransformer")
    encoder = {
        "enc_channels_to_last": _per_sample("vae_latents", "enc_vae_latents_bhwc", "channels_first_to_last"),
        "enc_patch_emb": {"_target_": patch, "input_tensor_list_read_key": "enc_vae_latents_bhwc",
                          "patches_list_write_key": "enc_patches", "n_patches_write_key": "enc_n_patches",
                          "channels_in": channels, "dim": enc_dim, "patch_sizes": [2, 2], "flatten_patches": False},
        "enc_posemb_module": {"_target_": posemb, "read_key": "enc_patches", "write_key": "enc_patches", "dim": enc_dim,
                              "max_sizes": [grid, grid], "posemb_type": "sincos", "posemb_scaling": "absolute"},
        "enc_register_module": {"_target_": _t("model.preprocessors.registers.Registers1D"),
                                "input_tensor_list_read_key": "enc_patches", "register_sizes_read_write_key": "reg_sizes",
                                "registers_write_key": "enc_registers", "dim": enc_dim, "n_min": registers,
                                "n_max": registers, "size_sampling_mode": "uniform", "ordering_mode": "nested"},
        "enc_seq_packer": _packer(["enc_patches", "enc_registers"], "enc", "causal_last"),
        "enc_transformer": {"_target_": trunk, "input_seq_read_key": "enc_packed_seq",
                            "output_seq_write_key": "enc_packed_seq", "dim": enc_dim, "depth": enc_depth,
                            "block_mask_read_key": "enc_block_mask", "use_act_checkpoint": True},
        "enc_unpacker": _unpacker("enc", ["enc_patches", "enc_registers"]),
        "enc_to_latents": {"_target_": _t("model.postprocessors.heads.LinearHead"), "read_key": "enc_registers",
                           "write_key": "enc_fsq_latents", "dim": enc_dim, "dim_out": 6, "use_mup_readout": False,
                           "weight_init_style": "zero"},
    }
    decoder = {
        "dec_from_latents": {"_target_": _t("model.preprocessors.linear.LinearLayer"), "read_key": "quants",
                             "write_key": "dec_registers", "dim_in": 6, "dim": dec_dim},
        "dec_registers_posemb_module": {"_target_": posemb, "read_key": "dec_registers", "write_key": "dec_registers",
                                        "dim": dec_dim, "max_sizes": [registers], "posemb_type": "learnable_sum"},
        "dec_nested_dropout": {"_target_": _t("model.preprocessors.token_dropout.MaskedNestedDropout"),
                               "read_write_key": "dec_registers", "dim": dec_dim, "size_sampling_mode": "uniform"},
        "dec_latent_dropout": {"_target_": _t("model.preprocessors.nullcond.LearnedNullCond"),
                               "read_write_key": "dec_registers", "dim": dec_dim, "dropout_prob": 0.2},
        "dec_noise_channels_to_last": _per_sample("noised_latents", "dec_noised_bhwc", "channels_first_to_last"),
        "dec_noise_patch_emb": {"_target_": patch, "input_tensor_list_read_key": "dec_noised_bhwc",
                                "patches_list_write_key": "dec_patches", "n_patches_write_key": "dec_n_patches",
                                "channels_in": channels, "dim": dec_dim, "patch_sizes": [2, 2], "flatten_patches": False},
        "dec_patches_posemb_module": {"_target_": posemb, "read_key": "dec_patches", "write_key": "dec_patches",
                                      "dim": dec_dim, "max_sizes": [grid, grid], "posemb_type": "sincos"},
        "dec_seq_packer": _packer(["dec_patches", "dec_registers"], "dec", "full",
                                  emb_packing_fn_write_key="dec_emb_packing_fn", per_subseq_embs=True),
        "dec_time_embedder": {"_target_": _t("model.preprocessors.time_embedding.TimestepEmbedder"),
                              "timesteps_read_key": "timesteps", "time_embedding_write_key": "dec_temb", "dim": dec_dim},
        "dec_transformer": {"_target_": trunk, "input_seq_read_key": "dec_packed_seq",
                            "output_seq_write_key": "dec_packed_seq", "dim": dec_dim, "depth": dec_depth,
                            "block_mask_read_key": "dec_block_mask", "adaLN_emb_read_key": "dec_temb",
                            "adaLN_packing_fn_read_key": "dec_emb_packing_fn", "adaLN_expansion": 2,
                            "use_act_checkpoint": True},
        "dec_unpacker": _unpacker("dec", ["dec_patches", "dec_registers"]),
        "dec_to_patches": {"_target_": _t("model.postprocessors.heads.ToPatchesLinearHead"), "read_key": "dec_patches",
                           "write_key": "dec_velocity_bhwc", "dim": dec_dim, "channels_out": channels,
                           "patch_sizes": [2, 2], "use_mup_readout": False, "adaLN_emb_read_key": "dec_temb"},
        "dec_channels_to_first": _per_sample("dec_velocity_bhwc", "vae_latents_reconst", "channels_last_to_first"),
    }
    wrap = _t("model.utils.wrappers.SequentialModuleDictWrapper")
    return {
        "vae": {"_target_": _t("vae_wrapper.StableDiffusionVAE"), "images_read_key": "rgb",
                "vae_latents_read_key": "vae_latents_reconst", "vae_latents_write_key": "vae_latents",
                "images_reconst_write_key": "rgb_reconst", "vae_kl_loss_write_key": "kl_loss",
                "latent_channels": channels, "scaling_factor": SCALING, "sample_posterior": False, "frozen": True},
        "encoder": {"_target_": wrap, "module_dict": encoder},
        "decoder": {"_target_": wrap, "module_dict": decoder},
        "regularizer": {"_target_": _t("regularizers.quantize_fsq.FSQ"), "latents_read_key": "enc_fsq_latents",
                        "quants_write_key": "quants", "tokens_write_key": "tokens", "levels": [8, 8, 8, 5, 5, 5]},
        "flow_matching_noise_module": {"_target_": _t("flow_matching.noise_modules.MinRFNoiseModule"),
                                       "clean_images_read_key": "vae_latents", "noised_images_write_key": "noised_latents",
                                       "timesteps_write_key": "timesteps", "sigmas_write_key": "sigmas"},
        "pipeline": {"_target_": _t("flow_matching.pipelines.MinRFPipeline"), "_partial_": True,
                     "latents_read_key": "quants", "timesteps_read_key": "timesteps",
                     "noised_images_read_key": "noised_latents", "reconst_write_key": "vae_latents_reconst",
                     "out_channels": channels},
    }


# ---------------------------------------------------------------------------------------------
# importing and building the official model
# ---------------------------------------------------------------------------------------------


def _instantiate(node: Any) -> Any:
    """A minimal hydra ``instantiate`` for the config above (used only if hydra is not installed)."""
    if isinstance(node, list):
        return [_instantiate(v) for v in node]
    if not isinstance(node, dict):
        return node
    kwargs = {k: _instantiate(v) for k, v in node.items() if k not in ("_target_", "_partial_")}
    if "_target_" not in node:
        return kwargs
    module, _, name = node["_target_"].rpartition(".")
    target = getattr(importlib.import_module(module), name)
    return functools.partial(target, **kwargs) if node.get("_partial_") else target(**kwargs)


def install_stand_ins() -> List[str]:
    stubbed = []
    try:
        import hydra.utils  # noqa: F401
    except ImportError:
        hydra = types.ModuleType("hydra")
        hydra.utils = types.ModuleType("hydra.utils")
        hydra.utils.instantiate = _instantiate
        sys.modules.update({"hydra": hydra, "hydra.utils": hydra.utils})
        stubbed.append("hydra")
    try:
        import mup  # noqa: F401
    except ImportError:
        mup = types.ModuleType("mup")
        mup.init = types.SimpleNamespace(xavier_uniform_=torch.nn.init.xavier_uniform_,
                                         trunc_normal_=torch.nn.init.trunc_normal_)
        mup.layer = types.ModuleType("mup.layer")
        mup.layer.MuReadout = type("MuReadout", (torch.nn.Linear,), {})
        sys.modules.update({"mup": mup, "mup.layer": mup.layer})
        stubbed.append("mup")
    return stubbed




def build_official(config: Dict[str, Any]) -> torch.nn.Module:
    from flextok.flextok_wrapper import FlexTok

    instantiate = sys.modules["hydra.utils"].instantiate  # the real one, or the stand-in above
    torch.manual_seed(SEED)
    parts = {k: instantiate(v) for k, v in config.items()}
    model = FlexTok(**parts).eval()
    for module in model.modules():  # the release's own SDPA fallback (not reachable from a config)
        if hasattr(module, "use_flex_attention"):
            module.use_flex_attention = False
        if hasattr(module, "return_materialized_mask"):
            module.return_materialized_mask = True
    gen = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith("vae.") and p.abs().max() == 0:
                p.copy_(ZERO_INIT_STD * torch.randn(p.shape, generator=gen))
        head = model.encoder.module_dict["enc_to_latents"].proj.weight
        head.copy_(ENC_HEAD_STD * torch.randn(head.shape, generator=gen))
        registers = model.encoder.module_dict["enc_register_module"].registers
        registers.copy_(REGISTER_STD * torch.randn(registers.shape, generator=gen))
    return model


def save_layouts(model: torch.nn.Module, config: Dict[str, Any], root: Path) -> Dict[str, Path]:
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    hub = root / "hub"
    hub.mkdir()
    (hub / "config.json").write_text(json.dumps(config))
    save_file(state, str(hub / "model.safetensors"))
    single = root / "single.safetensors"
    metadata = {k: str(v) for k, v in config.items()}
    metadata["_target_"] = "flextok.flextok_wrapper.FlexTok"
    save_file(state, str(single), metadata=metadata)
    return {"hub directory": hub, "single file": single}


# ---------------------------------------------------------------------------------------------
# comparisons
# ---------------------------------------------------------------------------------------------


class Report:
    def __init__(self):
        self.checks: List[Dict[str, Any]] = []
        self.info: Dict[str, Any] = {}

    def ids(self, what: str, ours: torch.Tensor, theirs: torch.Tensor) -> None:
        same = tuple(ours.shape) == tuple(theirs.shape)
        differing = int((ours != theirs).sum()) if same else -1
        self.checks.append({"check": what, "kind": "ids", "shape": list(theirs.shape), "ok": same and differing == 0,
                            "differing": differing})

    def close(self, what: str, ours: torch.Tensor, theirs: torch.Tensor, tol: float = TOL) -> None:
        ours, theirs = ours.detach().double(), theirs.detach().double()
        if ours.shape != theirs.shape:
            self.checks.append({"check": what, "kind": "tensor", "ok": False,
                                "error": f"shape {tuple(ours.shape)} vs official {tuple(theirs.shape)}"})
            return
        diff, ref = float((ours - theirs).abs().max()), float(theirs.abs().max())
        self.checks.append({"check": what, "kind": "tensor", "shape": list(theirs.shape), "max_abs_diff": diff,
                            "official_max_abs": ref, "rel_diff": diff / ref if ref else float("inf"), "tol": tol,
                            "ok": diff <= tol})

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c["ok"] for c in self.checks)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


@torch.no_grad()
def official_decode(official, ids: torch.Tensor, ks: List[int], guidance: float, apg: bool, steps: int = STEPS):
    tokens = [ids[i : i + 1, :k] for i, k in enumerate(ks)]
    data = official._prepare_data_dict_for_detokenization(tokens)
    data = official.pipeline(data, generator=torch.Generator().manual_seed(SEED + 7), timesteps=steps,
                             vae_image_sizes=32, verbose=False, guidance_scale=guidance, perform_norm_guidance=apg)
    latents = torch.cat(data[official.pipeline.reconst_write_key])
    data = official.vae.decode(data)
    return latents, torch.cat(data[official.image_write_key])


@torch.no_grad()
def ours_decode(ours, ids: torch.Tensor, ks: List[int], guidance: float, apg: bool, steps: int = STEPS):
    latents = ours.sample_latents(ids, num_tokens=torch.tensor(ks), steps=steps, guidance=guidance, apg=apg,
                                  generator=torch.Generator().manual_seed(SEED + 7))
    return latents, ours.vae.decode_signed(latents)


def run(report: Report, tree: Path, images: torch.Tensor) -> None:
    from vistok.models.flextok.convert import load_official

    sys.path.insert(0, str(tree))
    report.info["stand_ins"] = install_stand_ins()
    config = official_config()
    official, seconds = timed(lambda: build_official(config))
    report.info["official_params_M"] = round(sum(p.numel() for p in official.parameters()) / 1e6, 1)
    print(f"built the official FlexTok d12_d12 ({report.info['official_params_M']}M parameters) in {seconds:.0f}s",
          flush=True)
    signed = images * 2 - 1
    with tempfile.TemporaryDirectory() as tmp:
        paths = save_layouts(official, config, Path(tmp))
        models = {name: load_official(path) for name, path in paths.items()}
    ours = models["hub directory"]
    same = all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), models["single file"].state_dict().values()))
    report.checks.append({"check": "both official layouts convert to the same weights", "kind": "ids", "shape": [],
                          "ok": same, "differing": 0 if same else -1})
    report.info["tokzoo_config"] = {k: v for k, v in ours.config.to_dict().items() if not k.startswith("repa")}

    with torch.no_grad():
        official.tokenize(signed)  # warm-up (first-call allocations) for the timings
        ours.encode(images)
        theirs_ids, t_official = timed(lambda: torch.cat(official.tokenize(signed)))
        ids, t_ours = timed(lambda: ours.encode(images))
    report.ids("token ids (4 photos x 256)", ids, theirs_ids)
    report.info["unique_ids"] = int(theirs_ids.unique().numel())
    pairs = [(theirs_ids[i] != theirs_ids[j]).float().mean().item() for i in range(4) for j in range(i + 1, 4)]
    report.info["min_fraction_of_ids_differing_between_photos"] = round(min(pairs), 4)
    report.info["speed"] = {"tokenize 4 images, s": {"official": round(t_official, 2), "tokzoo": round(t_ours, 2)}}

    for name, ks, guidance, apg in DECODES:
        official_decode(official, theirs_ids, ks, guidance, apg, steps=1)  # warm-up, same shapes
        ours_decode(ours, ids, ks, guidance, apg, steps=1)
        (lat_theirs, img_theirs), t_official = timed(lambda: official_decode(official, theirs_ids, ks, guidance, apg))
        (lat_ours, img_ours), t_ours = timed(lambda: ours_decode(ours, ids, ks, guidance, apg))
        report.close(f"{name}: latents", lat_ours, lat_theirs)
        report.close(f"{name}: pixels", img_ours, img_theirs)
        report.info["speed"][f"detokenize 4 images, {STEPS} steps, {name}, s"] = {
            "official": round(t_official, 2), "tokzoo": round(t_ours, 2)}
        print(f"  {name}: official {t_official:.1f}s, tokzoo {t_ours:.1f}s", flush=True)
    spread = (lat_theirs[1:] - lat_theirs[:1]).abs().max().item()
    report.info["latent_spread_between_k"] = round(spread, 4)
    with torch.no_grad():  # same latents through both VAE decoders in float64
        z = lat_theirs[:1].double() / SCALING
        theirs64 = official.vae.vae.double().decode(z).sample
        ours64 = ours.vae.autoencoder.double().decode(z).sample
    report.close("fp64: VAE decoder, same latents (1 image)", ours64, theirs64, tol=TOL64)


def format_table(report: Report, header: List[str]) -> str:
    lines = header + [""]
    row = "{:<58} {:>12} {:>12} {:>10} {:>7}  {}"
    lines.append(row.format("check", "max|diff|", "max|ref|", "rel", "tol", "result"))
    lines.append("-" * 112)
    for c in report.checks:
        if c["kind"] == "ids":
            lines.append(row.format(c["check"], "equal" if c["ok"] else f"{c['differing']} differ", "", "", "exact",
                                    "ok" if c["ok"] else "FAIL"))
        elif "error" in c:
            lines.append(row.format(c["check"], "", "", "", "", "FAIL " + c["error"]))
        else:
            lines.append(row.format(c["check"], f"{c['max_abs_diff']:.3e}", f"{c['official_max_abs']:.3e}",
                                    f"{c['rel_diff']:.2e}", f"{c['tol']:.0e}", "ok" if c["ok"] else "FAIL"))
    i = report.info
    lines += ["", f"official parameters {i.get('official_params_M')}M; unique ids {i.get('unique_ids')}/1024; "
                  f"min fraction of ids differing between two photos {i.get('min_fraction_of_ids_differing_between_photos')}; "
                  f"max latent change between k=1 and the others {i.get('latent_spread_between_k')}; "
                  f"stand-ins used: {i.get('stand_ins') or 'none'}", "",
              "speed (same inputs, CPU fp32, one run each after a warm-up; the official code runs the CFG passes one after the other, "
              "tokzoo batches them)"]
    for what, t in i.get("speed", {}).items():
        lines.append(f"  {what:<70} official {t['official']:>7.2f}   tokzoo {t['tokzoo']:>7.2f}")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("official_tree", type=Path, help="apple/ml-flextok source tree (with flextok/)")
    parser.add_argument("--official-git-dir", default=None, help="git dir the tree came from (for the commit)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "parity_flextok")
    args = parser.parse_args(argv)
    tree = args.official_tree.resolve()
    if not (tree / "flextok" / "flextok_wrapper.py").is_file():
        parser.error(f"{tree}: not an apple/ml-flextok tree (no flextok/flextok_wrapper.py)")
    from vistok.data.bundled import load_samples

    report = Report()
    start = time.time()
    try:
        run(report, tree, load_samples())
    except Exception as err:  # report the failure, keep the partial results
        import traceback

        traceback.print_exc()
        report.checks.append({"check": "run", "kind": "tensor", "ok": False, "error": f"{type(err).__name__}: {err}"})
    report.info["seconds"] = round(time.time() - start, 1)
    provenance = tree_provenance(tree, args.official_git_dir, "flextok")
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    header = [
        "Parity: tokzoo FlexTok vs the official apple/ml-flextok classes, d12_d12 size, seeded random weights",
        f"date {now}  torch {torch.__version__}  {platform.machine()} threads {torch.get_num_threads()}  "
        f"inputs: 4 bundled photos 256x256, fp32, {STEPS} sampling steps, wall {report.info['seconds']}s",
        "command: python eval/parity_flextok.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        f"ml-flextok commit {provenance['commit']}  flextok/*.py sha256 {provenance['sha256'][:16]}",
    ]
    table = format_table(report, header) + "\n\n" + ("ALL PASS" if report.ok else "FAILURES")
    print("\n" + table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"date": now, "torch": torch.__version__, "python": platform.python_version(), "tolerance_abs": TOL,
              "seed": SEED, "steps": STEPS, "official": provenance, "all_ok": report.ok, "checks": report.checks,
              "info": report.info, "argv": argv if argv is not None else sys.argv[1:]}
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    args.out.with_suffix(".txt").write_text(table + "\n")
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.txt')}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
