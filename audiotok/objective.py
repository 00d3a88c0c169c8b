"""Audio codecs (WavTokenizer-style): mel-spectrogram L1, optional multi-resolution STFT distance,
the quantizer's commitment loss, and the multi-period / multi-resolution / DAC discriminators with
their hinge or LSGAN and feature-matching terms (:class:`audiotok.losses.AudioAdversarial`)."""
from __future__ import annotations

from typing import Dict, Tuple

import torch
from torch import nn

from vistok.engine.objectives.base import GeneratorStep, Objective


def _mono(x: torch.Tensor) -> torch.Tensor:
    """Folders give ``(B, 1, T)``; the codec's losses take ``(B, T)``."""
    return x.reshape(x.shape[0], -1) if x.dim() == 3 and x.shape[1] == 1 else x


def _condition(out) -> torch.Tensor:
    """The AdaLN condition id the codec drew for this step; the conditional discriminators see it too."""
    value = out.stats.get("condition", 0.0)
    return torch.tensor([int(float(value))], device=out.recon.device)


def _warm_start(adversarial: nn.Module, name: str) -> None:
    """Load the discriminators a release ships (only those this recipe trains) strictly."""
    from vistok.models.state_dict import load_strict
    from vistok.hub.discriminators import release_discriminator_state

    wanted = set(adversarial.state_dict())
    state = {k: v for k, v in release_discriminator_state(name).items() if k in wanted}
    load_strict(adversarial, state, f"loss.adversarial.init {name}")


def _discriminators(audio):
    """The discriminators ``loss.audio.discriminators`` names (as the families register them), built
    in the order given, and their GAN terms."""
    from audiotok.discriminators.collection import DiscriminatorSet
    from vistok.registry import contributions, resolve

    known = contributions("discriminators")
    names = list(audio.discriminators)
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"loss.audio.discriminators: unknown {unknown}; choose from {sorted(known)}")
    built = {name: resolve(known[name][0])(audio) for name in names}
    return DiscriminatorSet({n: d for n, (d, _) in built.items()}), {n: term for n, (_, term) in built.items()}


class AudioObjective(Objective):
    """``loss.audio`` weights the spectral terms; ``loss.quantizer_weight`` the commitment loss
    (1000 in the published recipe); ``loss.adversarial.weight`` > 0 turns the discriminators on
    (one multiplier on all their terms, whose relative weights are the published ones)."""

    def __init__(self, recipe, device):
        from audiotok.losses import AudioAdversarial, MelReconstructionLoss, MultiResolutionSTFTLoss

        self.cfg = cfg = recipe.loss
        audio = cfg.audio
        sample_rate = int(recipe.model.config.get("sample_rate", recipe.data.sample_rate))
        self.mel = MelReconstructionLoss(sample_rate=sample_rate, n_fft=audio.mel_n_fft, hop_length=audio.mel_hop,
                                         n_mels=audio.mel_bins).to(device)
        self.stft = MultiResolutionSTFTLoss().to(device) if audio.mrstft_weight > 0 else None
        self.adversarial = None
        adv = cfg.adversarial
        if adv.weight > 0:
            discs, terms = _discriminators(audio)
            self.adversarial = AudioAdversarial(discs, terms, dac_mode=audio.dac_mode)
            if adv.init:
                _warm_start(self.adversarial, adv.init)
            self.adversarial = self.adversarial.to(device)
            self.discriminator = self.adversarial.discriminators
            self.discriminator_lr = adv.lr
            self.discriminator_start = adv.start_step
            self.weight = adv.weight
        self._cond = None

    def set_discriminator(self, wrapped: nn.Module) -> None:
        self.discriminator = wrapped
        self.adversarial.discriminators = wrapped

    def generator_step(self, model, x, step, autocast, last_layer=None) -> GeneratorStep:
        cfg = self.cfg
        x = _mono(x)
        with autocast():
            out = model(x)
        recon = out.recon.float()
        mel = self.mel(x.float(), recon)
        quant = out.loss.float()
        total = cfg.audio.mel_weight * mel + cfg.quantizer_weight * quant
        terms = {"loss/mel": mel, "loss/quantizer": quant}
        if self.stft is not None:
            stft = self.stft(x.float(), recon)
            terms["loss/mrstft"] = stft
            total = total + cfg.audio.mrstft_weight * stft
        stats: Dict[str, float] = {f"stats/{k}": v for k, v in out.stats.items()}
        self._cond = _condition(out) if self.adversarial is not None else None
        if self.discriminator_active(step):
            g_loss, g_stats = self.adversarial.generator_loss(x.float(), recon, self._cond)
            total = total + self.weight * g_loss
            terms["loss/generator"] = g_loss
            stats.update(g_stats)
        terms["loss/total"] = total
        return GeneratorStep(total, terms, recon, stats)

    def discriminator_loss(self, x, recon, step) -> Tuple[torch.Tensor, Dict]:
        loss, stats = self.adversarial.discriminator_loss(_mono(x).float(), recon.float(), self._cond)
        return self.weight * loss, {"loss/discriminator": loss, **stats}
