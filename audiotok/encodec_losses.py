"""The generator losses of EnCodec's published training (AudioCraft's compression solver,
``audiocraft/solvers/compression.py`` with ``config/solver/compression/default.yaml``) that the
WavTokenizer set in :mod:`audiotok.losses` lacks:

- :class:`MultiScaleMelLoss`, AudioCraft's ``msspec``: mel spectrograms at five window sizes, L1 on
  the power mels plus MSE on their log10;
- :class:`AudioCraftTerm`, the GAN normalisation of AudioCraft's ``AdversarialLoss`` (generator
  term ``-mean(D(fake))``, feature matching averaged over layers), used by the ``msstft``
  discriminator entry;
- :func:`generator_terms`: the generator's adversarial and feature-matching losses of every
  discriminator of an :class:`~audiotok.losses.AudioAdversarial`, kept apart (the loss balancer
  needs each one's gradient), for :class:`AdversarialTerm` and :class:`AudioCraftTerm` alike.

The waveform L1 (``losses.l1``) is ``F.l1_loss`` in the objective.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from audiotok.dsp import mel_filterbank, stft
from audiotok.losses import AdversarialTerm, feature_matching_loss, hinge_generator_loss, lsgan_generator_loss
from vistok.losses.gan import _floats, _frozen

_SHARED_GENERATOR = {"hinge": hinge_generator_loss, "lsgan": lsgan_generator_loss}


class MultiScaleMelLoss(nn.Module):
    """AudioCraft's multi-scale mel loss (``msspec``) at the EnCodec recipe's settings (defaults).

    For each window ``n = 2**i``, ``i`` in ``range(range_start, range_end)`` (64 ... 1024 samples):
    hop ``n // 4``, the signal reflect-padded by ``(n - hop) // 2`` on both sides and zero-padded
    on the right until the last frame is full, an uncentred STFT with a periodic Hann window of
    ``n`` (divided by the window's L2 norm when ``normalized``), the power spectrum through
    ``n_mels`` HTK mel filters from ``f_min`` to ``f_max`` (default Nyquist). The scale's loss is
    ``mean|M(x) - M(y)| + alpha * mean((log10(floor + M(x)) - log10(floor + M(y)))^2)``, with
    ``alpha = sqrt(n - 1)`` when ``alphas`` else 1; the scales' losses are summed and, when
    ``normalized``, divided by ``sum(alpha + 1)``. The published recipe: 64 mels from 64 Hz,
    ``normalized`` true, ``alphas`` false, floor 1e-5 (AudioCraft's class defaults differ: f_min 0,
    ``normalized`` false, ``alphas`` true). Small windows have more mel bands than frequency bins,
    so some bands are empty, as in the reference.

    ``forward(real, fake)`` takes ``(B, T)`` (or ``(B, C, T)``) waveforms; computed in fp32.
    """

    def __init__(self, sample_rate: int = 24000, range_start: int = 6, range_end: int = 11, n_mels: int = 64,
                 f_min: float = 64.0, f_max: Optional[float] = None, normalized: bool = True, alphas: bool = False,
                 floor_level: float = 1e-5):
        super().__init__()
        if not 1 <= range_start < range_end:
            raise ValueError(f"MultiScaleMelLoss: need 1 <= range_start < range_end, got {range_start}, {range_end}")
        self.sizes = [2 ** i for i in range(range_start, range_end)]
        self.alphas = [math.sqrt(n - 1) if alphas else 1.0 for n in self.sizes]
        self.total = sum(a + 1 for a in self.alphas)
        self.normalized, self.floor_level = bool(normalized), float(floor_level)
        for n in self.sizes:
            self.register_buffer(f"window_{n}", torch.hann_window(n, periodic=True), persistent=False)
            self.register_buffer(f"fb_{n}", mel_filterbank(sample_rate, n, n_mels, f_min, f_max), persistent=False)

    def mel(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """Power mel spectrogram at window ``n``: ``(..., T) -> (..., n_mels, frames)``."""
        hop = n // 4
        lead = x.shape[:-1]
        flat = x.float().reshape(-1, 1, x.shape[-1])
        pad = (n - hop) // 2
        flat = F.pad(flat, (pad, pad), mode="reflect")
        length = flat.shape[-1]
        frames = math.ceil((length - n) / hop + 1)
        flat = F.pad(flat, (0, (frames - 1) * hop + n - length))
        window = getattr(self, f"window_{n}")
        spec = stft(flat[:, 0], n, hop, n, window, center=False)
        if self.normalized:
            spec = spec / window.pow(2).sum().sqrt()
        power = spec.real.pow(2) + spec.imag.pow(2)
        mel = torch.matmul(power.transpose(-1, -2), getattr(self, f"fb_{n}")).transpose(-1, -2)
        return mel.reshape(*lead, *mel.shape[-2:])

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        if real.shape != fake.shape:
            raise ValueError(f"MultiScaleMelLoss: shapes differ, {tuple(real.shape)} vs {tuple(fake.shape)}")
        loss = fake.new_zeros((), dtype=torch.float32)
        for n, alpha in zip(self.sizes, self.alphas):
            m_fake, m_real = self.mel(fake, n), self.mel(real, n)
            log_fake = torch.log10(self.floor_level + m_fake)
            log_real = torch.log10(self.floor_level + m_real)
            loss = loss + F.l1_loss(m_fake, m_real) + alpha * F.mse_loss(log_fake, log_real)
        return loss / self.total if self.normalized else loss


@dataclasses.dataclass
class AudioCraftTerm(AdversarialTerm):
    """An :class:`AdversarialTerm` with the normalisation of AudioCraft's ``AdversarialLoss`` and
    ``FeatureMatchingLoss`` as the EnCodec recipe sets them (``adversarial.adv_loss: hinge``,
    ``feat_loss: l1``, ``normalize`` true):

    - generator: ``-mean(D(fake))`` per sub-discriminator (AudioCraft's ``hinge``; the shared
      ``hinge`` term is ``mean(relu(1 - D(fake)))``, AudioCraft's ``hinge2``);
    - feature matching: per sub-discriminator, the mean over its feature maps of
      ``mean|f_fake - f_real|`` (the shared term sums over the maps);
    - discriminator: ``mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))`` per sub-discriminator,
      the shared hinge term (so :meth:`AudioAdversarial.discriminator_loss` computes it);
    - ``reduction`` ``"mean"`` (``normalize``) averages over sub-discriminators, ``"sum"`` sums.

    ``weight`` scales the generator's adversarial term and the discriminator loss, ``fm_weight`` the
    feature matching; under the loss balancer both are gradient shares. Only ``loss="hinge"``.
    """

    def __post_init__(self):
        super().__post_init__()
        if self.loss != "hinge":
            raise ValueError(f"AudioCraftTerm: only the hinge loss, got {self.loss!r}")


def _reduce(terms: Sequence[torch.Tensor], reduction: str) -> torch.Tensor:
    total = torch.stack([t.float() for t in terms]).sum()
    return total / len(terms) if reduction == "mean" else total


def audiocraft_generator_loss(fake_logits: Sequence[torch.Tensor], reduction: str = "mean") -> torch.Tensor:
    """``-mean(D(fake))`` per sub-discriminator, then mean or sum over them."""
    return _reduce([-d.float().mean() for d in fake_logits], reduction)


def audiocraft_feature_matching(real_fmaps: Sequence[Sequence[torch.Tensor]],
                                fake_fmaps: Sequence[Sequence[torch.Tensor]], reduction: str = "mean") -> torch.Tensor:
    """Per sub-discriminator the mean over its feature maps of the L1 distance (real detached),
    then mean or sum over sub-discriminators."""
    if len(real_fmaps) != len(fake_fmaps):
        raise ValueError(f"audiocraft_feature_matching: {len(real_fmaps)} real vs {len(fake_fmaps)} fake outputs")
    terms: List[torch.Tensor] = []
    for real, fake in zip(real_fmaps, fake_fmaps):
        if len(real) != len(fake) or not real:
            raise ValueError(f"audiocraft_feature_matching: {len(real)} real vs {len(fake)} fake feature maps")
        terms.append(torch.stack([F.l1_loss(f.float(), r.detach().float()) for r, f in zip(real, fake)]).mean())
    return _reduce(terms, reduction)


def generator_terms(adversarial, real: torch.Tensor, fake: torch.Tensor, cond: Optional[torch.Tensor] = None
                    ) -> Tuple[Dict[str, torch.Tensor], torch.Tensor, Dict[str, float]]:
    """The generator's GAN losses of every discriminator of ``adversarial`` (an
    :class:`~audiotok.losses.AudioAdversarial`), unweighted and apart: ``{"adv_<name>": ...,
    "feat_<name>": ...}``; also their weighted sum (what ``adversarial.generator_loss`` returns
    for shared terms) and the same stats (``gan/g_<name>``, ``gan/fm_<name>``, ``gan/g_total``).
    Each discriminator scores audio as in ``generator_loss`` (parameters frozen, wrappers bypassed,
    WavTokenizer's fixed published DAC copy where that applies), so gradients reach ``fake`` only."""
    parts: Dict[str, torch.Tensor] = {}
    stats: Dict[str, torch.Tensor] = {}
    total = torch.zeros((), device=fake.device)
    for name, term in adversarial.terms.items():
        disc = adversarial._scorer(name, fake)
        with _frozen(disc):
            with torch.no_grad():
                _, fmaps_real = disc(real.detach(), cond)
            logits_fake, fmaps_fake = disc(fake, cond)
        if isinstance(term, AudioCraftTerm):
            adv = audiocraft_generator_loss(logits_fake, term.reduction)
            fm = audiocraft_feature_matching(fmaps_real, fmaps_fake, term.reduction)
        else:
            adv = _SHARED_GENERATOR[term.loss](logits_fake, term.reduction)
            fm = feature_matching_loss(fmaps_real, fmaps_fake, term.reduction)
        parts[f"adv_{name}"], parts[f"feat_{name}"] = adv, fm
        total = total + term.weight * adv + term.fm_weight * fm
        stats[f"gan/g_{name}"], stats[f"gan/fm_{name}"] = adv, fm
    stats["gan/g_total"] = total
    return parts, total, _floats(stats)
