"""Audio codecs (WavTokenizer-style): mel-spectrogram L1, optional multi-resolution STFT distance,
the quantizer's commitment loss, and the multi-period / multi-resolution / DAC discriminators with
their hinge or LSGAN and feature-matching terms (:class:`audiotok.losses.AudioAdversarial`).
EnCodec's published training adds, all off by default: the waveform L1 and multi-scale mel losses
(:mod:`audiotok.encodec_losses`), the MS-STFT discriminator (``msstft``) and the loss balancer
(:mod:`audiotok.balancer`). DAC's adds, off by default too: the multi-scale log10 mel and STFT
distances (:mod:`audiotok.spectral_losses`, ``logmel`` / ``logstft``) and its own discriminator
(``dac_hann``)."""
from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.nn.functional as F
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


def _check_encodec_keys(audio) -> None:
    for key in ("l1_weight", "msspec_weight", "logmel_weight", "logstft_weight"):
        if not getattr(audio, key) >= 0:
            raise ValueError(f"loss.audio.{key} must be >= 0; got {getattr(audio, key)!r}")
    if not audio.balancer_total_norm > 0:
        raise ValueError(f"loss.audio.balancer_total_norm must be > 0; got {audio.balancer_total_norm!r}")
    if not 0 <= audio.balancer_ema_decay <= 1:
        raise ValueError(f"loss.audio.balancer_ema_decay must be in [0, 1]; got {audio.balancer_ema_decay!r}")


def _built(key: str, build):
    """The loss ``build`` makes, its ValueError naming the ``loss.audio.<key>_*`` keys."""
    try:
        return build()
    except ValueError as err:
        raise ValueError(f"loss.audio.{key}_*: {err}") from None


