"""Spectral operations on torch alone (no torchaudio): STFT / iSTFT (including the "same"-padded
inverse that Vocos-style heads use), the mel filterbank, log-mel features and band-limited resampling.

Conventions follow torchaudio's defaults where WavTokenizer and Vocos rely on them: periodic Hann
window of ``win_length = n_fft``, reflect padding when centred, frequency grid
``linspace(0, sample_rate // 2, n_fft // 2 + 1)``, HTK mel scale, no filter normalisation.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["stft", "istft", "mel_filterbank", "MelSpectrogram", "safe_log", "hz_to_mel", "mel_to_hz", "resample"]


def _window(win_length: int, window: Optional[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    if window is None:
        return torch.hann_window(win_length, periodic=True, device=like.device, dtype=like.real.dtype)
    if window.shape != (win_length,):
        raise ValueError(f"window must have shape ({win_length},), got {tuple(window.shape)}")
    return window.to(device=like.device, dtype=like.real.dtype)


def stft(x: torch.Tensor, n_fft: int, hop_length: int, win_length: Optional[int] = None,
         window: Optional[torch.Tensor] = None, center: bool = True, pad_mode: str = "reflect") -> torch.Tensor:
    """Complex one-sided STFT of ``x`` (``(..., T)``) -> ``(..., n_fft // 2 + 1, frames)``.

    With ``center`` the signal is padded by ``n_fft // 2`` on both sides (``pad_mode``), so frame
    ``t`` is centred on sample ``t * hop_length``; frames = ``T // hop_length + 1``.
    """
    win_length = win_length or n_fft
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    spec = torch.stft(flat, n_fft, hop_length, win_length, _window(win_length, window, flat), center=center,
                      pad_mode=pad_mode, normalized=False, onesided=True, return_complex=True)
    return spec.reshape(*lead, *spec.shape[-2:])


def _overlap_add(frames: torch.Tensor, hop_length: int) -> torch.Tensor:
    """Sum ``(B, W, N)`` frames placed ``hop_length`` apart -> ``(B, (N - 1) * hop + W)``."""
    b, w, n = frames.shape
    out = F.fold(frames, output_size=(1, (n - 1) * hop_length + w), kernel_size=(1, w), stride=(1, hop_length))
    return out.reshape(b, -1)


def istft(spec: torch.Tensor, n_fft: int, hop_length: int, win_length: Optional[int] = None,
          window: Optional[torch.Tensor] = None, padding: str = "center",
          length: Optional[int] = None) -> torch.Tensor:
    """Inverse of :func:`stft` for ``(..., n_fft // 2 + 1, frames)`` complex input -> ``(..., T)``.

    ``padding="center"``: ``torch.istft`` with ``center=True`` (optionally cut to ``length``).
    ``padding="same"``: windowed overlap-add with ``(win_length - hop_length) // 2`` samples cut
    from each end and division by the summed squared window, so ``N`` frames give exactly
    ``N * hop_length`` samples when ``win_length - hop_length`` is even. The cut edges are where
    the window envelope vanishes, which is why ``torch.istft`` (it checks NOLA over the whole
    signal) cannot do this itself.
    """
    if padding not in ("center", "same"):
        raise ValueError(f"padding must be 'center' or 'same', got {padding!r}")
    win_length = win_length or n_fft
    lead, (bins, n) = spec.shape[:-2], spec.shape[-2:]
    if bins != n_fft // 2 + 1:
        raise ValueError(f"spec has {bins} frequency bins, n_fft={n_fft} needs {n_fft // 2 + 1}")
    flat = spec.reshape(-1, bins, n)
    win = _window(win_length, window, flat)
    if padding == "center":
        out = torch.istft(flat, n_fft, hop_length, win_length, win, center=True, length=length)
        return out.reshape(*lead, out.shape[-1])
    if win_length != n_fft:
        win = F.pad(win, ((n_fft - win_length) // 2, n_fft - win_length - (n_fft - win_length) // 2))
    frames = torch.fft.irfft(flat, n_fft, dim=1, norm="backward") * win[:, None]
    signal = _overlap_add(frames, hop_length)
    envelope = _overlap_add(win.square()[None, :, None].expand(1, n_fft, n), hop_length)[0]
    cut = (n_fft - hop_length) // 2
    end = signal.shape[-1] - cut
    signal, envelope = signal[:, cut:end], envelope[cut:end]
    if not bool((envelope > 1e-11).all()):
        raise ValueError(f"window overlap too small for hop_length={hop_length}, n_fft={n_fft}")
    out = signal / envelope
    if length is not None:
        out = out[:, :length] if out.shape[-1] >= length else F.pad(out, (0, length - out.shape[-1]))
    return out.reshape(*lead, out.shape[-1])


# ----- mel scale -----

_SLANEY_F_SP = 200.0 / 3  # Hz per mel below 1 kHz
_SLANEY_MIN_LOG_HZ = 1000.0
_SLANEY_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(freq: torch.Tensor, mel_scale: str = "htk") -> torch.Tensor:
    """Frequency in Hz -> mel (``"htk"``: 2595 log10(1 + f / 700); ``"slaney"``: linear below 1 kHz, log above)."""
    freq = torch.as_tensor(freq, dtype=torch.float64)
    if mel_scale == "htk":
        return 2595.0 * torch.log10(1.0 + freq / 700.0)
    if mel_scale != "slaney":
        raise ValueError(f"mel_scale must be 'htk' or 'slaney', got {mel_scale!r}")
    min_log_mel = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP
    log_part = min_log_mel + torch.log(freq.clamp_min(_SLANEY_MIN_LOG_HZ) / _SLANEY_MIN_LOG_HZ) / _SLANEY_LOGSTEP
    return torch.where(freq >= _SLANEY_MIN_LOG_HZ, log_part, freq / _SLANEY_F_SP)


def mel_to_hz(mel: torch.Tensor, mel_scale: str = "htk") -> torch.Tensor:
    """Inverse of :func:`hz_to_mel`."""
    mel = torch.as_tensor(mel, dtype=torch.float64)
    if mel_scale == "htk":
        return 700.0 * (torch.pow(10.0, mel / 2595.0) - 1.0)
    if mel_scale != "slaney":
        raise ValueError(f"mel_scale must be 'htk' or 'slaney', got {mel_scale!r}")
    min_log_mel = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP
    log_part = _SLANEY_MIN_LOG_HZ * torch.exp(_SLANEY_LOGSTEP * (mel - min_log_mel))
    return torch.where(mel >= min_log_mel, log_part, mel * _SLANEY_F_SP)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: Optional[float] = None,
                   norm: Optional[str] = None, mel_scale: str = "htk") -> torch.Tensor:
    """Triangular mel filters, ``(n_fft // 2 + 1, n_mels)`` float32 (the layout of torchaudio's
    ``melscale_fbanks``: ``spectrum.T @ fb`` gives mel bands).

    ``n_mels + 2`` edges are spaced evenly in mel between ``f_min`` and ``f_max`` (default
    ``sample_rate / 2``); filter ``m`` rises from edge ``m`` to ``m + 1`` and falls to ``m + 2``.
    ``norm="slaney"`` scales each filter to unit area (``2 / bandwidth``).
    """
    if norm not in (None, "slaney"):
        raise ValueError(f"norm must be None or 'slaney', got {norm!r}")
    f_max = float(sample_rate) / 2 if f_max is None else float(f_max)
    if not 0 <= f_min < f_max:
        raise ValueError(f"need 0 <= f_min < f_max, got f_min={f_min}, f_max={f_max}")
    # integer Nyquist on purpose: torchaudio's grid, so odd sample rates give the same bins
    bins = torch.linspace(0, sample_rate // 2, n_fft // 2 + 1, dtype=torch.float64)
    lo, hi = hz_to_mel(torch.tensor(float(f_min)), mel_scale), hz_to_mel(torch.tensor(f_max), mel_scale)
    edges = mel_to_hz(torch.linspace(float(lo), float(hi), n_mels + 2, dtype=torch.float64), mel_scale)
    left, centre, right = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins[:, None] - left) / (centre - left)
    falling = (right - bins[:, None]) / (right - centre)
    fb = torch.minimum(rising, falling).clamp_min(0.0)
    if norm == "slaney":
        fb = fb * (2.0 / (right - left))
    return fb.float()


def safe_log(x: torch.Tensor, clip_val: float = 1e-7) -> torch.Tensor:
    """``log(max(x, clip_val))``: the log-mel of Vocos / WavTokenizer."""
    return torch.log(torch.clamp(x, min=clip_val))


class MelSpectrogram(nn.Module):
    """Mel spectrogram ``(..., T) -> (..., n_mels, frames)`` with torchaudio ``MelSpectrogram``
    semantics: periodic Hann window, ``power`` 1 (magnitude) by default, centred frames with reflect
    padding. ``padding="same"`` instead pads ``(win_length - hop_length) // 2`` (reflect) on each side
    without centring, as Vocos' mel features do. Window and filters are non-persistent buffers.
    """

    def __init__(self, sample_rate: int = 24000, n_fft: int = 1024, hop_length: int = 256,
                 win_length: Optional[int] = None, n_mels: int = 100, f_min: float = 0.0,
                 f_max: Optional[float] = None, power: float = 1.0, center: bool = True, pad_mode: str = "reflect",
                 norm: Optional[str] = None, mel_scale: str = "htk", padding: Optional[str] = None):
        super().__init__()
        if padding not in (None, "center", "same"):
            raise ValueError(f"padding must be None, 'center' or 'same', got {padding!r}")
        self.sample_rate, self.n_fft, self.hop_length = sample_rate, n_fft, hop_length
        self.win_length = win_length or n_fft
        self.power, self.pad_mode = power, pad_mode
        self.same = padding == "same"
        self.center = False if self.same else (center if padding is None else True)
        self.register_buffer("window", torch.hann_window(self.win_length, periodic=True), persistent=False)
        self.register_buffer("fb", mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max, norm, mel_scale),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same:
            pad = (self.win_length - self.hop_length) // 2
            x = F.pad(x.reshape(-1, 1, x.shape[-1]), (pad, pad), mode=self.pad_mode).reshape(*x.shape[:-1], -1)
        spec = stft(x.float(), self.n_fft, self.hop_length, self.win_length, self.window, self.center, self.pad_mode)
        mag = spec.abs()
        if self.power != 1.0:
            mag = mag.pow(self.power)
        return torch.matmul(mag.transpose(-1, -2), self.fb).transpose(-1, -2)


# ----- resampling -----

@lru_cache(maxsize=16)
def _sinc_kernel(orig: int, new: int, width: int, rolloff: float) -> Tuple[torch.Tensor, int]:
    """Polyphase windowed-sinc kernels ``(new, 1, orig + 2 * half)`` (float64) for rates reduced by
    their gcd, and ``half``, the taps needed on each side."""
    cutoff = min(orig, new) * rolloff  # in units where the lower rate's Nyquist is min/2
    half = math.ceil(width * orig / cutoff)
    # output phase p sits p * orig / new input samples after the first tap's reference point
    taps = torch.arange(-half, orig + half, dtype=torch.float64)[None] / orig
    phase = torch.arange(0, -new, -1, dtype=torch.float64)[:, None] / new
    t = (taps + phase) * cutoff
    t = t.clamp(-width, width)
    window = torch.cos(t * math.pi / width / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / torch.where(t == 0, torch.ones_like(t), t))
    return (sinc * window * cutoff / orig)[:, None], half


def resample(x: torch.Tensor, orig_freq: int, new_freq: int, lowpass_filter_width: int = 6,
             rolloff: float = 0.99) -> torch.Tensor:
    """Band-limited (Hann-windowed sinc) resampling of ``(..., T)`` along the last dim, with the
    filter design of torchaudio's default ``resample`` (``sinc_interp_hann``). Output length is
    ``ceil(T * new_freq / orig_freq)``."""
    orig_freq, new_freq = int(orig_freq), int(new_freq)
    if orig_freq <= 0 or new_freq <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_freq} and {new_freq}")
    if orig_freq == new_freq:
        return x
    g = math.gcd(orig_freq, new_freq)
    orig, new = orig_freq // g, new_freq // g
    kernel, half = _sinc_kernel(orig, new, int(lowpass_filter_width), float(rolloff))
    lead, length = x.shape[:-1], x.shape[-1]
    flat = x.reshape(-1, 1, length)
    padded = F.pad(flat, (half, half + orig))
    out = F.conv1d(padded, kernel.to(device=x.device, dtype=x.dtype), stride=orig)
    out = out.transpose(1, 2).reshape(flat.shape[0], -1)
    return out[:, : math.ceil(new * length / orig)].reshape(*lead, -1)
