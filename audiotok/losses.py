"""Training losses for audio codecs: mel L1 reconstruction, multi-resolution STFT loss, hinge and
LSGAN adversarial terms and feature matching over lists of sub-discriminator outputs, and
``AudioAdversarial``, which runs WavTokenizer's three discriminators for a training engine.

Conventions are WavTokenizer's (``decoder/loss.py`` and ``experiment.py`` of jishengpeng/WavTokenizer):
no 0.5 factor in the discriminator losses, and per-discriminator normalisation over sub-discriminators
(mean for MPD/MRD, sum for the DAC discriminator).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from audiotok.discriminators import DACDiscriminator, DiscriminatorSet, wavtokenizer_discriminators
from audiotok.dsp import MelSpectrogram, safe_log, stft
from vistok.losses.gan import _floats, _frozen, _unwrap

Logits = Sequence[torch.Tensor]
FeatureMaps = Sequence[Sequence[torch.Tensor]]

_REDUCTIONS = ("mean", "sum")
_DAC_MODES = ("published", "corrected")


def _reduce(terms: Sequence[torch.Tensor], reduction: str) -> torch.Tensor:
    """Sum or mean of per-sub-discriminator terms."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if not terms:
        raise ValueError("no sub-discriminator outputs to reduce")
    total = torch.stack([t.float() for t in terms]).sum()
    return total / len(terms) if reduction == "mean" else total


def _pairs(real: Sequence, fake: Sequence, what: str):
    if len(real) != len(fake):
        raise ValueError(f"{what}: {len(real)} real vs {len(fake)} fake sub-discriminator outputs")
    return zip(real, fake)


def hinge_generator_loss(fake_logits: Logits, reduction: str = "mean") -> torch.Tensor:
    """``mean(relu(1 - D(fake)))`` per sub-discriminator, then mean or sum over them."""
    return _reduce([F.relu(1 - d.float()).mean() for d in fake_logits], reduction)


def hinge_discriminator_loss(real_logits: Logits, fake_logits: Logits, reduction: str = "mean") -> torch.Tensor:
    """``mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))`` per sub-discriminator, then mean or sum."""
    return _reduce([F.relu(1 - r.float()).mean() + F.relu(1 + f.float()).mean()
                    for r, f in _pairs(real_logits, fake_logits, "hinge_discriminator_loss")], reduction)


def lsgan_generator_loss(fake_logits: Logits, reduction: str = "mean") -> torch.Tensor:
    """``mean((1 - D(fake))^2)`` per sub-discriminator, then mean or sum."""
    return _reduce([(1 - d.float()).pow(2).mean() for d in fake_logits], reduction)


def lsgan_discriminator_loss(real_logits: Logits, fake_logits: Logits, reduction: str = "mean") -> torch.Tensor:
    """``mean((1 - D(real))^2) + mean(D(fake)^2)`` per sub-discriminator, then mean or sum."""
    return _reduce([(1 - r.float()).pow(2).mean() + f.float().pow(2).mean()
                    for r, f in _pairs(real_logits, fake_logits, "lsgan_discriminator_loss")], reduction)


def feature_matching_loss(real_fmaps: FeatureMaps, fake_fmaps: FeatureMaps, reduction: str = "mean") -> torch.Tensor:
    """``sum over layers of mean |f_real - f_fake|`` per sub-discriminator, then mean or sum over them.

    Real features are detached. This is WavTokenizer's normalisation: layers are summed, not
    averaged, and MPD/MRD divide by the number of sub-discriminators while the DAC term does not."""
    terms = []
    for real, fake in _pairs(real_fmaps, fake_fmaps, "feature_matching_loss"):
        if len(real) != len(fake):
            raise ValueError(f"feature_matching_loss: {len(real)} real vs {len(fake)} fake feature maps")
        terms.append(torch.stack([(r.detach().float() - f.float()).abs().mean() for r, f in zip(real, fake)]).sum())
    return _reduce(terms, reduction)


