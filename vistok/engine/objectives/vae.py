"""KL autoencoders (FlexTok's stage-0 VAE): the image losses of :class:`ImageObjective` with the
model's KL divergence in place of a quantizer loss.

Weights follow the latent-diffusion KL autoencoders (``LPIPSWithDiscriminator``): there the
reconstruction is summed over pixels and the KL (summed over latent elements) weighted 1e-6 against
it. Here the reconstruction is a per-pixel mean, so the KL is divided by the number of pixel values
of an image and ``loss.kl_weight`` keeps LDM's meaning. LDM's learnable log-variance on the
reconstruction term is not used (its initial value, 0, is the plain loss)."""
from __future__ import annotations

from typing import Tuple

import torch

from vistok.engine.objectives.image import ImageObjective
from vistok.models.base import Tokenizer


class VAEObjective(ImageObjective):
    """Pixel (L1/L2) + LPIPS + ``loss.kl_weight`` x KL + optional PatchGAN, per the recipe's ``loss``."""

    def bottleneck_term(self, out, x) -> Tuple[str, torch.Tensor, float]:
        return "loss/kl", out.loss.float() / x[0].numel(), self.cfg.kl_weight

    def check_model(self, model) -> None:
        if not isinstance(model, Tokenizer) or model.is_discrete:
            raise ValueError(f"loss.kind=vae trains KL autoencoders (a continuous bottleneck, e.g. family flextok_vae); "
                             f"{type(model).__name__} has a codebook")
