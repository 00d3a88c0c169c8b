"""The engine's view of the data: an endless, resumable stream of training batches for this
process, and a fixed list of held-out batches for evaluation."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import torch

from vistok.engine.objectives import PAIRED_KINDS
from vistok.engine.recipe import Recipe
from vistok.errors import InputError



def _dataset(recipe: Recipe, root: str, train: bool, kind: Optional[str] = None):
    cfg = recipe.data
    kind = kind or cfg.kind
    if not root:
        raise InputError("data.train is empty: point it at a folder of images (or audio, ...), or at tar shards")
    if kind == "images":
        from vistok.data.image_folder import ImageFolder

        return ImageFolder(root, cfg.image_size, random_crop=train and cfg.random_crop,
                           random_flip=train and cfg.random_flip, seed=recipe.experiment.seed)
    if kind == "tokens":
        from vistok.data.tokens import TokenShards

        return TokenShards(root, flip=train and cfg.random_flip, seed=recipe.experiment.seed)
    if kind == "pairs":
        from vistok.data.posttrain_pairs import PostTrainPairs

        if not cfg.real:
            raise InputError("data.real is empty: with data.kind=pairs it names the folder of real images that "
                             "the generated PNGs in data.train were sampled around")
        return PostTrainPairs(root, cfg.real, cfg.image_size, random_flip=train and cfg.random_flip,
                              seed=recipe.experiment.seed)
    from vistok.registry import contributions, resolve

    contributed = contributions("data_kinds")
    if kind in contributed:  # a family's own kind (e.g. audio folders)
        return resolve(contributed[kind][0])(recipe, root, train)
    raise ValueError(f"data.kind {kind!r} has no map-style dataset")


class TrainBatches:
    """Endless batches for one process; ``state_dict`` holds the position so a resumed run gets
    exactly the batches the uninterrupted run would have."""

    def __init__(self, recipe: Recipe, rank: int, world_size: int):
        from vistok.data.loader import ResumableLoader, default_num_workers

        cfg = recipe.data
        workers = default_num_workers(world_size) if cfg.num_workers is None else cfg.num_workers
        if cfg.kind == "shards":
            from vistok.data.shards import ImageShards

            dataset = ImageShards(cfg.train, cfg.image_size, random_crop=cfg.random_crop,
                                  random_flip=cfg.random_flip, seed=recipe.experiment.seed)
        else:
            dataset = _dataset(recipe, cfg.train, train=True)
        try:
            self.loader = ResumableLoader(dataset, cfg.batch_size, seed=recipe.experiment.seed, rank=rank,
                                          world_size=world_size, num_workers=workers)
        except InputError as err:  # e.g. fewer samples than one batch: say which data
            raise InputError(f"data.train {cfg.train}: {err}") from None
        self.explicit_steps_per_epoch = recipe.training.steps_per_epoch
        self.paired = cfg.kind in PAIRED_KINDS

    def __iter__(self):
        return self

    def __next__(self) -> Union[torch.Tensor, Tuple[torch.Tensor, ...]]:
        batch = next(self.loader)
        if isinstance(batch, (list, tuple)):
            return tuple(batch) if self.paired else batch[0]
        return batch

    def steps_per_epoch(self, grad_accum: int) -> int:
        if self.explicit_steps_per_epoch:
            return self.explicit_steps_per_epoch
        return max(1, self.loader.batches_per_epoch() // grad_accum)

    def state_dict(self) -> Dict[str, Any]:
        return self.loader.state_dict()

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.loader.load_state_dict(state)


def build_train_batches(recipe: Recipe, rank: int, world_size: int) -> TrainBatches:
    return TrainBatches(recipe, rank, world_size)


def build_val_batches(recipe: Recipe) -> List[Union[torch.Tensor, Tuple[torch.Tensor, ...]]]:
    """The first ``data.val_batches`` batches of the validation folder or shards (center crops, no
    flips, no shuffling), the same on every process and at every evaluation. Token shards give
    ``(ids, labels)`` batches; post-training (``pairs``) validates on a plain folder of real images."""
    cfg = recipe.data
    if not cfg.val or cfg.val_batches <= 0:
        return []
    wanted = cfg.val_batches * cfg.batch_size
    if cfg.kind == "shards" and not Path(cfg.val).is_dir():
        import itertools

        from vistok.data.shards import ImageShards

        stream = ImageShards(cfg.val, cfg.image_size, random_crop=False, random_flip=False, shuffle_buffer=0,
                             shuffle_shards=False, rank=0, world_size=1)
        items = list(itertools.islice(iter(stream), wanted))
        count = len(items)
    else:  # a folder (also for shards: ImageNet val is often kept as plain files)
        kind = "images" if cfg.kind in ("shards", "pairs") else cfg.kind
        dataset = _dataset(recipe, cfg.val, train=False, kind=kind)
        count = min(len(dataset), wanted)
        items = [dataset[i] for i in range(count)]
    if cfg.kind == "tokens":
        return [tuple(torch.stack(column) for column in zip(*items[i:i + cfg.batch_size]))
                for i in range(0, count, cfg.batch_size)]
    items = [x[0] if isinstance(x, (list, tuple)) else x for x in items]
    return [torch.stack(items[i:i + cfg.batch_size]) for i in range(0, count, cfg.batch_size)]
