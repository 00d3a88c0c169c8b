"""Class-conditional token generators (:class:`~vistok.models.generator.ARGenerator`): next-token
cross-entropy on the ``(ids, labels)`` batches of token shards (``data.kind: tokens``).

Labels are dropped to the null class by the model itself in training mode (``class_dropout`` in
its config), which is what classifier-free guidance needs at sampling time; the objective adds
nothing for it. Held-out evaluation is the validation loss, its perplexity and token accuracy."""
from __future__ import annotations

import math
from typing import Dict, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from vistok.engine.objectives.base import GeneratorStep, Objective


class ARTokenObjective(Objective):
    """Cross-entropy of every position's logits against the id it predicts (teacher forcing)."""

    paired_data = "tokens"

    def __init__(self, recipe, device):
        loss = recipe.loss
        if loss.adversarial.weight > 0 or loss.perceptual_weight > 0:
            raise ValueError("loss.kind=ar_tokens trains on token logits only: set loss.adversarial.weight=0 and "
                             "loss.perceptual_weight=0")
        self.train_root = recipe.data.train

    def check_model(self, model: nn.Module) -> None:
        from vistok.data.tokens import read_meta

        from vistok.models.generator.model import ARGenerator

        config = model.config if isinstance(model, ARGenerator) else None
        if config is None:
            raise ValueError(f"loss.kind=ar_tokens trains a token generator (model.family: generator), "
                             f"not a {type(model).__name__}")
        meta = read_meta(self.train_root)
        where = f"data.train {self.train_root}"
        if meta["codebook_size"] != config.codebook_size:
            raise ValueError(f"{where}: ids from a codebook of {meta['codebook_size']}, but "
                             f"model.config.codebook_size is {config.codebook_size}")
        if meta["num_tokens"] != config.num_tokens:
            raise ValueError(f"{where}: {meta['num_tokens']} tokens per image, but model.config.num_tokens is "
                             f"{config.num_tokens}")
        if meta.get("num_classes", 0) > config.num_classes:
            raise ValueError(f"{where}: {meta['num_classes']} classes, but model.config.num_classes is "
                             f"{config.num_classes}")

    def generator_step(self, model, batch, step, autocast, last_layer=None) -> GeneratorStep:
        from vistok.models.generator import next_token_loss

        ids, labels = batch
        with autocast():
            logits = model(ids, labels)
        ce, stats = next_token_loss(logits, ids)
        return GeneratorStep(ce, {"loss/ce": ce, "loss/total": ce}, None,
                             {f"stats/{k}": v for k, v in stats.items()})

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: Sequence, device: torch.device,
                 autocast) -> Tuple[Dict[str, float], torch.Tensor]:
        """Mean cross-entropy per token over the held-out batches (labels kept: eval mode drops
        none), its perplexity ``exp(loss)``, and the accuracy of the argmax token."""
        was_training = model.training
        model.eval()
        total, correct, count = 0.0, 0.0, 0
        for ids, labels in batches:
            ids, labels = ids.to(device), labels.to(device)
            with autocast():
                logits = model(ids, labels)
            logits = logits.float()
            total += F.cross_entropy(logits.flatten(0, 1), ids.flatten(), reduction="sum").item()
            correct += (logits.argmax(-1) == ids).sum().item()
            count += ids.numel()
        model.train(was_training)
        if not count:
            return {}, torch.empty(0)
        loss = total / count
        results = {"val/loss": loss, "val/perplexity": math.exp(loss), "val/token_accuracy": correct / count}
        return results, torch.empty(0)
