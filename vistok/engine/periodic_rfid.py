"""rFID during training (``logging.rfid_images: N``): at every evaluation, the FID between an image
tokenizer's reconstructions and the originals of the first N images of ``data.val``, prepared as
TiTok's evaluation prepares them (bicubic resize of the shorter side, centre crop, uint8).

Built from :mod:`vistok.metrics`: the FID Inception and its weights (found as
:func:`vistok.metrics.inception_weights.resolve_inception_weights` finds them), feature extraction
split over processes and gathered in image order, and the Frechet distance. The originals'
statistics are measured once, at the first evaluation, and kept in memory, so every process uses
the same reference whatever each one's cache holds. Without usable Inception weights the run logs
one warning and carries on without rFID; a training run never fails for want of them.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional

import torch
from torch import nn

from vistok.engine.recipe import RecipeError
from vistok.metrics.samples import Batch, DatasetSource, SampleSource
from vistok.models.base import Tokenizer

IMAGE_DATA = ("images", "shards")
PRECISION = {"no": "fp32", "bf16": "bf16", "fp16": "fp16"}  # training.precision -> the tokenizer's eval autocast


def load_inception(device: torch.device):
    """The FID Inception on ``device``, its weights resolved in the metrics layer's order."""
    from vistok.metrics.inception import InceptionFeatures

    return InceptionFeatures(device=device)


def _all_ranks(flag: bool) -> bool:
    """True when ``flag`` holds on every process (a single process decides alone)."""
    from vistok.metrics.gather import gather_rows

    return bool(gather_rows(torch.tensor([int(flag)])).min().item())


@contextlib.contextmanager
def _main_process_first():
    """The main process resolves (downloads or converts) the weights before the others look."""
    from vistok.metrics.gather import process_info

    if process_info()[1] == 1:
        yield
        return
    from accelerate.state import PartialState

    with PartialState().main_process_first():
        yield


class _Reconstructions(SampleSource):
    """The tokenizer's uint8 reconstructions of another source's images, index for index."""

    def __init__(self, originals: SampleSource, runner):
        self.originals = originals
        self.runner = runner

    def __len__(self) -> int:
        return len(self.originals)

    def batches(self, start: int, stop: int, batch_size: int) -> Iterator[Batch]:
        from vistok.data.images import to_uint8

        for indices, images in self.originals.batches(start, stop, batch_size):
            tokens = self.runner.encode(images.float() / 255, indices)  # a sampled posterior seeded per image
            yield indices, to_uint8(self.runner.decode(tokens, indices)).cpu()

    def describe(self) -> Dict[str, object]:
        return {"path": f"reconstructions of {self.originals.describe().get('path', 'the held-out images')}"}


class PeriodicRFID:
    """rFID of a tokenizer on a fixed held-out set, measured at each evaluation of a run.

    :meth:`measure` must be called on every process together (features are gathered); it returns
    ``{"val/rfid": value}``, or ``{}`` once it has found that no Inception weights are available
    (``warn`` is then called once with the reason). ``inception_loader(device)`` builds the feature
    network (tests pass a fake)."""

    def __init__(self, source: SampleSource, device: torch.device, precision: str = "fp32", batch_size: int = 32,
                 inception_loader: Optional[Callable[[torch.device], object]] = None):
        self.source = source
        self.device = torch.device(device)
        self.precision = precision
        self.batch_size = batch_size
        self.inception_loader = inception_loader or load_inception
        self._inception = None
        self._reference = None
        self.disabled = False

    @classmethod
    def from_recipe(cls, recipe, model: nn.Module, device: torch.device) -> Optional["PeriodicRFID"]:
        """None when the recipe does not ask for rFID; a :class:`RecipeError` naming the key when it
        asks for something that cannot be measured."""
        count = recipe.logging.rfid_images
        if count < 0:
            raise RecipeError(f"logging.rfid_images must be >= 0 (0 turns rFID off), got {count}")
        if count == 0:
            return None
        is_tokenizer = isinstance(model, Tokenizer) and model.modality == "image"
        if recipe.data.kind not in IMAGE_DATA or not is_tokenizer:
            raise RecipeError(f"logging.rfid_images={count}: rFID needs an image tokenizer trained on images; this "
                             f"recipe trains {type(model).__name__} on data.kind={recipe.data.kind!r}")
        val = recipe.data.val
        if not val or not Path(val).is_dir():
            raise RecipeError(f"logging.rfid_images={count} needs data.val to be a folder of held-out images; "
                             f"got {val!r}")
        from vistok.data.loader import default_num_workers
        from vistok.metrics.eval_images import EvalImages
        from vistok.metrics.gather import process_info

        try:
            images = EvalImages(val, recipe.data.image_size, "titok", limit=count)
        except ValueError as err:  # too few images: the message names the folder
            raise RecipeError(f"logging.rfid_images={count}: {err}") from None
        workers = recipe.data.num_workers
        workers = default_num_workers(process_info()[1]) if workers is None else workers
        return cls(DatasetSource(images, num_workers=workers), device, PRECISION[recipe.training.precision],
                   recipe.data.batch_size)

    def _network(self, warn: Callable[[str], None]):
        if self._inception is None and not self.disabled:
            from vistok.metrics.inception_weights import InceptionWeightsError

            error = None
            with _main_process_first():
                try:
                    self._inception = self.inception_loader(self.device)
                except (InceptionWeightsError, OSError, ValueError, ImportError) as err:
                    error = err
            if not _all_ranks(self._inception is not None):
                self.disabled, self._inception = True, None
                reason = f"{type(error).__name__}: {error}" if error else "another process found no Inception weights"
                warn(f"warning: val/rfid is not computed in this run (logging.rfid_images is set) - {reason}")
        return self._inception

    @torch.no_grad()
    def measure(self, model: nn.Module, warn: Callable[[str], None] = print) -> Dict[str, float]:
        from vistok.metrics.extract import extract_features
        from vistok.metrics.fid import FeatureStats, frechet_distance
        from vistok.metrics.tokenizer_runner import TokenizerRunner

        inception = self._network(warn)
        if inception is None:
            return {}
        if self._reference is None:
            originals = extract_features(self.source, inception, self.batch_size)["2048"]
            self._reference = FeatureStats.from_features(originals)
        was_training = model.training
        try:
            runner = TokenizerRunner(model, self.device, self.precision)
            recons = extract_features(_Reconstructions(self.source, runner), inception, self.batch_size)["2048"]
        finally:
            model.train(was_training)
        return {"val/rfid": frechet_distance(FeatureStats.from_features(recons), self._reference)}
