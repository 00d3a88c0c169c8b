"""The FID family on feature matrices: Frechet distance, KID, precision/recall, Inception Score.

Statistics and metrics go through torch-fidelity's own functions where it has them, so numbers
equal a ``torch_fidelity.calculate_metrics`` call on the same features. FID methods:

- ``"torch-fidelity"``: its ``fid_statistics_to_metric`` (0.4: ``sum(sqrt(eigvals(S1 S2)))``);
- ``"scipy"``: the TTUR / ADM-evaluator / pytorch-fid formula (``scipy.linalg.sqrtm`` with the
  1e-6 diagonal fallback), which torch-fidelity itself used up to 0.3;
- ``"auto"`` (default): torch-fidelity's, except when one side has fewer images than feature
  dimensions (quick evaluations, tests). Then its covariance is ``A^T A`` with ``A`` the centred
  features over ``sqrt(n - 1)``, and ``tr sqrt(S1 S2) = tr sqrt(A S2 A^T)``: the same quantity from
  an ``n x n`` symmetric eigenproblem, without the round-off that the null space of a rank-deficient
  product adds to ``eigvals`` (they agree to ~1e-6 relative) and in milliseconds instead of seconds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np
import torch

from vistok.errors import TokzooError

FID_METHODS = ("auto", "torch-fidelity", "scipy")
IMAGINARY_TOLERANCE = 1e-3  # largest |imag| allowed on the diagonal of sqrtm(S1 S2) (TTUR, pytorch-fid, ADM)


class FIDNumericalError(TokzooError, ValueError):
    """The Frechet distance cannot be computed reliably from these statistics; says what to change."""


@dataclass
class FeatureStats:
    """Mean and covariance of pool features, in torch-fidelity's dtypes (mu float32 from float32
    features, sigma float64 from ``np.cov``); ``count`` is the number of images (0 when unknown,
    e.g. imported from an ADM ``.npz``). ``factor`` (``A`` above) is kept when the statistics come
    from fewer images than dimensions."""

    mu: np.ndarray
    sigma: np.ndarray
    count: int = 0
    factor: Optional[np.ndarray] = field(default=None, repr=False)

    def __post_init__(self):
        self.mu = np.asarray(self.mu)
        self.sigma = np.asarray(self.sigma)
        if self.mu.ndim != 1 or self.sigma.shape != (self.mu.shape[0],) * 2:
            raise ValueError(f"FeatureStats: mu must be (D,) and sigma (D, D), got {self.mu.shape} and "
                             f"{self.sigma.shape}")
        # torch-fidelity asserts equal dtypes between the two sides: normalise imported stats.
        self.mu = self.mu.astype(np.float32, copy=False)
        self.sigma = self.sigma.astype(np.float64, copy=False)

    @classmethod
    def from_features(cls, features: torch.Tensor) -> "FeatureStats":
        from torch_fidelity.metric_fid import fid_features_to_statistics

        if features.dim() != 2 or features.shape[0] < 2:
            raise ValueError(f"FID statistics need at least 2 feature rows, got shape {tuple(features.shape)}")
        features = features.detach().float().cpu()
        stats = fid_features_to_statistics(features)
        n, dim = features.shape
        factor = None
        if n < dim:
            x = features.numpy().astype(np.float64)
            factor = (x - x.mean(axis=0)) / np.sqrt(n - 1)
        return cls(stats["mu"], stats["sigma"], n, factor)


def frechet_distance(a: FeatureStats, b: FeatureStats, method: str = "auto") -> float:
    """FID between two sets of statistics."""
    if a.mu.shape != b.mu.shape:
        raise ValueError(f"FID: feature sizes differ ({a.mu.shape[0]} vs {b.mu.shape[0]})")
    if method == "auto":
        low = [s for s in (a, b) if s.factor is not None]
        if low:
            small = min(low, key=lambda s: s.factor.shape[0])
            return _frechet_low_rank(small, b if small is a else a)
        method = "torch-fidelity"
    if method == "torch-fidelity":
        from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric

        return float(fid_statistics_to_metric({"mu": a.mu, "sigma": a.sigma}, {"mu": b.mu, "sigma": b.sigma},
                                              verbose=False)[KEY_METRIC_FID])
    if method == "scipy":
        return _frechet_scipy(a, b)
    raise ValueError(f"unknown FID method {method!r}; choose one of {FID_METHODS}")


def _frechet_low_rank(low: FeatureStats, other: FeatureStats) -> float:
    inner = low.factor @ other.sigma @ low.factor.T
    tr_covmean = float(np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum())
    diff = low.mu.astype(np.float64) - other.mu.astype(np.float64)
    return float(diff.dot(diff) + np.trace(low.sigma) + np.trace(other.sigma) - 2 * tr_covmean)


def _frechet_scipy(a: FeatureStats, b: FeatureStats, eps: float = 1e-6) -> float:
    import warnings

    from scipy import linalg

    mu1, mu2 = a.mu.astype(np.float64), b.mu.astype(np.float64)
    s1, s2 = a.sigma, b.sigma
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # singular products are handled below
        covmean = linalg.sqrtm(s1.dot(s2))
    if not np.isfinite(covmean).all():  # singular product: the TTUR fallback
        offset = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    if np.iscomplexobj(covmean):
        # round-off gives sqrtm a tiny imaginary part; a large one on the diagonal means the trace
        # would be wrong, so refuse it (the tolerance the reference implementations use)
        imaginary = float(np.max(np.abs(np.diagonal(covmean).imag)))
        if imaginary > IMAGINARY_TOLERANCE:
            raise FIDNumericalError(
                f"FID (scipy sqrtm): the matrix square root has an imaginary diagonal part of {imaginary:.3g} "
                f"(more than {IMAGINARY_TOLERANCE:g}): the covariances are too ill-conditioned for this method; "
                "use more images, or --fid-method torch-fidelity")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def kernel_inception_distance(fake: torch.Tensor, real: torch.Tensor, subsets: int = 100,
                              subset_size: int = 1000, seed: int = 2020) -> Dict[str, float]:
    """KID (polynomial kernel, unbiased MMD^2 over random subsets) with torch-fidelity's code;
    ``subset_size`` is capped at the smaller set's size."""
    from torch_fidelity.metric_kid import kid_features_to_metric

    size = min(subset_size, len(fake), len(real))
    out = kid_features_to_metric(fake.float(), real.float(), kid_subsets=subsets, kid_subset_size=size,
                                 kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
                                 kid_kernel_poly_coef0=1, rng_seed=seed, verbose=False)
    return {"kid_mean": float(out["kernel_inception_distance_mean"]),
            "kid_std": float(out["kernel_inception_distance_std"]), "kid_subset_size": size}


