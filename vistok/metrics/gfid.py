"""gFID: FID of samples (a folder, an ADM ``.npz``, or a generator's :class:`SampleSource`) against
reference statistics, as the ADM evaluator computes it (FID vs the reference ``mu``/``sigma``;
precision/recall and KID vs the reference images' features when the reference carries images)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Union

from vistok.errors import InputError
from vistok.metrics import fid as F
from vistok.metrics.extract import extract_features
from vistok.metrics.inception import InceptionFeatures
from vistok.metrics.protocol import EvalResult, Protocol
from vistok.metrics.reference_stats import Reference, load_npz, reference_from_source
from vistok.metrics.samples import NpzSource, SampleSource, open_samples


def load_reference(path: Union[str, Path], inception: InceptionFeatures, need_features: bool = False,
                   size: Optional[int] = None, preprocessing: str = "titok", batch_size: int = 64,
                   use_cache: bool = True, progress: bool = False) -> Reference:
    """Reference statistics from an ``.npz`` with ``mu``/``sigma`` (ADM layout; if features are needed
    they are computed from its ``arr_0`` images, as the ADM evaluator does), or from a folder of
    images (computed once, then cached)."""
    path = Path(path)
    if path.is_file() and path.suffix == ".npz":
        ref = load_npz(path)
        if need_features and ref.features is None:
            try:
                images = NpzSource(path)
            except ValueError:
                raise InputError(f"{path}: KID / precision-recall need reference images (arr_0) or features, "
                                 "and this file has only mu/sigma") from None
            ref.features = reference_from_source(images, inception, batch_size, True, use_cache, progress).features
            ref.description["features_from"] = "arr_0 images of the same file"
        return ref
    if path.is_dir():
        source = open_samples(path, size, preprocessing)
        return reference_from_source(source, inception, batch_size, need_features, use_cache, progress)
    raise FileNotFoundError(f"{path}: reference must be an .npz with mu/sigma or a folder of images")


def evaluate_gfid(samples: SampleSource, reference: Reference, inception: InceptionFeatures, batch_size: int = 64,
                  kid: bool = False, prc: bool = False, isc: bool = False, fid_method: str = "auto",
                  generator: Optional[Dict[str, Any]] = None, seed: Optional[int] = None,
                  progress: bool = False) -> EvalResult:
    """gFID (and optionally KID, precision/recall, Inception Score) of ``samples``."""
    feats = extract_features(samples, inception, batch_size, progress)
    pool = feats["2048"]
    metrics: Dict[str, Any] = {"gfid": F.frechet_distance(F.FeatureStats.from_features(pool), reference.stats,
                                                          fid_method), "num_samples": int(pool.shape[0])}
    if (kid or prc) and reference.features is None:
        raise InputError("KID / precision-recall need the reference features; this reference has only statistics")
    if kid:
        metrics.update(F.kernel_inception_distance(pool, reference.features))
    if prc:
        metrics.update(F.precision_recall(pool, reference.features))
    if isc:
        metrics.update(F.inception_score(feats["logits_unbiased"]))
    protocol = Protocol(metric="gfid", dataset=samples.describe(), reference=reference.description,
                        feature_network=inception.describe(), fid_method=fid_method, tokenizer=generator, seed=seed)
    return EvalResult(metrics, protocol)
