"""rFID and pFID of an image tokenizer, as :class:`EvalResult` objects with their protocol.

rFID (TiTok / RobusTok): FID between the reconstructions and the originals of the evaluation set.
pFID (RobusTok, "Robust Latent Matters", Qiu et al. 2025): the same with reconstructions decoded
from perturbed tokens. The authors' pFID script is unreleased; this is tokzoo's implementation of
the paper's definition, labelled as such in every result, with all its parameters.

With several token counts (``PassSettings.num_tokens``, 1D tokenizers such as FlexTok) one pass
scores the first k ids for every k against one measurement of the originals: ``points`` then
hold the numbers per k, and the headline metrics are those of the largest k.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import torch

from vistok.metrics.inception import InceptionFeatures
from vistok.metrics.lpips_metric import LPIPSMetric
from vistok.metrics.protocol import EvalResult, Protocol
from vistok.metrics.recon import (CLEAN, PassOutput, PassSettings, at_k, reconstruction_pass, token_counts,
                                  variant_name, variant_points)
from vistok.metrics.samples import SampleSource
from vistok.metrics.tokenizer_runner import TokenizerRunner

PFID_LABEL = "tokzoo implementation of the RobusTok pFID definition"


def pfid_definition(alphas: Sequence[float], deltas: Sequence[int], seed: int) -> Dict[str, Any]:
    return {
        "name": PFID_LABEL,
        "paper": "Qiu et al. 2025, Robust Latent Matters (arXiv 2503.08354); official pFID code not released",
        "beta": 1.0, "alphas": [float(a) for a in alphas], "deltas": [int(d) for d in deltas], "seed": seed,
        "perturbation": "vistok.quant.LatentPerturbation: each token, with probability alpha, takes a rank drawn "
                        "uniformly from 0..delta-1 among the delta codes nearest to its encoder vector (rank 0 = its "
                        "own code), so about alpha*(delta-1)/delta of the tokens change",
        "randomness": "one generator per image seeded from (seed, alpha, delta, image index)",
        "reference": "the clean originals of the evaluation set (as rFID)",
        "aggregate": "pfid_mean = mean of the per-point FIDs over the alpha x delta grid",
    }


def _tokenizer_info(runner: TokenizerRunner, name: Optional[str], settings: PassSettings) -> Dict[str, Any]:
    info = {"name": name, "family": runner.model.family, "config": runner.model.config.to_dict(),
            "device": str(runner.device)}
    if settings.num_tokens:
        info["num_tokens"] = token_counts(settings)
    if runner.decode_options:
        info["decode_options"] = runner.decode_options
    if runner.seeded_decoding:
        info["decoding_noise"] = "one standard normal draw per image from a generator seeded (seed, 'decode', index)"
    if runner.seeded_encoding:
        info["posterior_noise"] = ("the VAE posterior sampled once per image (mean + std * a standard normal draw "
                                   "from a generator seeded (seed, 'posterior', index)); rFID and pFID share it")
    return info


def _protocol(metric: str, source: SampleSource, out: PassOutput, inception: InceptionFeatures,
              runner: TokenizerRunner, settings: PassSettings, tokenizer: Optional[str], seed=None,
              definition=None) -> Protocol:
    return Protocol(metric=metric, dataset=source.describe(), reference=out.reference.description,
                    feature_network=inception.describe(), fid_method=settings.fid_method,
                    tokenizer=_tokenizer_info(runner, tokenizer, settings), precision=runner.precision_used,
                    seed=seed, definition=definition)


def _clean_metrics(out: PassOutput, lpips: Optional[LPIPSMetric], k: Optional[int] = None) -> Dict[str, Any]:
    clean = dict(out.variants[at_k(CLEAN, k)])
    metrics: Dict[str, Any] = {"rfid": clean.pop("fid"), **clean}
    if k is not None:
        metrics["num_tokens"] = k
    metrics["lpips_status"] = lpips.status if lpips is not None else "LPIPS not requested"
    if out.codebook is not None:
        metrics["codebook"] = out.codebook
    return metrics


def evaluate_rfid(runner: TokenizerRunner, source: SampleSource, inception: InceptionFeatures,
                  lpips: Optional[LPIPSMetric] = None, settings: Optional[PassSettings] = None,
                  tokenizer: Optional[str] = None) -> Tuple[EvalResult, Dict[str, torch.Tensor]]:
    """rFID, PSNR, SSIM, LPIPS and codebook use; also returns the report's image grid rows."""
    settings = settings or PassSettings()
    out = reconstruction_pass(runner, source, inception, lpips, settings)
    seed = 0 if runner.seeded_decoding or runner.seeded_encoding else None
    protocol = _protocol("rfid", source, out, inception, runner, settings, tokenizer, seed)
    ks = token_counts(settings)
    metrics = _clean_metrics(out, lpips, ks[-1])
    points = []
    if ks != [None]:
        for k in ks:
            scores = dict(out.variants[at_k(CLEAN, k)])
            points.append({"num_tokens": k, "rfid": scores.pop("fid"), **scores})
        metrics["rfid_by_k"] = {str(p["num_tokens"]): p["rfid"] for p in points}
    return EvalResult(metrics, protocol, points), out.grid


def evaluate_pfid(runner: TokenizerRunner, source: SampleSource, inception: InceptionFeatures,
                  alphas: Sequence[float] = (0.1, 0.3, 0.5), deltas: Sequence[int] = (10, 50, 100), seed: int = 0,
                  lpips: Optional[LPIPSMetric] = None, settings: Optional[PassSettings] = None,
                  tokenizer: Optional[str] = None) -> Tuple[EvalResult, Dict[str, torch.Tensor]]:
    """pFID per (alpha, delta) point and their mean, beside the clean rFID of the same pass."""
    settings = settings or PassSettings()
    if not alphas or not deltas:
        raise ValueError("pFID needs at least one alpha and one delta")
    codebook = runner.codebook_size
    if codebook is None:
        raise ValueError(f"pFID needs a discrete tokenizer; {type(runner.model).__name__} has continuous tokens")
    if any(d > codebook for d in deltas):
        raise ValueError(f"delta must not exceed the codebook size ({codebook}), got deltas {list(deltas)}")
    points = variant_points(alphas, deltas)
    out = reconstruction_pass(runner, source, inception, lpips, settings, points, seed)
    ks = token_counts(settings)
    rows = []
    for k in ks:
        for alpha, delta in points:
            scores = dict(out.variants[at_k(variant_name(alpha, delta), k)])
            row = {"alpha": alpha, "delta": delta, "pfid": scores.pop("fid"),
                   "expected_replacement": alpha * (delta - 1) / delta, **scores}
            rows.append(row if k is None else {"num_tokens": k, **row})

    def mean_at(k):
        chosen = [r["pfid"] for r in rows if r.get("num_tokens") == k]
        return sum(chosen) / len(chosen)

    metrics = {"pfid_mean": mean_at(ks[-1]), "label": PFID_LABEL, **_clean_metrics(out, lpips, ks[-1])}
    if ks != [None]:
        metrics["pfid_mean_by_k"] = {str(k): mean_at(k) for k in ks}
        metrics["rfid_by_k"] = {str(k): out.variants[at_k(CLEAN, k)]["fid"] for k in ks}
    definition = pfid_definition(alphas, deltas, seed)
    if ks != [None]:
        definition["num_tokens"] = ks
        definition["aggregate"] += "; per token count k (pfid_mean_by_k), the headline at the largest k"
    protocol = _protocol("pfid", source, out, inception, runner, settings, tokenizer, seed, definition)
    return EvalResult(metrics, protocol, rows), out.grid
