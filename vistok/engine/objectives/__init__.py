"""What a training step optimises, per kind of tokenizer. The trainer owns the loop, the
optimizers and the checkpoints; an objective owns the losses and the discriminator they need.

``loss.kind: auto`` picks the objective a model class names in its ``objective`` attribute
(``image`` when it names none)."""
from __future__ import annotations

import importlib
from typing import Dict

from torch import nn

from vistok.engine.objectives.base import GeneratorStep, Objective
from vistok.engine.recipe import Recipe


# loss.kind -> "module:class", imported when chosen (an objective may pull in heavy losses).
OBJECTIVES: Dict[str, str] = {
    "image": "vistok.engine.objectives.image:ImageObjective",
    "proxy_codes": "vistok.engine.objectives.proxy_codes:ProxyCodeObjective",
    "audio": "vistok.engine.objectives.audio:AudioObjective",
    "flow": "vistok.engine.objectives.flow:FlowObjective",
    "vae": "vistok.engine.objectives.vae:VAEObjective",
    "ar_tokens": "vistok.engine.objectives.ar_tokens:ARTokenObjective",
    "posttrain": "vistok.engine.objectives.posttrain:PostTrainObjective",
}
# Objectives that read paired batches, and the one data.kind that yields them.
PAIRED_DATA = {"ar_tokens": "tokens", "posttrain": "pairs"}


def build_objective(recipe: Recipe, model: nn.Module, device) -> Objective:
    kind = recipe.loss.kind
    if kind == "auto":
        kind = getattr(model, "objective", "image")
    if kind not in OBJECTIVES:
        raise ValueError(f"loss.kind: no objective {kind!r}; known: {', '.join(OBJECTIVES)}")
    needed, data_kind = PAIRED_DATA.get(kind), recipe.data.kind
    if needed != data_kind and (needed is not None or data_kind in PAIRED_DATA.values()):
        wanted = needed or "images, shards or audio"
        raise ValueError(f"the {kind!r} objective (loss.kind) trains on data.kind {wanted}, not {data_kind!r}")
    module, name = OBJECTIVES[kind].split(":")
    objective = getattr(importlib.import_module(module), name)(recipe, device)
    objective.check_model(model)
    return objective


__all__ = ["GeneratorStep", "Objective", "build_objective", "OBJECTIVES"]
