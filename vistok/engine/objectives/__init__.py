"""What a training step optimises, per kind of tokenizer. The trainer owns the loop, the
optimizers and the checkpoints; an objective owns the losses and the discriminator they need.

``loss.kind: auto`` picks the objective a model class names in its ``objective`` attribute
(``image`` when it names none)."""
from __future__ import annotations

from typing import Callable, Dict

from torch import nn

from vistok.engine.objectives.base import GeneratorStep, Objective
from vistok.engine.recipe import Recipe


def _image(recipe, device):
    from vistok.engine.objectives.image import ImageObjective

    return ImageObjective(recipe, device)


def _proxy_codes(recipe, device):
    from vistok.engine.objectives.proxy_codes import ProxyCodeObjective

    return ProxyCodeObjective(recipe, device)


def _audio(recipe, device):
    from vistok.engine.objectives.audio import AudioObjective

    return AudioObjective(recipe, device)


def _flow(recipe, device):
    from vistok.engine.objectives.flow import FlowObjective

    return FlowObjective(recipe, device)


def _vae(recipe, device):
    from vistok.engine.objectives.vae import VAEObjective

    return VAEObjective(recipe, device)


def _ar_tokens(recipe, device):
    from vistok.engine.objectives.ar_tokens import ARTokenObjective

    return ARTokenObjective(recipe, device)


def _posttrain(recipe, device):
    from vistok.engine.objectives.posttrain import PostTrainObjective

    return PostTrainObjective(recipe, device)


OBJECTIVES: Dict[str, Callable] = {"image": _image, "proxy_codes": _proxy_codes, "audio": _audio, "flow": _flow,
                                   "ar_tokens": _ar_tokens, "posttrain": _posttrain, "vae": _vae}
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
    objective = OBJECTIVES[kind](recipe, device)
    objective.check_model(model)
    return objective


__all__ = ["GeneratorStep", "Objective", "build_objective", "OBJECTIVES"]
