"""Recipe sections -> objects: model, optimizer, learning-rate schedule, perturbation."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from vistok.engine.recipe import Recipe


def build_model(recipe: Recipe) -> nn.Module:
    """A fresh model from ``model.family`` + ``model.config``, or, with ``model.init``, a released
    or saved tokenizer to fine-tune (``model.config`` entries then override its config, e.g.
    ``tail_drop``; the weights must still fit)."""
    from vistok.hub.convert import load_strict
    from vistok.hub.families import get_family

    family = get_family(recipe.model.family)
    if recipe.model.init is None:
        return family.build(recipe.model.config)
    from vistok.hub.loading import load_tokenizer

    base = load_tokenizer(recipe.model.init)
    if base.family != family.name:
        raise ValueError(f"model.init {recipe.model.init!r} is a {base.family!r} tokenizer, "
                         f"but model.family is {family.name!r}")
    if not recipe.model.config:
        return base
    model = family.build({**base.config.to_dict(), **recipe.model.config})
    load_strict(model, base.state_dict(), f"model.init {recipe.model.init}")
    return model


NO_DECAY_NAMES = ("norm", "bias", "embed", "token", "codebook", "gamma")


def build_optimizer(module: nn.Module, recipe: Recipe, lr: Optional[float] = None) -> torch.optim.Optimizer:
    """AdamW/Adam over the trainable parameters; vectors, norms, biases, embeddings, learned tokens
    and codebooks get no weight decay (the TiTok convention)."""
    cfg = recipe.optimizer
    decay, no_decay = [], []
    for name, p in module.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or any(k in name for k in NO_DECAY_NAMES) else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    cls = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}[cfg.name]
    return cls([g for g in groups if g["params"]], lr=lr or cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)


def build_scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then constant or cosine decay to ``min_lr_ratio`` at ``max_steps``."""
    cfg, total = recipe.schedule, recipe.training.max_steps

    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.name == "constant":
            return 1.0
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def build_perturbation(recipe: Recipe):
    from vistok.quant import LatentPerturbation

    cfg = recipe.perturbation
    if cfg.alpha == 0.0 or cfg.beta == 0.0:
        return None
    return LatentPerturbation(cfg.alpha, cfg.beta, cfg.delta, schedule=cfg.schedule)
