"""Recipe sections -> objects: model, optimizer, learning-rate schedule, perturbation."""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import torch
from torch import nn

from vistok.engine.recipe import Recipe
from vistok.models.base import ZooModel


def build_model(recipe: Recipe) -> nn.Module:
    """A fresh model from ``model.family`` + ``model.config``, or, with ``model.init``, a released
    or saved tokenizer to fine-tune (``model.config`` entries then override its config, e.g.
    ``tail_drop``; the weights must still fit)."""
    from vistok.models.config_check import build_checked
    from vistok.models.state_dict import load_strict
    from vistok.registry import get_family

    family = get_family(recipe.model.family)
    if recipe.model.init is None:
        model = build_checked(family, recipe.model.config, "model.config")
    else:
        from vistok.hub.loading import load_tokenizer

        base = load_tokenizer(recipe.model.init)
        if base.family != family.name:
            raise ValueError(f"model.init {recipe.model.init!r} is a {base.family!r} tokenizer, "
                             f"but model.family is {family.name!r}")
        if not recipe.model.config:
            model = base
        else:
            model = build_checked(family, {**base.config.to_dict(), **recipe.model.config},
                                  f"model.config over model.init {recipe.model.init}")
            load_strict(model, base.state_dict(), f"model.init {recipe.model.init}")
    for target, source in recipe.model.init_parts.items():
        copy_part(model, target, source)
    if recipe.model.freeze:
        model.freeze(*recipe.model.freeze)
    return model


def copy_part(model: nn.Module, target: str, source: str) -> None:
    """Copy every tensor under ``their.prefix`` of the tokenizer ``NAME_OR_DIR`` (``source`` =
    ``"NAME_OR_DIR:their.prefix"``) onto ``target`` + the rest of its name in ``model``; every
    tensor of ``model`` under ``target`` must be covered, with the same shape.

    A whole tokenizer (empty prefix) copied into a part of the same family (FlexTok's ``vae.`` from
    a trained FlexTok VAE) also fills the part's config fields left unset (None), such as the VAE's
    latent scaling factor, which belongs with its weights."""
    from vistok.hub.loading import load_tokenizer

    where = f"model.init_parts[{target!r}]"
    name, sep, prefix = source.rpartition(":")
    if not sep or not name:
        raise ValueError(f"{where}: expected 'NAME_OR_DIR:prefix', got {source!r}")
    source_model = load_tokenizer(name)
    theirs = {k[len(prefix):]: v for k, v in source_model.state_dict().items() if k.startswith(prefix)}
    ours = {k[len(target):]: v for k, v in model.state_dict().items() if k.startswith(target)}
    if not ours:
        raise ValueError(f"{where}: {type(model).__name__} has no tensors under {target!r}")
    missing = sorted(set(ours) - set(theirs))
    if missing:
        raise ValueError(f"{where}: {name} has no {', '.join(prefix + k for k in missing[:5])} "
                         f"({len(missing)} of {len(ours)} tensors missing)")
    wrong = [f"{target}{k}: {tuple(theirs[k].shape)} vs {tuple(v.shape)}" for k, v in ours.items()
             if theirs[k].shape != v.shape]
    if wrong:
        raise ValueError(f"{where}: shape mismatch: " + "; ".join(wrong[:5]))
    with torch.no_grad():
        for key, tensor in ours.items():
            tensor.copy_(theirs[key])
    part = dict(model.named_modules()).get(target.rstrip("."))
    if (not prefix and isinstance(part, ZooModel) and part.family == source_model.family
            and dataclasses.is_dataclass(part.config)):
        for f in dataclasses.fields(part.config):
            if getattr(part.config, f.name) is None:
                setattr(part.config, f.name, getattr(source_model.config, f.name))


NO_DECAY_NAMES = ("norm", "bias", "embed", "token", "codebook", "gamma")


def build_optimizer(module: nn.Module, recipe: Recipe, lr: Optional[float] = None) -> torch.optim.Optimizer:
    """AdamW/Adam over the trainable parameters; with ``optimizer.exempt_from_decay`` (default)
    vectors, norms, biases, embeddings, learned tokens and codebooks get no weight decay (the TiTok
    convention), without it every parameter decays."""
    cfg = recipe.optimizer
    decay, no_decay = [], []
    for name, p in module.named_parameters():
        if p.requires_grad:
            exempt = cfg.exempt_from_decay and (p.ndim < 2 or any(k in name for k in NO_DECAY_NAMES))
            (no_decay if exempt else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    cls = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}[cfg.name]
    return cls([g for g in groups if g["params"]], lr=lr or cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)


def build_scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then constant, cosine decay to ``min_lr_ratio`` at ``max_steps``, or
    exponential decay by ``gamma`` per step (after ``k`` steps past the warm-up the factor is
    ``gamma ** k``, torch's ``ExponentialLR`` stepped once per optimizer step)."""
    cfg, total = recipe.schedule, recipe.training.max_steps

    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.name == "constant":
            return 1.0
        if cfg.name == "exponential":
            return cfg.gamma ** (step - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def build_perturbation(recipe: Recipe):
    from vistok.quant import LatentPerturbation

    cfg = recipe.perturbation
    if cfg.alpha == 0.0 or cfg.beta == 0.0:
        return None
    return LatentPerturbation(cfg.alpha, cfg.beta, cfg.delta, schedule=cfg.schedule)