_GENERATOR: Dict[str, Callable[..., torch.Tensor]] = {"hinge": hinge_generator_loss, "lsgan": lsgan_generator_loss}
_DISCRIMINATOR: Dict[str, Callable[..., torch.Tensor]] = {"hinge": hinge_discriminator_loss,
                                                          "lsgan": lsgan_discriminator_loss}


class MelReconstructionLoss(nn.Module):
    """L1 distance between natural-log mel spectrograms (clipped at 1e-7) of real and reconstructed
    audio. Defaults are WavTokenizer's: 24 kHz, n_fft 1024, hop 256, 100 HTK mels from 0 Hz to Nyquist,
    magnitude (power 1), centred frames. The recipe's weight (45) is applied by the caller."""

    def __init__(self, sample_rate: int = 24000, n_fft: int = 1024, hop_length: int = 256, n_mels: int = 100,
                 f_min: float = 0.0, f_max: Optional[float] = None):
        super().__init__()
        self.mel = MelSpectrogram(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels,
                                  f_min=f_min, f_max=f_max, power=1.0, center=True)

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        if real.shape != fake.shape:
            raise ValueError(f"MelReconstructionLoss: shapes differ, {tuple(real.shape)} vs {tuple(fake.shape)}")
        return F.l1_loss(safe_log(self.mel(fake)), safe_log(self.mel(real)))


# (n_fft, hop, win) of Parallel WaveGAN's multi-resolution STFT loss
DEFAULT_STFT_RESOLUTIONS = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence plus log-magnitude L1, averaged over STFT resolutions (Hann windows,
    centred frames). Norms are taken per item and averaged over the batch; ``per_item`` gives the
    per-item values (the metric of the same name uses it)."""

    def __init__(self, resolutions: Sequence[Tuple[int, int, int]] = DEFAULT_STFT_RESOLUTIONS, eps: float = 1e-7):
        super().__init__()
        self.resolutions = [tuple(int(v) for v in r) for r in resolutions]
        if not self.resolutions:
            raise ValueError("MultiResolutionSTFTLoss needs at least one resolution")
        self.eps = eps

    def per_item(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` pairs -> ``(B,)`` fp32 losses."""
        if real.shape != fake.shape:
            raise ValueError(f"MultiResolutionSTFTLoss: shapes differ, {tuple(real.shape)} vs {tuple(fake.shape)}")
        real, fake = real.float().reshape(-1, real.shape[-1]), fake.float().reshape(-1, fake.shape[-1])
        total = torch.zeros(real.shape[0], device=real.device)
        for n_fft, hop, win in self.resolutions:
            mag_r = stft(real, n_fft, hop, win).abs().clamp_min(self.eps)
            mag_f = stft(fake, n_fft, hop, win).abs().clamp_min(self.eps)
            sc = (mag_r - mag_f).flatten(1).norm(dim=1) / mag_r.flatten(1).norm(dim=1)
            log_mag = (mag_r.log() - mag_f.log()).abs().flatten(1).mean(dim=1)
            total = total + sc + log_mag
        return total / len(self.resolutions)

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return self.per_item(real, fake).mean()


@dataclasses.dataclass
class AdversarialTerm:
    """How one discriminator enters the losses: ``loss`` ``"hinge"`` or ``"lsgan"``; ``weight`` scales its
    generator adversarial term and its discriminator loss; ``fm_weight`` its feature matching;
    ``reduction`` (``"mean"`` or ``"sum"``) combines its sub-discriminators."""

    loss: str = "hinge"
    weight: float = 1.0
    fm_weight: float = 1.0
    reduction: str = "mean"

    def __post_init__(self):
        if self.loss not in _GENERATOR:
            raise ValueError(f"AdversarialTerm: loss must be one of {tuple(_GENERATOR)}, got {self.loss!r}")
        if self.reduction not in _REDUCTIONS:
            raise ValueError(f"AdversarialTerm: reduction must be one of {_REDUCTIONS}, got {self.reduction!r}")


