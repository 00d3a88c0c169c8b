"""RobusTok post-training ("Image Tokenizer Needs Post-Training"): fine-tune a tokenizer's decoder
so that tokens a trained generator actually produces decode to the real image.

Batches are ``(generated, real)`` pairs (``data.kind: pairs``, written by ``tokzoo
posttrain-pairs``): the generated image is what the frozen generator sampled around the real
one's tokens with teacher forcing kept with probability sigma, decoded by the tokenizer. It goes
through the tokenizer (frozen encoder and quantizer re-encode it to roughly those tokens; the
recipe freezes them with ``model.freeze``) and the decoder's output is scored against the real
image with the image objective's losses (reconstruction, perceptual, GAN: the discriminator sees
the real image as real)."""
from __future__ import annotations

from typing import Dict, Tuple

import torch
from torch import nn

from vistok.engine.objectives.base import GeneratorStep
from vistok.engine.objectives.image import ImageObjective


class PostTrainObjective(ImageObjective):
    """The image losses with the real image of each pair as the target."""

    paired_data = "pairs"

    def __init__(self, recipe, device):
        super().__init__(recipe, device)
        self.trained_parts = []

    def check_model(self, model: nn.Module) -> None:
        parts = {}
        for name, p in model.named_parameters():
            top = name.split(".")[0]
            parts[top] = parts.get(top, False) or p.requires_grad
        self.trained_parts = [top for top, trains in parts.items() if trains]
        if not self.trained_parts:
            raise ValueError("loss.kind=posttrain: every parameter is frozen; freeze the encoder and quantizer "
                             "(model.freeze) and leave the decoder trainable")

    def notes(self):
        return super().notes() + [f"post-training updates: {', '.join(self.trained_parts)} (the rest is frozen)"]

    def generator_step(self, model, batch, step, autocast, last_layer=None) -> GeneratorStep:
        generated, real = batch
        return self.reconstruction_step(model, generated, real, step, autocast, last_layer)

    def discriminator_loss(self, batch, recon, step) -> Tuple[torch.Tensor, Dict]:
        return super().discriminator_loss(batch[1], recon, step)
