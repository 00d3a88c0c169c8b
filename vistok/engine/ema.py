"""Exponential moving average of a model's weights: the copy tokenizer papers evaluate and export."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    """Keeps ``shadow``, a frozen copy of ``model`` whose floating-point parameters follow
    ``decay * shadow + (1 - decay) * current`` after each :meth:`update`; buffers (codebook
    statistics, counters) are copied as they are. The effective decay warms up as
    ``min(decay, (1 + n) / (10 + n))`` so early averages are not dominated by the initialisation."""

    def __init__(self, model: nn.Module, decay: float):
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        n = int(self.num_updates)
        decay = min(self.decay, (1 + n) / (10 + n))
        current = dict(model.named_parameters())
        for name, shadow in self.shadow.named_parameters():
            shadow.lerp_(current[name].detach().to(shadow.dtype), 1.0 - decay)
        current_buffers = dict(model.named_buffers())
        for name, shadow in self.shadow.named_buffers():
            shadow.copy_(current_buffers[name])
        self.num_updates += 1

    def train(self, mode: bool = True) -> "EMA":
        super().train(mode)
        self.shadow.eval()  # the average is only ever evaluated
        return self
