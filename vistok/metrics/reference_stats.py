"""Reference statistics for FID: imported from an ADM-style ``.npz`` (``mu``, ``sigma``, as in
``VIRTUAL_imagenet256_labeled.npz``), or computed from images and cached.

The cache lives in ``<tokzoo cache>/fid_stats/<key>.npz``; the key hashes the images' content, the
preprocessing and the feature network's weights, so a changed file or protocol never reuses old
numbers. Cache files are ADM-compatible npz files (``mu``, ``sigma``, plus ``count``, ``protocol``
and, when KID or precision/recall needed them, ``features``); nothing is pickled.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np
import torch

from vistok.errors import UnreadableFileError
from vistok.fileio import atomic_write
from vistok.hub.download import cache_root, sha256_of
from vistok.metrics.fid import FeatureStats


@dataclass
class Reference:
    """Statistics (and, when available, the features) of the reference set, and where they came from."""

    stats: FeatureStats
    description: Dict[str, object]
    features: Optional[torch.Tensor] = field(default=None, repr=False)


def load_npz(path: Union[str, Path], digest: bool = True) -> Reference:
    """``mu``/``sigma`` (and ``features``, ``count`` when present) of an ADM or tokzoo ``.npz``;
    ``digest`` records the file's sha256 in the description (a full read of the file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: reference statistics file not found")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise UnreadableFileError(f"{path}: not a readable .npz ({err})") from None
    with data:
        missing = [k for k in ("mu", "sigma") if k not in data.files]
        if missing:
            raise UnreadableFileError(f"{path}: no {' or '.join(missing)} array (has {data.files}); expected an ADM-style "
                             "reference .npz with mu and sigma")
        count = int(data["count"]) if "count" in data.files else 0
        stats = FeatureStats(data["mu"], data["sigma"], count)
        features = torch.from_numpy(data["features"]) if "features" in data.files else None
        protocol = json.loads(str(data["protocol"])) if "protocol" in data.files else None
    description = {"source": "npz", "path": str(path), "count": count or None}
    if digest:
        description["sha256"] = sha256_of(path)
    if protocol:
        description["protocol"] = protocol
    return Reference(stats, description, features)


def save_npz(reference: Reference, path: Union[str, Path], with_features: bool = True) -> Path:
    """Write ``reference`` as an ADM-compatible ``.npz`` (written whole, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"mu": reference.stats.mu, "sigma": reference.stats.sigma, "count": np.int64(reference.stats.count),
              "protocol": np.array(json.dumps(reference.description, sort_keys=True, default=str))}
    if with_features and reference.features is not None:
        arrays["features"] = reference.features.numpy()
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to a name
            np.savez(f, **arrays)

    return atomic_write(path, write, suffix=".npz")


def cache_key(fingerprint: str, preprocessing: Dict[str, object], network: Dict[str, object]) -> str:
    ident = json.dumps({"content": fingerprint, "preprocessing": preprocessing,
                        "network": {k: network.get(k) for k in ("name", "layer", "weights_sha256")}}, sort_keys=True)
    return hashlib.sha256(ident.encode()).hexdigest()[:24]


def cache_path(key: str) -> Path:
    return cache_root() / "fid_stats" / f"{key}.npz"


def cached(key: str, need_features: bool) -> Optional[Reference]:
    """The cached reference for ``key``, if any (and if it has features when they are needed)."""
    path = cache_path(key)
    if not path.is_file():
        return None
    ref = load_npz(path, digest=False)  # the description is replaced below: no need to hash the file
    if need_features and ref.features is None:
        return None
    ref.description = {**ref.description.get("protocol", {}), "source": "cache", "cache_file": str(path)}
    return ref


def store(key: Optional[str], features: torch.Tensor, description: Dict[str, object], keep_features: bool,
          write: bool = True) -> Reference:
    """Statistics of ``features``; written to the cache for ``key`` when ``write`` (rank 0 only)."""
    ref = Reference(FeatureStats.from_features(features), dict(description), features)
    if write and key is not None:
        save_npz(ref, cache_path(key), with_features=keep_features)
        ref.description["cache_file"] = str(cache_path(key))
    return ref


def reference_from_source(source, inception, batch_size: int = 64, need_features: bool = False,
                          use_cache: bool = True, progress: bool = False) -> Reference:
    """Reference statistics of the images of ``source`` (a :class:`SampleSource`), from the cache
    when the same images were already measured with the same preprocessing and network."""
    from vistok.metrics.extract import extract_features
    from vistok.metrics.gather import process_info

    fingerprint = source.fingerprint() if use_cache else None
    key = key_for(source, fingerprint, inception)
    if key is not None:
        hit = cached(key, need_features)
        if hit is not None:
            return hit
    features = extract_features(source, inception, batch_size, progress)["2048"]
    description = {"source": "computed", **source.describe(), "content_sha256": fingerprint}
    return store(key, features, description, keep_features=need_features,
                 write=key is not None and process_info()[0] == 0)


def key_for(source, fingerprint: Optional[str], inception) -> Optional[str]:
    """The cache key of ``source``'s statistics under ``inception`` (None when uncacheable)."""
    if fingerprint is None:
        return None
    protocol = {k: v for k, v in source.describe().items() if k != "path"}
    return cache_key(fingerprint, protocol, inception.describe())
