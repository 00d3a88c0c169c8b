"""One pass of a tokenizer over an evaluation set: reconstructions from clean tokens and, for pFID,
from perturbed tokens, each scored against the originals.

Per image and per variant (``clean`` or one ``(alpha, delta)`` point, each at every token count k
asked for: the first k ids decoded) the pass keeps the Inception features of the uint8-rounded
reconstruction, PSNR, SSIM and LPIPS; the clean token ids feed exact codebook counts. The
originals' features come from the reference cache when the same images were
measured before with the same preprocessing and network, else from this pass (and are cached).

Everything random is seeded per image from ``(seed, image index)`` (see ``tokenizer_runner``):
a sampled VAE posterior, the decoding noise, the perturbations; so a pass gives the same numbers
in every run, at any batch size and process count. Each image is encoded once: a pFID pass
decodes its clean variant from the very ids it perturbs (pFID at alpha=0 is the clean rFID).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from vistok.data.images import to_uint8
from vistok.metrics import fid as F
from vistok.metrics.extract import check_shardable
from vistok.metrics.gather import RowCollector, process_info, shard
from vistok.metrics.image_quality import psnr, ssim
from vistok.metrics.inception import InceptionFeatures
from vistok.metrics.lpips_metric import LPIPSMetric
from vistok.metrics.reference_stats import Reference, cached, key_for, store
from vistok.metrics.samples import SampleSource
from vistok.metrics.tokenizer_runner import TokenizerRunner
from vistok.quant.stats import CodebookUsage

CLEAN = "clean"


@dataclass
class PassSettings:
    """Options of a reconstruction pass (metrics beyond FID are opt-in where they cost time)."""

    batch_size: int = 32
    kid: bool = False
    prc: bool = False
    isc: bool = False
    fid_method: str = "auto"
    use_cache: bool = True
    grid_images: int = 8
    progress: bool = False
    num_tokens: Sequence[int] = ()  # decode the first k ids for each k (1D tokenizers); empty: all ids once


@dataclass
class PassOutput:
    """Per-variant metrics, the reference used, codebook use (clean ids), and the first images of
    each variant for the report (rank 0 only)."""

    variants: Dict[str, Dict[str, float]]
    reference: Reference
    codebook: Optional[Dict[str, float]]
    grid: Dict[str, torch.Tensor] = field(default_factory=dict)


def variant_name(alpha: float, delta: int) -> str:
    return f"alpha={alpha:g},delta={delta}"


def at_k(name: str, k: Optional[int]) -> str:
    """A variant's name when only the first ``k`` ids are decoded (None: all of them)."""
    return name if k is None else f"{name}@k={k}"


def token_counts(settings: PassSettings) -> List[Optional[int]]:
    """The prefixes a pass decodes, ascending: ``[None]`` (all ids) when none were asked for."""
    return sorted({int(k) for k in settings.num_tokens}) or [None]


def reconstruction_pass(runner: TokenizerRunner, source: SampleSource, inception: InceptionFeatures,
                        lpips: Optional[LPIPSMetric], settings: PassSettings,
                        perturbations: Sequence[Tuple[float, int]] = (), seed: int = 0) -> PassOutput:
    """Run the tokenizer over ``source`` (clean, then each ``(alpha, delta)``, each at every token
    count of ``settings.num_tokens``) and score everything."""
    from tqdm.auto import tqdm

    check_shardable(len(source), str(source.describe().get("path", "dataset")))
    need_features = settings.kid or settings.prc
    fingerprint = source.fingerprint() if settings.use_cache else None
    key = key_for(source, fingerprint, inception)
    reference = cached(key, need_features) if key else None
    usage = CodebookUsage(runner.codebook_size) if runner.codebook_size else None
    ks = token_counts(settings)
    if ks != [None]:
        runner.check_prefixes(ks)
    variants = [(at_k(CLEAN, k), None, k) for k in ks]
    variants += [(at_k(variant_name(a, d), k), (a, d), k) for a, d in perturbations for k in ks]
    rows, grid = RowCollector(), {}
    rank0 = process_info()[0] == 0
    start, stop = shard(len(source))
    with tqdm(total=stop - start, unit="img", desc="reconstruct", disable=not settings.progress) as bar:
        for indices, images in source.batches(start, stop, settings.batch_size):
            x = images.float() / 255
            out: Dict[str, torch.Tensor] = {}
            if reference is None:
                out["original/feat"] = inception(images)["2048"]
            perturbed = {}
            if perturbations:  # one encoding: the clean ids are those the perturbations start from
                z, quantized = runner.quantizer_input(x, indices, seed)
                clean = runner.clean_ids(quantized)
                perturbed = {point: runner.perturbed_ids(z, quantized, indices, point[0], point[1], seed, ks)
                             for point in perturbations}
            else:
                clean = runner.encode(x, indices, seed)
            if usage is not None:
                usage.update(clean.cpu())
            for name, point, k in variants:
                ids = clean
                if point is not None:
                    ids, replaced = perturbed[point]
                    out[f"{name}/replaced"] = replaced[k]
                if k is not None:
                    ids = ids[:, :k]
                recon = to_uint8(runner.decode(ids, indices, seed)).cpu()
                feats = inception(recon)
                out[f"{name}/feat"] = feats["2048"]
                if settings.isc:
                    out[f"{name}/logits"] = feats["logits_unbiased"]
                restored = recon.float() / 255
                out[f"{name}/psnr"] = psnr(restored, x)
                out[f"{name}/ssim"] = ssim(restored, x)
                if lpips is not None and lpips.available:
                    out[f"{name}/lpips"] = lpips(restored, x)
                if name not in grid and rank0:
                    grid[name] = recon[: settings.grid_images]
            if "original" not in grid and rank0:
                grid["original"] = images[: settings.grid_images]
            rows.add(indices, **out)
            bar.update(len(indices))
    data = rows.gathered()
    if reference is None:
        description = {"source": "computed from the evaluated originals", **source.describe(),
                       "content_sha256": fingerprint}
        reference = store(key, data["original/feat"], description, keep_features=need_features,
                          write=rank0)
    results = {name: _score(data, name, reference, settings) for name, _, _ in variants}
    codebook = usage.compute() if usage is not None else None
    return PassOutput(results, reference, codebook, grid)


def _score(data: Dict[str, torch.Tensor], name: str, reference: Reference, settings: PassSettings) -> Dict[str, float]:
    feats = data[f"{name}/feat"]
    out = {"fid": F.frechet_distance(F.FeatureStats.from_features(feats), reference.stats, settings.fid_method),
           "psnr": _finite_mean(data[f"{name}/psnr"]), "ssim": float(data[f"{name}/ssim"].mean()),
           "num_images": int(feats.shape[0])}
    if f"{name}/lpips" in data:
        out["lpips"] = float(data[f"{name}/lpips"].mean())
    if f"{name}/replaced" in data:
        out["replaced_fraction"] = float(data[f"{name}/replaced"].double().mean())
    if settings.kid:
        out.update(F.kernel_inception_distance(feats, reference.features))
    if settings.prc:
        out.update(F.precision_recall(feats, reference.features))
    if settings.isc:
        out.update(F.inception_score(data[f"{name}/logits"]))
    return out


def _finite_mean(values: torch.Tensor) -> float:
    """Mean PSNR over images; identical reconstructions (infinite PSNR) are capped at 100 dB."""
    return float(values.clamp(max=100.0).mean())


def variant_points(alphas: Sequence[float], deltas: Sequence[int]) -> List[Tuple[float, int]]:
    """The (alpha, delta) grid, alpha-major."""
    return [(float(a), int(d)) for a in alphas for d in deltas]