class AudioObjective(Objective):
    """``loss.audio`` weights the spectral terms; ``loss.quantizer_weight`` the commitment loss
    (1000 in the published recipe); ``loss.adversarial.weight`` > 0 turns the discriminators on
    (one multiplier on all their terms, whose relative weights are the published ones).

    With ``loss.audio.balancer`` the losses computed on the reconstruction (``mel``, ``mrstft``,
    ``l1``, ``msspec``, ``logmel``, ``logstft``, and per discriminator ``adv_<name>`` /
    ``feat_<name>``) are not summed with their weights: :class:`audiotok.balancer.LossBalancer` turns the weights (each discriminator's
    term weights times ``loss.adversarial.weight``; zero weights drop a loss, which is still logged)
    into shares of a gradient of norm ``balancer_total_norm`` with respect to the reconstruction.
    The engine backpropagates one scalar, so ``GeneratorStep.total`` is the balancer's surrogate
    (its value the effective loss ``sum_i scale_i * loss_i``, its gradient with respect to the
    reconstruction the balanced one) plus ``quantizer_weight`` times the quantizer loss, which does
    not pass through the reconstruction and stays unbalanced, as in AudioCraft. The balancer's norm
    averages are checkpointed with the run (:meth:`checkpoint_objects`). Before
    ``loss.adversarial.start_step`` the shares are those of the reconstruction losses alone."""

    def __init__(self, recipe, device):
        from audiotok.losses import AudioAdversarial, MelReconstructionLoss, MultiResolutionSTFTLoss

        self.cfg = cfg = recipe.loss
        audio = cfg.audio
        sample_rate = int(recipe.model.config.get("sample_rate", recipe.data.sample_rate))
        self.mel = MelReconstructionLoss(sample_rate=sample_rate, n_fft=audio.mel_n_fft, hop_length=audio.mel_hop,
                                         n_mels=audio.mel_bins).to(device)
        self.stft = MultiResolutionSTFTLoss().to(device) if audio.mrstft_weight > 0 else None
        _check_encodec_keys(audio)
        self.msspec = None
        if audio.msspec_weight > 0:
            from audiotok.encodec_losses import MultiScaleMelLoss

            self.msspec = MultiScaleMelLoss(sample_rate).to(device)
        self.logmel = self.logstft = None
        if audio.logmel_weight > 0:
            from audiotok.spectral_losses import MultiScaleLogMelLoss

            self.logmel = _built("logmel", lambda: MultiScaleLogMelLoss(
                sample_rate, audio.logmel_windows, audio.logmel_bins, audio.logmel_fmin, audio.logmel_fmax,
                eps=audio.logmel_clamp, power=audio.logmel_pow, log_weight=audio.logmel_log_weight,
                mag_weight=audio.logmel_mag_weight)).to(device)
        if audio.logstft_weight > 0:
            from audiotok.spectral_losses import MultiScaleLogSTFTLoss

            self.logstft = _built("logstft", lambda: MultiScaleLogSTFTLoss(
                audio.logstft_windows, eps=audio.logstft_clamp, power=audio.logstft_pow,
                log_weight=audio.logstft_log_weight, mag_weight=audio.logstft_mag_weight)).to(device)
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
        self.balancer = None
        self._termwise = False  # the GAN terms computed apart (balancer, or AudioCraft-normalised terms)
        if self.adversarial is not None:
            from audiotok.encodec_losses import AudioCraftTerm

            terms = self.adversarial.terms.values()
            self._termwise = audio.balancer or any(isinstance(t, AudioCraftTerm) for t in terms)
        if audio.balancer:
            from audiotok.balancer import LossBalancer

            weights = {"mel": audio.mel_weight, "mrstft": audio.mrstft_weight, "l1": audio.l1_weight,
                       "msspec": audio.msspec_weight, "logmel": audio.logmel_weight, "logstft": audio.logstft_weight}
            if self.adversarial is not None:
                for name, term in self.adversarial.terms.items():
                    weights[f"adv_{name}"] = self.weight * term.weight
                    weights[f"feat_{name}"] = self.weight * term.fm_weight
            weights = {k: float(v) for k, v in weights.items() if v > 0}
            if not weights:
                raise ValueError("loss.audio.balancer: no loss on the reconstruction has a positive weight")
            self.balancer = LossBalancer(weights, total_norm=audio.balancer_total_norm,
                                         ema_decay=audio.balancer_ema_decay, per_item=audio.balancer_per_item)

    def checkpoint_objects(self):
        return [self.balancer] if self.balancer is not None else []

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
        on_recon = {"mel": mel}  # the losses computed on the reconstruction, by balancer name
        if self.stft is not None:
            stft = self.stft(x.float(), recon)
            terms["loss/mrstft"] = stft
            total = total + cfg.audio.mrstft_weight * stft
            on_recon["mrstft"] = stft
        if cfg.audio.l1_weight > 0:
            on_recon["l1"] = terms["loss/l1"] = F.l1_loss(recon, x.float())
            total = total + cfg.audio.l1_weight * on_recon["l1"]
        if self.msspec is not None:
            on_recon["msspec"] = terms["loss/msspec"] = self.msspec(x.float(), recon)
            total = total + cfg.audio.msspec_weight * on_recon["msspec"]
        for name, loss in (("logmel", self.logmel), ("logstft", self.logstft)):
            if loss is not None:
                on_recon[name] = terms[f"loss/{name}"] = loss(x.float(), recon)
                total = total + getattr(cfg.audio, f"{name}_weight") * on_recon[name]
        stats: Dict[str, float] = {f"stats/{k}": v for k, v in out.stats.items()}
        self._cond = _condition(out) if self.adversarial is not None else None
        if self.discriminator_active(step):
            if self._termwise:
                from audiotok.encodec_losses import generator_terms

                parts, g_loss, g_stats = generator_terms(self.adversarial, x.float(), recon, self._cond)
                on_recon.update(parts)
            else:
                g_loss, g_stats = self.adversarial.generator_loss(x.float(), recon, self._cond)
            total = total + self.weight * g_loss
            terms["loss/generator"] = g_loss
            stats.update(g_stats)
        if self.balancer is not None:
            balanced = self.balancer({k: v for k, v in on_recon.items() if k in self.balancer.weights}, recon)
            total = balanced.loss + cfg.quantizer_weight * quant
            stats.update(balanced.stats)
        terms["loss/total"] = total
        return GeneratorStep(total, terms, recon, stats)

    def discriminator_loss(self, x, recon, step) -> Tuple[torch.Tensor, Dict]:
        loss, stats = self.adversarial.discriminator_loss(_mono(x).float(), recon.float(), self._cond)
        return self.weight * loss, {"loss/discriminator": loss, **stats}
