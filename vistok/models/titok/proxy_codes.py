"""TiTok stage 1: the two-stage decoder learns to predict, at every cell of the 16x16 grid, the
code a frozen MaskGIT-VQGAN (the "teacher") assigns to the image; cross-entropy over its 1024
codes plus the quantizer loss. No pixels are decoded, so no pixel or adversarial loss applies."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vistok.engine.objectives.base import GeneratorStep, Objective


class ProxyCodeObjective(Objective):
    """Cross-entropy to the teacher's codes (``loss.proxy_teacher``: a zoo name or a directory)."""

    def __init__(self, recipe, device):
        from vistok.models.pretrained import load_pretrained

        self.quantizer_weight = recipe.loss.quantizer_weight
        self.teacher = load_pretrained(recipe.loss.proxy_teacher, device=str(device)).eval().requires_grad_(False)
        if recipe.loss.adversarial.weight > 0 or recipe.loss.perceptual_weight > 0:
            raise ValueError("loss.kind=proxy_codes trains on code logits only: set loss.adversarial.weight=0 "
                             "and loss.perceptual_weight=0 (they belong to stage 2)")

    @torch.no_grad()
    def targets(self, x: torch.Tensor, grid: int) -> torch.Tensor:
        ids = self.teacher.encode(x.float())
        if ids.shape[1] != grid * grid:
            raise ValueError(f"loss.proxy_teacher gives {ids.shape[1]} codes per image, but the decoder predicts a "
                             f"{grid}x{grid} grid; the teacher's downsampling must match the tokenizer's patch size")
        return ids.view(len(x), grid, grid)

    def generator_step(self, model, x, step, autocast, last_layer=None) -> GeneratorStep:
        with autocast():
            out = model(x, output="code_logits")
        logits = out.recon.float()
        target = self.targets(x, logits.shape[-1])
        ce = F.cross_entropy(logits, target)
        quant = out.loss.float()
        total = ce + self.quantizer_weight * quant
        accuracy = (logits.argmax(1) == target).float().mean()
        terms = {"loss/proxy_ce": ce, "loss/quantizer": quant, "loss/total": total}
        stats = {f"stats/{k}": v for k, v in out.stats.items()}
        stats["stats/proxy_accuracy"] = float(accuracy)
        return GeneratorStep(total, terms, None, stats)
