"""Parity with the OFFICIAL TiTok / MaskGIT-VQGAN / One-D-Piece model classes.

What it proves: for each case below, the official model class (bytedance/1d-tokenizer or
turingmotors/One-D-Piece, imported from a source tree given on the command line) is built from
an official config with seeded random weights (its own init, see "Weights" below); its
``state_dict()`` is converted and loaded *strictly* into tokzoo's model
(:func:`vistok.models.titok.convert.load_titok_state_dict` with :func:`vistok.models.titok.convert.config_from_official`,
or :func:`vistok.models.maskgit_vqgan.convert.load_maskgit_state_dict`); both run in eval mode, fp32, on the four
bundled real photos (``vistok.data.bundled.load_samples()``, 256x256 in [0, 1]). Checked per case:

- token ids identical (exact), VQ cases;
- pre-quantization latents (encoder output; for the KL variants also the posterior mean);
- decoded images, end to end (each side decodes its own ids / posterior mean);
- One-D-Piece: decoding a prefix, official ``decode_tokens(ids, length=k)`` vs ours
  ``decode(ids[:, :k])``;
- MaskGIT-VQGAN: the official ``PretrainedTokenizer`` (``modeling/titok.py``) vs
  :class:`vistok.models.maskgit_vqgan.MaskGITVQGAN`, raw decoder output and the official clamped
  ``decode``.

Tensors pass when ``max |ours - official| <= 1e-4`` (fp32, absolute; relative to ``max |official|``
is reported too). Each TiTok / One-D-Piece case also repeats encoder and decoder on one photo in
float64 (tolerance 1e-9), which shows that the fp32 differences (up to ~5e-5 on the two-stage
images, where the MaskGIT-VQGAN pixel decoder amplifies ~1e-6 attention-kernel rounding) are
rounding, not a mismatch. The exit code is non-zero if any ids differ or any tolerance is exceeded.
Results go to ``eval/results/parity_titok.{json,txt}`` (``--out`` to change).

Cases: by default TiTok-S-128 (two-stage, legacy), TiTok-BL-64 VQ-8k, TiTok-BL-64 VAE,
MaskGIT-VQGAN and (with ``--one-d-piece``) One-D-Piece-S-256, about 3 minutes on 2 CPU cores;
``--all`` adds the other six released TiTok configs and One-D-Piece B/L-256 (about 10 minutes).

Getting the official trees (their code is NEVER copied into this repository; it is imported
from the directory given on the command line, at run time only)::

    git clone https://github.com/bytedance/1d-tokenizer /tmp/official/1d
    git clone https://github.com/turingmotors/One-D-Piece /tmp/official/odp
    # or, from a bare mirror (a partial mirror may lack asset blobs: ask for the code paths only)
    mkdir -p /tmp/official/1d && git --git-dir=MIRROR/1d-tokenizer.git archive HEAD modeling configs \\
        | tar -x -C /tmp/official/1d

    python eval/parity_titok.py /tmp/official/1d --one-d-piece /tmp/official/odp \\
        [--official-git-dir MIRROR/1d-tokenizer.git --odp-git-dir MIRROR/One-D-Piece.git]

The official commit is recorded from ``git -C TREE rev-parse HEAD`` (a clone) or from the
``--*-git-dir`` given (an archive); a SHA-256 over the tree's ``modeling/**/*.py`` is recorded
either way. Their model code needs einops, omegaconf, huggingface_hub and accelerate at run
time (not tokzoo dependencies).

Weights: each official model keeps its own random initialisation under ``torch.manual_seed``,
then, with a seeded generator, (a) every LayerNorm / GroupNorm weight and bias is perturbed
(N(0, 0.1^2)) so no norm is the identity and a transposed or swapped affine would show;
(b) TiTok's ``latent_tokens`` are scaled by 0.1 so the tokens depend more on the image;
(c) codebooks the official init makes tiny relative to the latents (uniform in
+-1/K: the plain-L2 VQ-8k codebook, the MaskGIT-VQGAN codebook) are redrawn from a Gaussian
with the per-channel mean / std of the official encoder's output on the photos, so the nearest
code is decided by a real margin, not by fp32 rounding; the two-stage pixel codebook
(``pixel_quantize``) is redrawn N(0, 1) and the last head conv scaled by 10, so the soft
MaskGIT-VQGAN embedding, and hence the image, depends on the ids. Diagnostics per case: unique
ids, the fraction of token positions whose id differs between two photos (min over pairs), and
the smallest top-1 / top-2 distance gap of the official quantizer (fp64), so exact id equality
is seen to be meaningful.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import json
import os
import platform
import sys
import tempfile
import time
import types
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from torch import nn

from provenance import tree_provenance  # eval/ is on sys.path when a script here runs

TOL = 1e-4  # fp32 absolute, images and latents
TOL64 = 1e-9  # the same computations in float64 (one photo): shows fp32 differences are rounding
SEED = 0
NORM_NOISE = 0.1
LATENT_TOKEN_SCALE = 0.1
PIXEL_HEAD_SCALE = 10.0

# ---------------------------------------------------------------------------------------------
# importing the official code from a tree
# ---------------------------------------------------------------------------------------------

# Loss / training modules that their ``modeling/modules/__init__.py`` imports eagerly; they pull
# torchvision, diffusion code, lpips downloads... and are unrelated to the model classes. They are
# stubbed only if the plain import fails.
_UNRELATED = {
    "modeling.modules.losses": ["ReconstructionLoss_Stage1", "ReconstructionLoss_Stage2",
                                "ReconstructionLoss_Single_Stage", "MLMLoss", "ARLoss"],
    "modeling.modules.ema_model": ["EMAModel"],
}


def _purge_modeling() -> None:
    for name in [n for n in sys.modules if n == "modeling" or n.startswith("modeling.")]:
        del sys.modules[name]


@contextlib.contextmanager
def official_tree(tree: Path):
    """Make ``modeling.*`` resolve to ``tree`` (the two official repos both call their package
    ``modeling``, so only one is importable at a time)."""
    if not (tree / "modeling" / "titok.py").is_file():
        raise SystemExit(f"{tree}: not an official source tree (no modeling/titok.py)")
    _purge_modeling()
    sys.path.insert(0, str(tree))
    try:
        yield
    finally:
        sys.path.remove(str(tree))
        _purge_modeling()


def import_official(module: str) -> types.ModuleType:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # their torch.cuda.amp.autocast deprecation warnings
        try:
            return importlib.import_module(module)
        except ImportError as err:
            print(f"  plain import of {module} failed ({err}); stubbing unrelated training modules "
                  f"{sorted(_UNRELATED)}")
            _purge_modeling()
            for name, attrs in _UNRELATED.items():
                stub = types.ModuleType(name)
                for attr in attrs:
                    setattr(stub, attr, type(attr, (), {}))
                sys.modules[name] = stub
            return importlib.import_module(module)




def load_yaml(tree: Path, rel: str) -> Dict[str, Any]:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(tree / rel), resolve=True)


# ---------------------------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def perturb_norms(model: nn.Module, gen: torch.Generator) -> int:
    count = 0
    for _, module in model.named_modules():
        if isinstance(module, (nn.LayerNorm, nn.GroupNorm)) and module.weight is not None:
            module.weight.add_(NORM_NOISE * torch.randn(module.weight.shape, generator=gen))
            module.bias.add_(NORM_NOISE * torch.randn(module.bias.shape, generator=gen))
            count += 1
    return count


@torch.no_grad()
def fit_codebook(weight: torch.Tensor, z_rows: torch.Tensor, gen: torch.Generator) -> None:
    """Redraw codes from a Gaussian with the per-channel mean / std of the latents ``(M, d)``."""
    mean, std = z_rows.mean(0), z_rows.std(0)
    weight.copy_(mean + std * torch.randn(weight.shape, generator=gen))


def min_margin(z_rows: torch.Tensor, codebook: torch.Tensor, l2: bool) -> float:
    """Smallest gap between the nearest and second-nearest squared distance (fp64)."""
    z, e = z_rows.double(), codebook.double()
    if l2:
        z, e = nn.functional.normalize(z, dim=-1), nn.functional.normalize(e, dim=-1)
    d = torch.cdist(z, e).pow(2)
    top2 = d.topk(2, dim=1, largest=False).values
    return float((top2[:, 1] - top2[:, 0]).min())


def id_diagnostics(ids: torch.Tensor) -> Dict[str, Any]:
    b = ids.shape[0]
    pairs = [(ids[i] != ids[j]).float().mean().item() for i in range(b) for j in range(i + 1, b)]
    return {"unique_ids": int(ids.unique().numel()), "num_ids": int(ids.numel()),
            "min_fraction_differing_between_images": round(min(pairs), 4) if pairs else None}


# ---------------------------------------------------------------------------------------------
# comparisons
# ---------------------------------------------------------------------------------------------


class Case:
    def __init__(self, name: str, description: str):
        self.name, self.description = name, description
        self.checks: List[Dict[str, Any]] = []
        self.info: Dict[str, Any] = {}

    def ids(self, what: str, ours: torch.Tensor, theirs: torch.Tensor) -> None:
        same_shape = tuple(ours.shape) == tuple(theirs.shape)
        differing = int((ours != theirs).sum()) if same_shape else -1
        self.checks.append({"check": what, "kind": "ids", "shape": list(theirs.shape),
                            "ok": same_shape and differing == 0, "differing": differing})

    def close(self, what: str, ours: torch.Tensor, theirs: torch.Tensor, tol: float = TOL) -> None:
        ours, theirs = ours.detach().double(), theirs.detach().double()  # exact for fp32 inputs
        if tuple(ours.shape) != tuple(theirs.shape):
            self.checks.append({"check": what, "kind": "tensor", "ok": False,
                                "error": f"shape {tuple(ours.shape)} vs official {tuple(theirs.shape)}"})
            return
        diff = float((ours - theirs).abs().max())
        ref = float(theirs.abs().max())
        self.checks.append({"check": what, "kind": "tensor", "shape": list(theirs.shape), "max_abs_diff": diff,
                            "official_max_abs": ref, "rel_diff": diff / ref if ref else float("inf"),
                            "tol": tol, "ok": diff <= tol})

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c["ok"] for c in self.checks)


def to_tokens_last(z: torch.Tensor) -> torch.Tensor:
    """Official ``[B, C, 1, N]`` -> tokzoo ``(B, N, C)``."""
    return z.squeeze(2).transpose(1, 2)


# ---------------------------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------------------------


def build_official_titok(cls: type, config: Dict[str, Any], images: torch.Tensor, gen: torch.Generator,
                         info: Dict[str, Any]) -> nn.Module:
    torch.manual_seed(SEED)
    model = cls(config).eval()
    info["norms_perturbed"] = perturb_norms(model, gen)
    with torch.no_grad():
        model.latent_tokens.mul_(LATENT_TOKEN_SCALE)
        vq = config["model"]["vq_model"]
        if vq.get("quantize_mode", "vq") == "vq" and not vq.get("use_l2_norm", False):
            z = model.encoder(pixel_values=images, latent_tokens=model.latent_tokens)
            fit_codebook(model.quantize.embedding.weight, to_tokens_last(z).reshape(-1, z.shape[1]), gen)
            info["codebook"] = "refit to the encoder output (per-channel Gaussian)"
        if hasattr(model, "pixel_quantize"):
            model.pixel_quantize.embedding.weight.copy_(torch.randn(model.pixel_quantize.embedding.weight.shape,
                                                                    generator=gen))
            model.decoder.ffn[2].weight.mul_(PIXEL_HEAD_SCALE)
            info["pixel_codebook"] = f"N(0,1); head ffn.2 weight x{PIXEL_HEAD_SCALE:g}"
    return model


def ours_from_official(official: nn.Module, config: Dict[str, Any]):
    from vistok.models.titok.convert import config_from_official, load_titok_state_dict
    from vistok.models.titok import TiTok

    cfg = config_from_official(config)
    model = TiTok(cfg)
    load_titok_state_dict(model, official.state_dict(), "official state_dict")
    return model.eval(), cfg


@torch.no_grad()
def run_titok_vq(case: Case, cls: type, config: Dict[str, Any], images: torch.Tensor, device: torch.device,
                 prefixes: List[int] = ()) -> None:
    gen = torch.Generator().manual_seed(SEED + 1)
    official = build_official_titok(cls, config, images, gen, case.info)
    ours, cfg = ours_from_official(official, config)
    official, ours, images = official.to(device), ours.to(device), images.to(device)
    case.info["tokzoo_config"] = {k: v for k, v in cfg.to_dict().items() if k not in ("pixel_decoder",)}
    case.info["params_M"] = round(sum(p.numel() for p in official.parameters()) / 1e6, 1)

    z_theirs = official.encoder(pixel_values=images, latent_tokens=official.latent_tokens)
    z_ours = ours.encoder(images)
    case.close("pre-quant latent", z_ours, to_tokens_last(z_theirs))

    _, result = official.encode(images)
    ids_theirs = result["min_encoding_indices"].squeeze(1)
    ids_ours = ours.encode(images)
    case.ids("token ids", ids_ours, ids_theirs)
    case.info.update(id_diagnostics(ids_theirs))
    l2 = bool(config["model"]["vq_model"].get("use_l2_norm", False))
    case.info["min_top2_gap"] = min_margin(to_tokens_last(z_theirs).reshape(-1, z_theirs.shape[1]),
                                           official.quantize.embedding.weight, l2)

    img_theirs = official.decode_tokens(result["min_encoding_indices"])
    img_ours = ours.decode(ids_ours)
    case.close("decoded image", img_ours, img_theirs)
    case.info["image_spread_between_photos"] = float((img_theirs - img_theirs.mean(0)).abs().max())
    if not torch.equal(ids_ours, ids_theirs):  # localise: the decoder on the official ids
        case.close("decoded image (official ids)", ours.decode(ids_theirs), img_theirs)
    for k in prefixes:
        case.close(f"decode prefix k={k}", ours.decode(ids_ours[:, :k]),
                   official.decode_tokens(result["min_encoding_indices"], length=k))

    # float64, one photo, the official code vector as the decoder input (both quantizers
    # search and look up in fp32 by design, so the codes are taken from the official module)
    official, ours, x = official.double(), ours.double(), images[:1].double()
    z64 = official.encoder(pixel_values=x, latent_tokens=official.latent_tokens)
    case.close("fp64: pre-quant latent (1 photo)", ours.encoder(x), to_tokens_last(z64), tol=TOL64)
    codes = official.quantize.get_codebook_entry(ids_theirs[:1].reshape(-1)).reshape(1, ids_theirs.shape[1], -1)
    case.close("fp64: decoder, same code vectors", ours.decode_latent(codes),
               official.decode(codes.transpose(1, 2).unsqueeze(2)), tol=TOL64)


@torch.no_grad()
def run_titok_vae(case: Case, cls: type, config: Dict[str, Any], images: torch.Tensor,
                  device: torch.device) -> None:
    gen = torch.Generator().manual_seed(SEED + 1)
    official = build_official_titok(cls, config, images, gen, case.info)
    ours, cfg = ours_from_official(official, config)
    official, ours, images = official.to(device), ours.to(device), images.to(device)
    case.info["tokzoo_config"] = {k: v for k, v in cfg.to_dict().items() if k not in ("pixel_decoder",)}
    case.info["params_M"] = round(sum(p.numel() for p in official.parameters()) / 1e6, 1)

    z_theirs = official.encoder(pixel_values=images, latent_tokens=official.latent_tokens)
    case.close("pre-quant latent (mean|logvar)", ours.encoder(images), to_tokens_last(z_theirs))
    posterior = official.encode(images)[1]
    mean_theirs = posterior.mode()  # [B, 16, 1, N]
    mean_ours = ours.encode(images)  # (B, N, 16), the posterior mean
    case.close("posterior mean", mean_ours, to_tokens_last(mean_theirs))
    img_theirs = official.decode(mean_theirs)
    img_ours = ours.decode(mean_ours)
    case.close("decoded image (from mean)", img_ours, img_theirs)
    case.info["image_spread_between_photos"] = float((img_theirs - img_theirs.mean(0)).abs().max())

    # float64, one photo (their Gaussian casts to fp32, so the mean is sliced from the encoder output)
    official, ours, x = official.double(), ours.double(), images[:1].double()
    z64 = official.encoder(pixel_values=x, latent_tokens=official.latent_tokens)
    case.close("fp64: pre-quant latent (1 photo)", ours.encoder(x), to_tokens_last(z64), tol=TOL64)
    mean64 = z64[:, : z64.shape[1] // 2]
    case.close("fp64: decoder, same mean", ours.decode(to_tokens_last(mean64)), official.decode(mean64), tol=TOL64)


@torch.no_grad()
def run_maskgit(case: Case, titok_module: types.ModuleType, images: torch.Tensor, device: torch.device) -> None:
    from omegaconf import OmegaConf

    from vistok.models.maskgit_vqgan.convert import load_maskgit_state_dict
    from vistok.models.maskgit_vqgan import MaskGITVQGAN, MaskGITVQGANConfig

    vqgan = importlib.import_module("modeling.modules.maskgit_vqgan")
    # the same config PretrainedTokenizer hard-codes (the released f16-256 weights)
    conf = OmegaConf.create({"channel_mult": [1, 1, 2, 2, 4], "num_resolutions": 5, "dropout": 0.0,
                             "hidden_channels": 128, "num_channels": 3, "num_res_blocks": 2, "resolution": 256,
                             "z_channels": 256})
    torch.manual_seed(SEED)
    parts = nn.Module()
    parts.encoder, parts.decoder = vqgan.Encoder(conf), vqgan.Decoder(conf)
    parts.quantize = vqgan.VectorQuantizer(num_embeddings=1024, embedding_dim=256, commitment_cost=0.25)
    gen = torch.Generator().manual_seed(SEED + 1)
    case.info["norms_perturbed"] = perturb_norms(parts, gen)
    z = parts.encoder(images)
    fit_codebook(parts.quantize.embedding.weight, z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]), gen)
    case.info["codebook"] = "refit to the encoder output (per-channel Gaussian)"
    # the official wrapper class loads its weights from a file: give it one
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "maskgit_random.bin")
        torch.save(parts.state_dict(), path)
        official = titok_module.PretrainedTokenizer(path)
    case.info["params_M"] = round(sum(p.numel() for p in official.parameters()) / 1e6, 1)

    ours = MaskGITVQGAN(MaskGITVQGANConfig())
    load_maskgit_state_dict(ours, official.state_dict(), "official state_dict")
    official, ours, images = official.to(device), ours.eval().to(device), images.to(device)

    z_theirs = official.encoder(images)
    case.close("pre-quant latent", ours.encoder(images), z_theirs)
    ids_theirs = official.encode(images)  # (B, 256)
    ids_ours = ours.encode(images)
    case.ids("token ids", ids_ours, ids_theirs)
    case.info.update(id_diagnostics(ids_theirs))
    case.info["min_top2_gap"] = min_margin(z_theirs.permute(0, 2, 3, 1).reshape(-1, 256),
                                           official.quantize.embedding.weight, False)
    raw_theirs = official.decoder(official.quantize.get_codebook_entry(ids_theirs))
    raw_ours = ours.decode(ids_ours)
    case.close("decoded image (raw decoder output)", raw_ours, raw_theirs)
    case.close("decoded image (official clamped decode)", raw_ours.clamp(0.0, 1.0), official.decode(ids_theirs))
    case.info["image_spread_between_photos"] = float((raw_theirs - raw_theirs.mean(0)).abs().max())
    if not torch.equal(ids_ours, ids_theirs):
        case.close("decoded image (official ids)", ours.decode(ids_theirs), raw_theirs)


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------

CASES_1D = {
    # name: (description, config yaml, runner)
    "titok_s128": ("TiTok-S-128, two-stage (MaskGIT-VQGAN pixel decoder), legacy layout, VQ 4096x12 cosine",
                   "configs/infer/TiTok/titok_s128.yaml", "vq"),
    "titok_bl64_vq8k": ("TiTok-BL-64 VQ-8k, single stage (pixel decoder), non-legacy, VQ 8192x64 L2",
                        "configs/infer/TiTok/titok_bl64_vq8k.yaml", "vq"),
    "titok_bl64_vae_c16": ("TiTok-BL-64 VAE c16, single stage, non-legacy, KL 16 channels",
                           "configs/infer/TiTok/titok_bl64_vae_c16.yaml", "vae"),
    "maskgit_vqgan": ("MaskGIT-VQGAN f16-256 full tokenizer (official PretrainedTokenizer)", None, "maskgit"),
    # --all: the remaining released TiTok configs
    "titok_b64": ("TiTok-B-64, two-stage, legacy layout, VQ 4096x12 cosine",
                  "configs/infer/TiTok/titok_b64.yaml", "vq"),
    "titok_l32": ("TiTok-L-32, two-stage, legacy layout, VQ 4096x12 cosine",
                  "configs/infer/TiTok/titok_l32.yaml", "vq"),
    "titok_sl256_vq8k": ("TiTok-SL-256 VQ-8k, single stage, non-legacy, VQ 8192x64 L2",
                         "configs/infer/TiTok/titok_sl256_vq8k.yaml", "vq"),
    "titok_bl128_vq8k": ("TiTok-BL-128 VQ-8k, single stage, non-legacy, VQ 8192x64 L2",
                         "configs/infer/TiTok/titok_bl128_vq8k.yaml", "vq"),
    "titok_ll32_vae_c16": ("TiTok-LL-32 VAE c16, single stage, non-legacy, KL 16 channels",
                           "configs/infer/TiTok/titok_ll32_vae_c16.yaml", "vae"),
    "titok_bl128_vae_c16": ("TiTok-BL-128 VAE c16, single stage, non-legacy, KL 16 channels",
                            "configs/infer/TiTok/titok_bl128_vae_c16.yaml", "vae"),
}
CASES_ODP = {
    "one_d_piece_s256": ("One-D-Piece-S-256 (OneDPiece), two-stage, legacy layout, VQ 4096x12 cosine; "
                         "prefix decoding", "configs/one-d-piece_s256.yaml", "odp"),
    "one_d_piece_b256": ("One-D-Piece-B-256, as S-256 with base encoder / decoder",
                         "configs/one-d-piece_b256.yaml", "odp"),
    "one_d_piece_l256": ("One-D-Piece-L-256, as S-256 with large encoder / decoder",
                         "configs/one-d-piece_l256.yaml", "odp"),
}
DEFAULT_CASES = {"titok_s128", "titok_bl64_vq8k", "titok_bl64_vae_c16", "maskgit_vqgan", "one_d_piece_s256"}
ODP_PREFIXES = [1, 16, 128]


def format_table(cases: List[Case], header: List[str]) -> str:
    lines = header + [""]
    row = "{:<20} {:<40} {:>12} {:>12} {:>10} {:>10}  {}"
    lines.append(row.format("case", "check", "max|diff|", "max|ref|", "rel", "tol", "result"))
    lines.append("-" * 118)
    for case in cases:
        for c in case.checks:
            if c["kind"] == "ids":
                lines.append(row.format(case.name, c["check"] + f" {tuple(c['shape'])}",
                                        "equal" if c["ok"] else f"{c['differing']} differ", "", "", "exact",
                                        "ok" if c["ok"] else "FAIL"))
            elif "error" in c:
                lines.append(row.format(case.name, c["check"], "", "", "", "", "FAIL " + c["error"]))
            else:
                lines.append(row.format(case.name, c["check"], f"{c['max_abs_diff']:.3e}",
                                        f"{c['official_max_abs']:.3e}", f"{c['rel_diff']:.2e}", f"{c['tol']:.0e}",
                                        "ok" if c["ok"] else "FAIL"))
        if "error" in case.info:
            lines.append(row.format(case.name, "(case raised)", "", "", "", "", "FAIL " + case.info["error"]))
    lines.append("")
    lines.append("diagnostics (official side): unique ids / ids; min fraction of positions whose id differs "
                 "between two photos; min top-1/top-2 squared-distance gap; max |image - batch mean|; wall s")
    for case in cases:
        i = case.info
        if i.get("min_top2_gap") is not None:
            ids = (f"ids {i['unique_ids']}/{i['num_ids']}  differ {i['min_fraction_differing_between_images']}  "
                   f"gap {i['min_top2_gap']:.2e}")
        else:
            ids = "continuous tokens"
        lines.append(f"  {case.name:<20} {ids}  spread {i.get('image_spread_between_photos', float('nan')):.3g}  "
                     f"params {i.get('params_M', '-')}M  {i.get('seconds', float('nan')):.1f}s")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("official_tree", type=Path, help="bytedance/1d-tokenizer source tree")
    parser.add_argument("--one-d-piece", type=Path, default=None, help="turingmotors/One-D-Piece source tree")
    parser.add_argument("--official-git-dir", default=None, help="git dir the 1d-tokenizer tree came from")
    parser.add_argument("--odp-git-dir", default=None, help="git dir the One-D-Piece tree came from")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cases", nargs="*", default=None,
                        help=f"case names (default: {' '.join(sorted(DEFAULT_CASES))})")
    parser.add_argument("--all", action="store_true", help="every case: all nine released TiTok configs, "
                        "MaskGIT-VQGAN, One-D-Piece S/B/L (much slower on a CPU)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "parity_titok")
    args = parser.parse_args(argv)

    from vistok.data.bundled import load_samples

    device = torch.device(args.device)
    if device.type == "cuda":  # fp32 parity: no TF32 matmuls
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    images = load_samples()
    known = set(CASES_1D) | set(CASES_ODP)
    wanted = None if args.all else set(args.cases) if args.cases else DEFAULT_CASES
    if wanted is not None and wanted - known:
        parser.error(f"unknown case(s) {sorted(wanted - known)}; known: {sorted(known)}")
    cases: List[Case] = []
    provenance = {"1d-tokenizer": tree_provenance(args.official_tree.resolve(), args.official_git_dir, "modeling")}
    plan = [(args.official_tree.resolve(), CASES_1D)]
    if args.one_d_piece is not None:
        provenance["One-D-Piece"] = tree_provenance(args.one_d_piece.resolve(), args.odp_git_dir, "modeling")
        plan.append((args.one_d_piece.resolve(), CASES_ODP))

    for tree, table in plan:
        with official_tree(tree):
            for name, (description, yaml, kind) in table.items():
                if wanted is not None and name not in wanted:
                    continue
                case = Case(name, description)
                cases.append(case)
                print(f"[{name}] {description}", flush=True)
                start = time.time()
                try:  # models are built (and seeded) on the CPU, then moved to --device
                    if kind == "maskgit":
                        case.info["official_class"] = "modeling.titok.PretrainedTokenizer"
                        run_maskgit(case, import_official("modeling.titok"), images, device)
                    elif kind == "odp":
                        config = load_yaml(tree, yaml)
                        case.info.update(official_class="modeling.one_d_piece.OneDPiece", config=yaml)
                        cls = import_official("modeling.one_d_piece").OneDPiece
                        run_titok_vq(case, cls, config, images, device, prefixes=ODP_PREFIXES)
                    else:
                        config = load_yaml(tree, yaml)
                        case.info.update(official_class="modeling.titok.TiTok", config=yaml)
                        cls = import_official("modeling.titok").TiTok
                        (run_titok_vae if kind == "vae" else run_titok_vq)(case, cls, config, images, device)
                except Exception as err:  # report it as a failed case, keep going
                    import traceback

                    traceback.print_exc()
                    case.info["error"] = f"{type(err).__name__}: {err}"
                    case.checks.append({"check": "run", "kind": "tensor", "ok": False, "error": case.info["error"]})
                case.info["seconds"] = round(time.time() - start, 1)
                for c in case.checks:
                    print("   ", {k: v for k, v in c.items() if k != "kind"}, flush=True)

    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    header = [
        "Parity: tokzoo vs the official TiTok / MaskGIT-VQGAN / One-D-Piece classes (seeded random weights)",
        f"date {now}  torch {torch.__version__}  device {device}  {platform.machine()} "
        f"threads {torch.get_num_threads()}  inputs: 4 bundled photos 256x256 in [0,1], fp32",
        "command: python eval/parity_titok.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    ] + [f"{k} commit {v['commit']}  modeling sha256 {v['sha256'][:16]}" for k, v in provenance.items()]
    table = format_table(cases, header)
    all_ok = bool(cases) and all(c.ok for c in cases)
    table += "\n\n" + ("ALL PASS" if all_ok else "FAILURES: " + ", ".join(c.name for c in cases if not c.ok))
    print("\n" + table)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "date": now, "torch": torch.__version__, "python": platform.python_version(), "device": str(device),
        "argv": argv if argv is not None else sys.argv[1:], "tolerance_abs": TOL, "tolerance_abs_fp64": TOL64,
        "seed": SEED, "norm_noise": NORM_NOISE, "latent_token_scale": LATENT_TOKEN_SCALE,
        "pixel_head_scale": PIXEL_HEAD_SCALE,
        "official": provenance, "all_ok": all_ok,
        "cases": [{"name": c.name, "description": c.description, "ok": c.ok, "checks": c.checks, "info": c.info}
                  for c in cases],
    }
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    args.out.with_suffix(".txt").write_text(table + "\n")
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.txt')}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
