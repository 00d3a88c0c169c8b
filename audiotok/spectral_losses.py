"""Multi-scale spectral distances on log10 magnitudes, as descript-audio-codec computes them
(``dac/nn/loss.py`` ``MelSpectrogramLoss`` and ``MultiScaleSTFTLoss`` over audiotools' STFT), for
any codec recipe that trains with them (``loss.audio.logmel_*`` and ``logstft_*``).

Both compare, per scale, ``log_weight * mean|log10(clamp(S_fake, eps)^pow) - log10(clamp(S_real,
eps)^pow)| + mag_weight * mean|S_fake - S_real|`` and **sum** the scales (no average). The STFT of
a window ``n`` is audiotools' default: hop ``n // 4``, a periodic Hann window of ``n``, centred frames
with reflect padding, magnitudes (no normalisation).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from audiotok.dsp import mel_filterbank, stft

# DAC's published settings: conf/base.yml (and conf/final/*.yml) MelSpectrogramLoss.* and
# MultiScaleSTFTLoss.window_lengths; the rest are the loss classes' defaults.
DAC_MEL_WINDOWS = (32, 64, 128, 256, 512, 1024, 2048)
DAC_MEL_BINS = (5, 10, 20, 40, 80, 160, 320)
DAC_STFT_WINDOWS = (2048, 512)


def _log_l1(fake: torch.Tensor, real: torch.Tensor, eps: float, power: float) -> torch.Tensor:
    return F.l1_loss(fake.clamp_min(eps).pow(power).log10(), real.clamp_min(eps).pow(power).log10())


def _check(real: torch.Tensor, fake: torch.Tensor, who: str) -> None:
    if real.shape != fake.shape:
        raise ValueError(f"{who}: shapes differ, {tuple(real.shape)} vs {tuple(fake.shape)}")


class _Scales(nn.Module):
    """What both losses share: the per-scale weights and the Hann windows."""

    def __init__(self, windows: Sequence[int], eps: float, power: float, log_weight: float, mag_weight: float,
                 who: str):
        super().__init__()
        self.windows = [int(n) for n in windows]
        if not self.windows or min(self.windows) < 4:
            raise ValueError(f"{who}: windows must be a non-empty list of lengths >= 4, got {list(windows)}")
        if not eps > 0:
            raise ValueError(f"{who}: eps (the clamp before log10) must be > 0, got {eps!r}")
        if min(log_weight, mag_weight) < 0 or log_weight + mag_weight == 0:
            raise ValueError(f"{who}: log_weight and mag_weight must be >= 0, not both 0; got {log_weight}, {mag_weight}")
        self.eps, self.power = float(eps), float(power)
        self.log_weight, self.mag_weight = float(log_weight), float(mag_weight)
        for n in self.windows:
            self.register_buffer(f"window_{n}", torch.hann_window(n, periodic=True), persistent=False)

    def magnitude(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """``(B, T)`` (or ``(B, C, T)``) -> ``(..., n // 2 + 1, frames)`` STFT magnitudes, fp32."""
        return stft(x.float(), n, n // 4, n, getattr(self, f"window_{n}")).abs()

    def distance(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        loss = self.log_weight * _log_l1(fake, real, self.eps, self.power)
        if self.mag_weight:
            loss = loss + self.mag_weight * F.l1_loss(fake, real)
        return loss


class MultiScaleLogMelLoss(_Scales):
    """L1 between log10 mel spectrograms at several window sizes, summed over the scales (DAC's
    ``MelSpectrogramLoss``). Defaults are DAC's published training: windows 32 ... 2048 with 5 ... 320
    mel bands, 0 Hz to Nyquist at every scale, magnitudes (``power`` 1 before the log), clamp 1e-5,
    log term only (``mag_weight`` 0). Mel filters are librosa's default (Slaney scale, Slaney
    area normalisation), built for each window's FFT size; ``f_max`` ``None`` is Nyquist.

    ``forward(real, fake)`` takes waveforms ``(B, T)`` of the same shape; computed in fp32."""

    def __init__(self, sample_rate: int, windows: Sequence[int] = DAC_MEL_WINDOWS,
                 n_mels: Sequence[int] = DAC_MEL_BINS, f_min: Optional[Sequence[float]] = None,
                 f_max: Optional[Sequence[Optional[float]]] = None, eps: float = 1e-5, power: float = 1.0,
                 log_weight: float = 1.0, mag_weight: float = 0.0):
        super().__init__(windows, eps, power, log_weight, mag_weight, "MultiScaleLogMelLoss")
        k = len(self.windows)
        f_min = [0.0] * k if f_min is None else list(f_min)
        f_max = [None] * k if f_max is None else list(f_max)
        if not len(n_mels) == len(f_min) == len(f_max) == k:
            raise ValueError(f"MultiScaleLogMelLoss: windows, n_mels, f_min and f_max need one entry per scale; "
                             f"got {k}, {len(n_mels)}, {len(f_min)}, {len(f_max)}")
        self.n_mels = [int(m) for m in n_mels]
        for n, m, lo, hi in zip(self.windows, self.n_mels, f_min, f_max):
            fb = mel_filterbank(int(sample_rate), n, m, float(lo), None if hi is None else float(hi),
                                norm="slaney", mel_scale="slaney")
            self.register_buffer(f"fb_{n}", fb, persistent=False)

    def mel(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """Mel magnitudes at window ``n``: ``(..., T) -> (..., n_mels, frames)``."""
        return torch.matmul(self.magnitude(x, n).transpose(-1, -2), getattr(self, f"fb_{n}")).transpose(-1, -2)

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        _check(real, fake, "MultiScaleLogMelLoss")
        return sum(self.distance(self.mel(fake, n), self.mel(real, n)) for n in self.windows)


class MultiScaleLogSTFTLoss(_Scales):
    """L1 between log10 STFT magnitudes (plus, with ``mag_weight``, between the magnitudes) at several
    window sizes, summed over the scales (DAC's ``MultiScaleSTFTLoss``; defaults are its: windows
    2048 and 512, ``power`` 2 before the log, clamp 1e-5, both terms weighted 1). DAC's training logs
    it with weight 0."""

    def __init__(self, windows: Sequence[int] = DAC_STFT_WINDOWS, eps: float = 1e-5, power: float = 2.0,
                 log_weight: float = 1.0, mag_weight: float = 1.0):
        super().__init__(windows, eps, power, log_weight, mag_weight, "MultiScaleLogSTFTLoss")

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        _check(real, fake, "MultiScaleLogSTFTLoss")
        return sum(self.distance(self.magnitude(fake, n), self.magnitude(real, n)) for n in self.windows)
