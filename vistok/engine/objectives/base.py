"""The contract between the training loop and the losses of one kind of tokenizer."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn


@dataclass
class GeneratorStep:
    """One micro-batch of the tokenizer's (generator's) loss.

    ``total`` is what is backpropagated; ``terms`` are logged; ``recon`` (detached by the
    trainer) is what the discriminator sees as fake; ``stats`` are extra floats to log."""

    total: torch.Tensor
    terms: Dict[str, torch.Tensor]
    recon: Optional[torch.Tensor]
    stats: Dict[str, float] = field(default_factory=dict)


class Objective:
    """Losses for one kind of tokenizer.

    ``discriminator`` is None, or one ``nn.Module`` whose parameters get their own optimizer and
    schedule; the trainer wraps it with accelerate (DDP/FSDP) and hands the wrapped module back
    through :meth:`set_discriminator`, so every discriminator forward must go through it.
    """

    discriminator: Optional[nn.Module] = None
    sync_batchnorm: bool = False  # convert the discriminator's BatchNorms to SyncBatchNorm under multi-GPU DDP
    paired_data: Optional[str] = None  # the paired data.kind (PAIRED_KINDS) this objective reads, if any
    discriminator_lr: Optional[float] = None
    discriminator_start: int = 0

    def set_discriminator(self, wrapped: nn.Module) -> None:
        self.discriminator = wrapped

    def generator_step(self, model: nn.Module, x: torch.Tensor, step: int, autocast,
                       last_layer: Optional[torch.Tensor]) -> GeneratorStep:
        raise NotImplementedError

    def discriminator_loss(self, x: torch.Tensor, recon: torch.Tensor, step: int) -> Tuple[torch.Tensor, Dict]:
        raise NotImplementedError(f"{type(self).__name__} has no discriminator")

    def discriminator_active(self, step: int) -> bool:
        return self.discriminator is not None and step >= self.discriminator_start

    def check_model(self, model: nn.Module) -> None:
        """Raise ValueError when ``model`` (or the recipe's data) cannot train under this objective;
        called once, before training starts."""

    def needs_last_layer(self) -> bool:
        """Whether :meth:`generator_step` wants the decoder's last weight (adaptive GAN weight)."""
        return False

    def checkpoint_objects(self) -> List[object]:
        """Stateful objects (``state_dict``/``load_state_dict``) to save with the run."""
        return []

    def notes(self) -> List[str]:
        """Lines the run log must show (e.g. a perceptual loss running on a random backbone)."""
        return []

    def evaluate(self, model: nn.Module, batches: Sequence, device: torch.device,
                 autocast) -> Tuple[Dict[str, float], torch.Tensor]:
        """Held-out numbers (``val/...``) and an image grid (empty when there is none) for the
        periodic evaluation; tokenizers are scored on their reconstructions."""
        from vistok.engine.evaluate import evaluate_reconstruction

        return evaluate_reconstruction(model, batches, device, autocast)
