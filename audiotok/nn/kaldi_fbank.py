"""The log-mel input of Wav2Vec2-BERT, as transformers' ``SeamlessM4TFeatureExtractor`` computes it
(the numpy imitation of Kaldi's ``fbank``), in torch.

Per waveform ``(N,)`` at 16 kHz: samples scaled to the 16-bit range, frames of 400 samples every 160
(no centring: ``1 + (N - 400) // 160`` frames), each frame's mean removed, pre-emphasis 0.97 (the
first sample scaled by 0.03), the symmetric Hann window to the power 0.85 ("povey"), a 512-point
FFT, power spectrum, 80 triangular filters spaced on Kaldi's mel scale (``1127 ln(1 + f / 700)``)
between 20 Hz and 8 kHz and triangular *in mel*, floored at ``1.1920929e-7``, natural log. Each mel
bin is then normalised over the frames of the waveform (mean, unbiased variance, ``+ 1e-7``), and
pairs of consecutive frames are stacked: ``(N_frames // 2, 160)``.

The reference computes in float64 but stores the spectrum as complex64 and the features as float32;
those roundings are reproduced, so features agree with it to about 1e-6.
"""
from __future__ import annotations

import functools
import math

import torch

SAMPLE_RATE = 16000
FRAME_LENGTH, FRAME_SHIFT, FFT_LENGTH = 400, 160, 512
NUM_MELS, STRIDE = 80, 2


def _kaldi_mel(freq):
    return 1127.0 * math.log(1.0 + freq / 700.0)


@functools.lru_cache(maxsize=None)
def _mel_filters() -> torch.Tensor:
    """``(257, 80)`` float32: triangles in mel between 20 Hz and 8 kHz over the FFT bins' mel values."""
    low, high = _kaldi_mel(20.0), _kaldi_mel(SAMPLE_RATE / 2)
    centres = torch.linspace(low, high, NUM_MELS + 2, dtype=torch.float64)
    bins = torch.arange(FFT_LENGTH // 2 + 1, dtype=torch.float64) * (SAMPLE_RATE / FFT_LENGTH)
    bin_mels = 1127.0 * torch.log(1.0 + bins / 700.0)
    width = centres.diff()
    slopes = centres[None, :] - bin_mels[:, None]
    down = -slopes[:, :-2] / width[:-1]
    up = slopes[:, 2:] / width[1:]
    return torch.clamp(torch.minimum(down, up), min=0.0).float()


@functools.lru_cache(maxsize=None)
def _povey_window() -> torch.Tensor:
    return torch.hann_window(FRAME_LENGTH, periodic=False, dtype=torch.float64).pow(0.85)


def log_mel_frames(wav: torch.Tensor) -> torch.Tensor:
    """``(N,)`` waveform in [-1, 1] -> ``(1 + (N - 400) // 160, 80)`` float32 log-mel frames (not normalised)."""
    if wav.dim() != 1:
        raise ValueError(f"wav must be one waveform (N,), got shape {tuple(wav.shape)}")
    if wav.shape[0] < FRAME_LENGTH:
        raise ValueError(f"wav needs at least {FRAME_LENGTH} samples for one frame, got {wav.shape[0]}")
    x = wav.detach().to(torch.float32).to(torch.float64) * 2 ** 15
    frames = x.unfold(0, FRAME_LENGTH, FRAME_SHIFT)
    frames = frames - frames.mean(dim=1, keepdim=True)
    frames = torch.cat([frames[:, :1] * (1 - 0.97), frames[:, 1:] - 0.97 * frames[:, :-1]], dim=1)
    frames = frames * _povey_window().to(frames.device)
    spectrum = torch.fft.rfft(frames, n=FFT_LENGTH, dim=1).to(torch.complex64)
    parts = torch.view_as_real(spectrum).to(torch.float64)
    power = parts[..., 0] ** 2 + parts[..., 1] ** 2
    mel = power @ _mel_filters().to(device=frames.device, dtype=torch.float64)
    return torch.log(torch.clamp(mel, min=1.192092955078125e-07)).to(torch.float32)


def w2v_bert_features(wav: torch.Tensor) -> torch.Tensor:
    """``(N,)`` waveform -> ``(frames // 2, 160)`` float32: per-bin normalised log-mel frames, pairs
    stacked (an odd last frame dropped)."""
    feats = log_mel_frames(wav)
    if feats.shape[0] < 2:
        raise ValueError(f"wav of {wav.shape[0]} samples gives {feats.shape[0]} frame; at least 2 are needed")
    mean = feats.mean(0, keepdim=True)
    var = feats.var(0, unbiased=True, keepdim=True)
    feats = (feats - mean) / torch.sqrt(var + 1e-7)
    usable = feats.shape[0] - feats.shape[0] % STRIDE
    return feats[:usable].reshape(usable // STRIDE, NUM_MELS * STRIDE)