def precision_recall(fake: torch.Tensor, real: torch.Tensor, neighborhood: int = 3) -> Dict[str, float]:
    """Improved precision/recall (Kynkaanniemi et al.) on the Inception pool features (as the ADM
    evaluator; torch-fidelity's own default would use VGG16 features) with torch-fidelity's code."""
    from torch_fidelity.metric_prc import prc_features_to_metric

    out = prc_features_to_metric(fake.float(), real.float(), prc_neighborhood=neighborhood, prc_batch_size=10000,
                                 save_cpu_ram=False, verbose=False)
    return {"precision": float(out["precision"]), "recall": float(out["recall"]), "f_score": float(out["f_score"])}


def inception_score(logits: torch.Tensor, splits: int = 10, seed: int = 2020) -> Dict[str, float]:
    """Inception Score from ``logits_unbiased`` with torch-fidelity's code (shuffled, ``splits`` splits,
    capped at the number of images: an empty split would make the score NaN)."""
    from torch_fidelity.metric_isc import isc_features_to_metric

    if len(logits) == 0:
        raise ValueError("inception_score: no images")
    splits = min(splits, len(logits))
    out = isc_features_to_metric(logits.float(), splits=splits, shuffle=True, rng_seed=seed)
    return {"inception_score_mean": float(out["inception_score_mean"]),
            "inception_score_std": float(out["inception_score_std"]), "inception_score_splits": splits}
