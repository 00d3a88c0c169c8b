"""Adversarial losses for tokenizer training: hinge / non-saturating GAN losses, LeCam regularisation,
VQGAN's adaptive generator weight, and ``AdversarialLoss`` which ties them together for the engine.

Conventions follow TiTok's ``modeling/modules/losses.py`` (bytedance/1d-tokenizer): the discriminator
hinge loss carries the 0.5 factor, the generator loss is ``-mean(logits_fake)``, and LeCam acts on the
batch-mean logits against EMAs taken before this step's update.
"""
from __future__ import annotations

import contextlib
from typing import Dict, Iterator, Optional, Tuple

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

_LOSSES = ("hinge", "non_saturating")


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss ``0.5 * (mean(relu(1 - real)) + mean(relu(1 + fake)))`` (taming / TiTok)."""
    return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())


def hinge_g_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss ``-mean(logits_fake)``."""
    return -logits_fake.mean()


def non_saturating_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Logistic discriminator loss ``0.5 * (mean(softplus(-real)) + mean(softplus(fake)))``."""
    return 0.5 * (F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean())


def non_saturating_g_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``mean(softplus(-logits_fake))`` = ``-log sigmoid(fake)``."""
    return F.softplus(-logits_fake).mean()


class LeCam(nn.Module):
    """LeCam regulariser (Tseng et al. 2021) in TiTok's form, on batch-mean logits:
    ``relu(mean(real) - ema_fake)**2 + relu(ema_real - mean(fake))**2``.

    ``ema_real`` / ``ema_fake`` are buffers (start at 0, no bias correction, ``decay`` 0.999), so they
    travel with ``state_dict``. Call ``penalty`` first, then ``update`` (TiTok's order)."""

    def __init__(self, decay: float = 0.999):
        super().__init__()
        self.decay = decay
        self.register_buffer("ema_real", torch.zeros(()))
        self.register_buffer("ema_fake", torch.zeros(()))

    @torch.no_grad()
    def update(self, logits_real: torch.Tensor, logits_fake: torch.Tensor) -> None:
        """EMA step with this batch's mean logits (detached; averaged over ranks when distributed)."""
        means = torch.stack([logits_real.detach().float().mean(), logits_fake.detach().float().mean()])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(means)
            means /= dist.get_world_size()
        means = means.to(self.ema_real)
        self.ema_real.mul_(self.decay).add_(means[0] * (1 - self.decay))
        self.ema_fake.mul_(self.decay).add_(means[1] * (1 - self.decay))

    def penalty(self, logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
        """The (unweighted) LeCam penalty for this batch against the current EMAs; fp32 scalar."""
        real, fake = logits_real.float().mean(), logits_fake.float().mean()
        ema_real = self.ema_real.detach().clone().to(real)
        ema_fake = self.ema_fake.detach().clone().to(real)
        return F.relu(real - ema_fake).pow(2) + F.relu(ema_real - fake).pow(2)


def adaptive_generator_weight(rec_loss: torch.Tensor, g_loss: torch.Tensor, last_layer_weight: torch.Tensor,
                              max_weight: float = 1e4, eps: float = 1e-4) -> torch.Tensor:
    """VQGAN's balance ``||d rec/dW|| / (||d g/dW|| + eps)`` on the decoder's last weight ``W``,
    clamped to ``[0, max_weight]`` and detached. Both graphs are retained for the real backward."""
    rec_grad = torch.autograd.grad(rec_loss, last_layer_weight, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last_layer_weight, retain_graph=True)[0]
    weight = rec_grad.float().norm() / (g_grad.float().norm() + eps)
    return weight.clamp(0.0, max_weight).detach()


def _unwrap(module: nn.Module) -> nn.Module:
    """The module inside DDP / DataParallel (generator passes must not go through DDP's hooks)."""
    while isinstance(module, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        module = module.module
    return module


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Forward without recording gradients for ``module``'s parameters; flags restored afterwards."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _floats(stats: Dict[str, torch.Tensor]) -> Dict[str, float]:
    """Detached scalar tensors -> plain floats with a single device sync."""
    values = torch.stack([v.detach().float().reshape(()) for v in stats.values()]).tolist()
    return dict(zip(stats, values))


def _zero(like: torch.Tensor) -> torch.Tensor:
    """fp32 zero on ``like``'s device that can be added to a loss or ``.backward()``-ed on its own."""
    return torch.zeros((), device=like.device, dtype=torch.float32, requires_grad=True)


class AdversarialLoss(nn.Module):
    """GAN terms for a training engine: ``generator_loss`` (added to the tokenizer loss) and
    ``discriminator_loss`` (for the discriminator's own optimizer step), both 0 before ``start_step``.

    ``loss`` is ``"hinge"`` or ``"non_saturating"``; ``lecam_weight > 0`` adds the LeCam penalty to the
    discriminator loss; ``adaptive=True`` multiplies ``weight`` by VQGAN's gradient-norm ratio on the
    decoder's last layer. ``discriminator`` may be DDP-wrapped: the generator pass runs the inner module
    with frozen parameters (no DDP hooks, no gradients into D), the discriminator pass runs the wrapper.
    ``lecam`` always exists (its buffers are checkpoint state). Stats are plain floats."""

    def __init__(self, discriminator: nn.Module, weight: float, start_step: int, loss: str = "hinge",
                 lecam_weight: float = 0.0, adaptive: bool = False, lecam_decay: float = 0.999,
                 max_adaptive_weight: float = 1e4):
        super().__init__()
        if loss not in _LOSSES:
            raise ValueError(f"AdversarialLoss: loss must be one of {_LOSSES}, got {loss!r}")
        self.discriminator = discriminator
        self.weight = float(weight)
        self.start_step = int(start_step)
        self.loss = loss
        self.lecam_weight = float(lecam_weight)
        self.adaptive = adaptive
        self.max_adaptive_weight = max_adaptive_weight
        self.lecam = LeCam(lecam_decay)

    def active(self, step: int) -> bool:
        """Whether the GAN terms are on at ``step`` (``step >= start_step`` and ``weight > 0``)."""
        return step >= self.start_step and self.weight > 0

    def generator_loss(self, fake: torch.Tensor, step: int, rec_loss: Optional[torch.Tensor] = None,
                       last_layer: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Weighted generator loss on reconstructions ``fake`` in [0, 1] and its stats.

        With ``adaptive``, ``rec_loss`` (the non-GAN loss) and ``last_layer`` (the decoder's last weight)
        are required; without autograd (e.g. validation under ``no_grad``) the adaptive factor is 0, as in
        taming-transformers."""
        if not self.active(step):
            return _zero(fake), {"gan/g_weight": 0.0}
        disc = _unwrap(self.discriminator)
        with _frozen(disc):
            logits = disc(fake).float()
        g_loss = hinge_g_loss(logits) if self.loss == "hinge" else non_saturating_g_loss(logits)
        weight = torch.tensor(self.weight, device=logits.device)
        if self.adaptive:
            if rec_loss is None or last_layer is None:
                raise ValueError("AdversarialLoss(adaptive=True) needs rec_loss and last_layer")
            if torch.is_grad_enabled() and rec_loss.requires_grad and g_loss.requires_grad:
                weight = weight * adaptive_generator_weight(rec_loss, g_loss, last_layer, self.max_adaptive_weight)
            else:
                weight = weight * 0.0
        stats = _floats({"gan/g_loss": g_loss, "gan/g_weight": weight, "gan/logits_fake_g": logits.mean()})
        return weight * g_loss, stats

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor,
                           step: int) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Discriminator loss on real images and (detached here) reconstructions, plus the weighted LeCam
        penalty when ``lecam_weight > 0`` (whose EMAs are then updated); 0 before ``start_step``."""
        if not self.active(step):
            return _zero(real), {}
        logits_real = self.discriminator(real.detach()).float()
        logits_fake = self.discriminator(fake.detach()).float()
        if self.loss == "hinge":
            d_loss = hinge_d_loss(logits_real, logits_fake)
        else:
            d_loss = non_saturating_d_loss(logits_real, logits_fake)
        stats = {"gan/d_loss": d_loss, "gan/logits_real": logits_real.mean(), "gan/logits_fake": logits_fake.mean()}
        loss = d_loss
        if self.lecam_weight > 0:
            penalty = self.lecam.penalty(logits_real, logits_fake)
            self.lecam.update(logits_real, logits_fake)
            loss = loss + self.lecam_weight * penalty
            stats.update({"gan/lecam_penalty": penalty, "gan/ema_logits_real": self.lecam.ema_real,
                          "gan/ema_logits_fake": self.lecam.ema_fake})
        return loss, _floats(stats)
