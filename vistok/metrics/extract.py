"""Inception features of a :class:`SampleSource`, split over processes and gathered in index order."""
from __future__ import annotations

from typing import Dict

import torch

from vistok.errors import InputError
from vistok.metrics.gather import RowCollector, process_info, shard
from vistok.metrics.inception import InceptionFeatures
from vistok.metrics.samples import SampleSource


def check_shardable(n: int, what: str) -> None:
    _, world = process_info()
    if n < world:
        raise InputError(f"{what}: {n} images for {world} processes; use fewer processes")


def extract_features(source: SampleSource, inception: InceptionFeatures, batch_size: int = 64,
                     progress: bool = False) -> Dict[str, torch.Tensor]:
    """``{layer: (N, D)}`` float32 features of all samples (every rank returns the full set)."""
    from tqdm.auto import tqdm

    check_shardable(len(source), str(source.describe().get("path", "samples")))
    start, stop = shard(len(source))
    rows = RowCollector()
    with tqdm(total=stop - start, unit="img", desc="inception", disable=not progress) as bar:
        for indices, images in source.batches(start, stop, batch_size):
            rows.add(indices, **inception(images))
            bar.update(len(indices))
    out = rows.gathered()
    out.pop("index")
    return out