def wavtokenizer_terms(mrd_weight: float = 1.0) -> Dict[str, AdversarialTerm]:
    """The published weighting: hinge for MPD and MRD (means over sub-discriminators, MRD scaled by
    ``mrd_loss_coeff``), LSGAN for the DAC discriminator (sums over its eight sub-discriminators)."""
    return {"mpd": AdversarialTerm("hinge", 1.0, 1.0, "mean"),
            "mrd": AdversarialTerm("hinge", mrd_weight, mrd_weight, "mean"),
            "dac": AdversarialTerm("lsgan", 1.0, 1.0, "sum")}


def _seeded_copy(dac: DACDiscriminator, seed: int) -> DACDiscriminator:
    """A new, independently initialised discriminator of the same configuration as ``dac``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DACDiscriminator(**dac.config)


def _split(t: torch.Tensor, n: int) -> Tuple[torch.Tensor, torch.Tensor]:
    return t[:n], t[n:]


class AudioAdversarial(nn.Module):
    """GAN terms of WavTokenizer-style codec training, for an engine that calls two methods:

    - ``generator_loss(real, fake, cond=None) -> (loss, stats)``: weighted adversarial and feature
      matching terms of every discriminator, to add to the reconstruction loss; gradients reach
      ``fake`` only (discriminator parameters are frozen during the call, wrappers bypassed).
    - ``discriminator_loss(real, fake, cond=None) -> (loss, stats)``: the weighted discriminator
      losses on real and (detached) fake audio, for the discriminators' own optimizer step; real
      and fake go through ``self.discriminators`` in one batch, so a DDP wrapper sees one forward.

    ``real`` and ``fake`` are ``(B, T)`` waveforms; ``cond`` an optional int class id ``(1,)`` or
    ``(B,)`` for the conditional MPD/MRD (WavTokenizer passes its bandwidth id). Stats are floats.

    ``self.discriminators`` (a :class:`DiscriminatorSet`, default ``mpd``/``mrd``/``dac``) is what the
    engine optimises; it may be replaced by its ``accelerate.prepare`` wrapper
    (``adv.discriminators = acc.prepare(adv.discriminators)``). ``terms`` maps each name to an
    :class:`AdversarialTerm` (dicts are accepted; default :func:`wavtokenizer_terms`).

    ``dac_mode`` (only when a ``dac`` discriminator is present):

    - ``"published"`` (default) reproduces the released WavTokenizer training. There, the DAC
      discriminator that the loss uses is a first instance which no optimizer holds, while the
      optimizer holds a second instance that never receives a gradient. So the generator's DAC terms
      come from a fixed, randomly initialised network (``self.published_dac``: seeded with
      ``published_dac_seed``, frozen, a submodule so it is also in ``state_dict``), and
      ``discriminators["dac"]`` is kept, with ``requires_grad=False``, but never trained. Its
      discriminator loss is computed on the fixed copy as published and added to the returned loss
      detached: the logged value matches the original, the gradient is the same (none).
    - ``"corrected"`` uses ``discriminators["dac"]`` for both losses and trains it, as the DAC
      recipe intends. This is not the published recipe."""

    def __init__(self, discriminators: Optional[DiscriminatorSet] = None,
                 terms: Optional[Mapping[str, Union[AdversarialTerm, Mapping]]] = None,
                 dac_mode: str = "published", published_dac_seed: int = 0):
        super().__init__()
        if dac_mode not in _DAC_MODES:
            raise ValueError(f"AudioAdversarial: dac_mode must be one of {_DAC_MODES}, got {dac_mode!r}")
        self.discriminators = discriminators if discriminators is not None else wavtokenizer_discriminators()
        raw = wavtokenizer_terms() if terms is None else terms
        self.terms = {k: v if isinstance(v, AdversarialTerm) else AdversarialTerm(**v) for k, v in raw.items()}
        names = set(self.discriminators.keys())
        if set(self.terms) != names:
            raise ValueError(f"AudioAdversarial: terms for {sorted(self.terms)} but discriminators {sorted(names)}")
        self.dac_mode = dac_mode
        self.published_dac: Optional[DACDiscriminator] = None
        if dac_mode == "published" and "dac" in names:
            if not isinstance(self.discriminators["dac"], DACDiscriminator):
                raise ValueError("AudioAdversarial: dac_mode='published' needs discriminators['dac'] "
                                 "to be a DACDiscriminator")
            self.discriminators["dac"].requires_grad_(False)
            self.published_dac = _seeded_copy(self.discriminators["dac"], published_dac_seed).requires_grad_(False)

    def _fixed(self, name: str) -> bool:
        return name == "dac" and self.published_dac is not None

    def _scorer(self, name: str, like: torch.Tensor) -> nn.Module:
        """The module that scores audio for ``name`` outside the wrapped set: the fixed published DAC
        copy (moved to ``like``'s device, since the engine prepares only ``discriminators``) or the
        unwrapped discriminator."""
        if self._fixed(name):
            if next(self.published_dac.parameters()).device != like.device:
                self.published_dac.to(like.device)
            return self.published_dac
        return _unwrap(self.discriminators)[name]

    def generator_loss(self, real: torch.Tensor, fake: torch.Tensor,
                       cond: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Sum over discriminators of ``weight * adversarial + fm_weight * feature matching``."""
        _check_pair(real, fake, "generator_loss")
        total = torch.zeros((), device=fake.device)
        stats: Dict[str, torch.Tensor] = {}
        for name, term in self.terms.items():
            disc = self._scorer(name, fake)
            with _frozen(disc):
                with torch.no_grad():
                    _, fmaps_real = disc(real.detach(), cond)
                logits_fake, fmaps_fake = disc(fake, cond)
            adv = _GENERATOR[term.loss](logits_fake, term.reduction)
            fm = feature_matching_loss(fmaps_real, fmaps_fake, term.reduction)
            total = total + term.weight * adv + term.fm_weight * fm
            stats[f"gan/g_{name}"], stats[f"gan/fm_{name}"] = adv, fm
        stats["gan/g_total"] = total
        return total, _floats(stats)

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor,
                           cond: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Sum over discriminators of ``weight * discriminator loss`` (see the class notes for the
        published DAC term)."""
        _check_pair(real, fake, "discriminator_loss")
        n = real.shape[0]
        both = torch.cat([real.detach(), fake.detach()])
        both_cond = cond if cond is None or cond.numel() == 1 else torch.cat([cond, cond])
        trained = [k for k in self.terms if not self._fixed(k)]
        outs = self.discriminators(both, both_cond, names=trained)
        total = torch.zeros((), device=fake.device)
        stats: Dict[str, torch.Tensor] = {}
        for name, term in self.terms.items():
            if self._fixed(name):
                disc = self._scorer(name, fake)
                with torch.no_grad():
                    logits = disc(both, both_cond)[0]
            else:
                logits = outs[name][0]
            pairs = [_split(t, n) for t in logits]
            d = _DISCRIMINATOR[term.loss]([p[0] for p in pairs], [p[1] for p in pairs], term.reduction)
            total = total + term.weight * d
            stats[f"gan/d_{name}"] = d
            stats[f"gan/logits_real_{name}"] = torch.stack([p[0].float().mean() for p in pairs]).mean()
            stats[f"gan/logits_fake_{name}"] = torch.stack([p[1].float().mean() for p in pairs]).mean()
        stats["gan/d_total"] = total
        return total, _floats(stats)


def _check_pair(real: torch.Tensor, fake: torch.Tensor, who: str) -> None:
    if real.shape != fake.shape:
        raise ValueError(f"AudioAdversarial.{who}: real {tuple(real.shape)} and fake {tuple(fake.shape)} differ")
