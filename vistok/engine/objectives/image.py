"""Image tokenizers: pixel reconstruction (L1/L2), quantizer loss, LPIPS perceptual loss and a
PatchGAN discriminator with hinge or non-saturating loss, LeCam and the VQGAN adaptive weight."""
from __future__ import annotations

from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from vistok.engine.objectives.base import GeneratorStep, Objective
from vistok.engine.recipe import Recipe


def build_discriminator(adv) -> nn.Module:
    """The recipe's ``loss.adversarial`` section -> a discriminator for images in [0, 1]."""
    from vistok.losses import BlurPoolDiscriminator, PatchDiscriminator

    if adv.arch == "titok":
        return BlurPoolDiscriminator(channels=adv.channels, num_stages=adv.num_layers)
    return PatchDiscriminator(channels=adv.channels, num_layers=adv.num_layers, norm=adv.norm)


def _perceptual(cfg):
    from vistok.errors import MissingWeightsError
    from vistok.losses import build_perceptual

    try:
        return build_perceptual(cfg.perceptual_net, cfg.perceptual_allow_random)
    except MissingWeightsError as err:
        raise MissingWeightsError(f"loss.perceptual_net={cfg.perceptual_net}: {err} (or set "
                                  "loss.perceptual_allow_random: true to train on a random network, "
                                  "which is not a perceptual loss)") from None


class ImageObjective(Objective):
    """The TiTok / VQGAN family of losses, configured by the recipe's ``loss`` section."""

    def __init__(self, recipe: Recipe, device: torch.device):
        from vistok.losses import AdversarialLoss

        self.cfg = cfg = recipe.loss
        self.perceptual = _perceptual(cfg).to(device) if cfg.perceptual_weight > 0 else None
        adv = cfg.adversarial
        self.adversarial = None
        if adv.weight > 0:
            disc = build_discriminator(adv)
            if adv.init:
                from vistok.models.state_dict import load_strict
                from vistok.hub.discriminators import release_discriminator_state

                load_strict(disc, release_discriminator_state(adv.init), f"loss.adversarial.init {adv.init}")
            self.adversarial = AdversarialLoss(disc, weight=adv.weight, start_step=adv.start_step, loss=adv.loss,
                                               lecam_weight=adv.lecam_weight, adaptive=adv.adaptive).to(device)
            self.discriminator = disc
            self.discriminator_lr = adv.lr
            self.discriminator_start = adv.start_step
            self.sync_batchnorm = adv.arch == "patchgan" and adv.norm == "batch"

    def set_discriminator(self, wrapped: nn.Module) -> None:
        self.discriminator = wrapped
        self.adversarial.discriminator = wrapped

    def needs_last_layer(self) -> bool:
        return self.adversarial is not None and self.cfg.adversarial.adaptive

    def generator_step(self, model, x, step, autocast, last_layer=None) -> GeneratorStep:
        return self.reconstruction_step(model, x, x, step, autocast, last_layer)

    def reconstruction_step(self, model, inputs, target, step, autocast, last_layer=None) -> GeneratorStep:
        """The losses of ``model(inputs)`` against ``target`` (the input itself, except in
        post-training, where a generated image must decode to its real counterpart)."""
        cfg = self.cfg
        with autocast():
            out = model(inputs)
        recon = out.recon
        fn = F.mse_loss if cfg.reconstruction == "l2" else F.l1_loss
        rec = fn(recon.float(), target.float())
        name, bottleneck, weight = self.bottleneck_term(out, inputs)
        total = cfg.reconstruction_weight * rec + weight * bottleneck
        terms = {"loss/reconstruction": rec, name: bottleneck}
        if self.perceptual is not None:
            perc = self.perceptual(recon.float(), target.float())
            terms["loss/perceptual"] = perc
            total = total + cfg.perceptual_weight * perc
        stats: Dict[str, float] = {f"stats/{k}": v for k, v in out.stats.items()}
        if self.adversarial is not None:
            g_loss, g_stats = self.adversarial.generator_loss(recon, step, rec_loss=total, last_layer=last_layer)
            total = total + g_loss
            terms["loss/generator"] = g_loss
            stats.update(g_stats)
        terms["loss/total"] = total
        return GeneratorStep(total, terms, recon, stats)

    def bottleneck_term(self, out, x) -> Tuple[str, torch.Tensor, float]:
        """The model's own loss (``out.loss``) as ``(log name, value, weight)``: the quantizer's here."""
        return "loss/quantizer", out.loss.float(), self.cfg.quantizer_weight

    def discriminator_loss(self, x, recon, step) -> Tuple[torch.Tensor, Dict]:
        loss, stats = self.adversarial.discriminator_loss(x, recon, step)
        return loss, {"loss/discriminator": loss, **stats}

    def checkpoint_objects(self) -> List[object]:
        return [self.adversarial.lecam] if self.adversarial is not None else []

    def notes(self) -> List[str]:
        return [self.perceptual.status] if self.perceptual is not None else []
