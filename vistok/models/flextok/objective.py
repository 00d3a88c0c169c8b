"""Tokenizers whose forward pass computes their own training loss (FlexTok's rectified-flow
decoder): the loss is ``out.loss``; there is no pixel loss and no discriminator."""
from __future__ import annotations

from vistok.engine.objectives.base import GeneratorStep, Objective


class FlowObjective(Objective):
    """Backpropagates the model's own loss (flow matching plus whatever it adds); the model's
    ``forward`` takes ``reconstruct=False`` to skip decoding pixels that no loss reads."""

    def __init__(self, recipe, device):
        pass

    def generator_step(self, model, x, step, autocast, last_layer=None) -> GeneratorStep:
        with autocast():
            out = model(x, reconstruct=False)  # nothing here reads pixels: skip decoding them
        total = out.loss.float()
        stats = {f"stats/{k}": v for k, v in out.stats.items()}
        return GeneratorStep(total, {"loss/flow": total, "loss/total": total}, out.recon, stats)
