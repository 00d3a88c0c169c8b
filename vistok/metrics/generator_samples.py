"""gFID on the fly: a :class:`SampleSource` whose images a class-conditional generator samples and
its tokenizer decodes while the Inception features are extracted (no image file in between)."""
from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Sequence

import torch
from torch import nn

from vistok.data.images import to_uint8
from vistok.data.seeding import make_generator
from vistok.errors import InputError
from vistok.metrics.samples import Batch, SampleSource
from vistok.precision import PRECISIONS, cuda_autocast, precision_used
from vistok.models.generator import check_pair, sample_images


def balanced_labels(num_samples: int, classes: Sequence[int]) -> List[int]:
    """``num_samples`` labels in class-major blocks of (nearly) equal size: sample ``i`` is of class
    ``classes[i * len(classes) // num_samples]``; 50 per class for 50k ImageNet samples, the same
    order as ``tokzoo generate --num-per-class 50``."""
    if num_samples < 1:
        raise InputError(f"the number of samples must be positive, got {num_samples}")
    if not classes:
        raise InputError("no classes to sample")
    return [int(classes[i * len(classes) // num_samples]) for i in range(num_samples)]


class GeneratorSource(SampleSource):
    """``len(labels)`` images, sample ``i`` of class ``labels[i]``, drawn by ``generator`` and decoded
    by ``tokenizer`` (both in eval mode on the same device).

    Every random number of sample ``i`` comes from the seed ``(seed, "sample", i)``, as in
    ``tokzoo generate``: a range of samples is the same whichever process or batch size makes it,
    and equals the same samples written to disk by ``tokzoo generate`` with the same settings.
    ``sampling``: ``cfg_scale``, ``cfg_power``, ``temperature``, ``top_k``, ``top_p``.
    ``precision``: CUDA autocast dtype (``bf16``, ``fp16``, ``fp32``); the CPU runs fp32.
    ``names``: how the protocol records the two models (e.g. their paths)."""

    def __init__(self, generator: nn.Module, tokenizer: nn.Module, labels: Sequence[int], seed: int = 0,
                 sampling: Optional[Dict[str, Any]] = None, precision: str = "bf16",
                 names: Optional[Dict[str, str]] = None):
        check_pair(generator, tokenizer)
        if precision not in PRECISIONS:
            raise InputError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        self.labels = [int(c) for c in labels]
        num_classes = generator.config.num_classes
        bad = [c for c in self.labels if not 0 <= c < num_classes]
        if bad:
            raise InputError(f"label {bad[0]} is outside the generator's classes 0..{num_classes - 1}")
        self.generator, self.tokenizer = generator.eval(), tokenizer.eval()
        self.device = next(generator.parameters()).device
        self.seed = int(seed)
        self.sampling = dict(sampling or {})
        self.precision, self.precision_used = precision, precision_used(self.device, precision)
        self.names = dict(names or {})

    def __len__(self) -> int:
        return len(self.labels)

    def _autocast(self):
        return cuda_autocast(self.device, self.precision)

    def batches(self, start: int, stop: int, batch_size: int) -> Iterator[Batch]:
        for lo in range(start, stop, batch_size):
            hi = min(stop, lo + batch_size)
            streams = [make_generator(self.seed, "sample", i) for i in range(lo, hi)]
            labels = torch.tensor(self.labels[lo:hi], device=self.device)
            with torch.inference_mode(), self._autocast():
                images = sample_images(self.generator, self.tokenizer, labels, streams, **self.sampling)
            yield torch.arange(lo, hi), to_uint8(images).cpu()

    def models(self) -> Dict[str, Any]:
        """The generator and tokenizer as the protocol records them (names, families, configs)."""
        return {"generator": self.names.get("generator"), "generator_config": self.generator.config.to_dict(),
                "tokenizer": self.names.get("tokenizer"), "tokenizer_family": self.tokenizer.family,
                "tokenizer_config": self.tokenizer.config.to_dict()}

    def describe(self) -> Dict[str, object]:
        size = self.tokenizer.image_size
        return {"path": f"generated on the fly by {self.names.get('generator', 'a generator')}",
                "count": len(self), "num_classes": len(set(self.labels)), "seed": self.seed,
                "seeding": "sample i draws from (seed, 'sample', i), as tokzoo generate",
                "image_size": [size, size] if size else None, "preprocessing": "none (decoded pixels)",
                "precision": self.precision_used, "sampling": dict(self.sampling)}
