"""What a training step optimises, per kind of tokenizer. The trainer owns the loop, the
optimizers and the checkpoints; an objective owns the losses and the discriminator they need.

``loss.kind: auto`` picks the objective the model's family declares (:mod:`vistok.registry`);
families may add objectives of their own (``Family.objectives``)."""
from __future__ import annotations

import importlib
from typing import Dict

from torch import nn

from vistok.engine.objectives.base import GeneratorStep, Objective
from vistok.engine.recipe import Recipe


# loss.kind -> "module:class", imported when chosen (an objective may pull in heavy losses).
OBJECTIVES: Dict[str, str] = {
    "image": "vistok.engine.objectives.image:ImageObjective",
    "vae": "vistok.engine.objectives.vae:VAEObjective",
    "posttrain": "vistok.engine.objectives.posttrain:PostTrainObjective",
}
# data.kinds whose batches are pairs, kept whole: (ids, labels) token shards for a token generator,
# (generated, real) images for RobusTok post-training. An objective that reads one names it in
# ``Objective.paired_data``; the other kinds yield the inputs alone.
PAIRED_KINDS = ("tokens", "pairs")


def available_objectives() -> Dict[str, str]:
    """The core's objectives and those the registered families add."""
    from vistok.registry import contributions

    return {**OBJECTIVES, **{kind: target for kind, (target, _) in contributions("objectives").items()}}


def build_objective(recipe: Recipe, model: nn.Module, device) -> Objective:
    from vistok.registry import get_family

    kind = recipe.loss.kind
    if kind == "auto":
        kind = get_family(model.family).objective
    known = available_objectives()
    if kind not in known:
        raise ValueError(f"loss.kind: no objective {kind!r}; known: {', '.join(known)}")
    module, name = known[kind].split(":")
    cls = getattr(importlib.import_module(module), name)
    needed, data_kind = cls.paired_data, recipe.data.kind
    if needed != data_kind and (needed is not None or data_kind in PAIRED_KINDS):
        wanted = needed or "images, shards or audio"
        raise ValueError(f"the {kind!r} objective (loss.kind) trains on data.kind {wanted}, not {data_kind!r}")
    objective = cls(recipe, device)
    objective.check_model(model)
    return objective


__all__ = ["GeneratorStep", "Objective", "available_objectives", "build_objective", "OBJECTIVES", "PAIRED_KINDS"]
