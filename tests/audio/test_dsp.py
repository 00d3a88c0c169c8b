"""audiotok.dsp against independent numpy computations (always) and torchaudio (when it imports)."""
import math

import numpy as np
import pytest
import torch

from audiotok.dsp import MelSpectrogram, istft, mel_filterbank, resample, safe_log, stft


def _torchaudio():
    try:
        import torchaudio
    except Exception as err:  # noqa: BLE001 - missing, or a wheel that fails to load next to this torch
        pytest.skip(f"torchaudio not importable here ({type(err).__name__})")
    return torchaudio


# ----- independent references (numpy, explicit formulas and loops) -----

def htk_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def htk_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def slaney_mel(f):
    f = np.asarray(f, dtype=np.float64)
    return np.where(f < 1000, 3 * f / 200, 15 + 27 * np.log(np.maximum(f, 1e-9) / 1000) / np.log(6.4))


def slaney_hz(m):
    m = np.asarray(m, dtype=np.float64)
    return np.where(m < 15, 200 * m / 3, 1000 * 6.4 ** ((m - 15) / 27))


def reference_filterbank(sr, n_fft, n_mels, f_min, f_max, scale="htk", area_norm=False):
    to_mel, to_hz = (htk_mel, htk_hz) if scale == "htk" else (slaney_mel, slaney_hz)
    freqs = np.linspace(0, sr // 2, n_fft // 2 + 1)
    edges = to_hz(np.linspace(to_mel(f_min), to_mel(f_max), n_mels + 2))
    fb = np.zeros((len(freqs), n_mels))
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        for i, f in enumerate(freqs):
            if lo <= f <= mid:
                fb[i, m] = (f - lo) / (mid - lo)
            elif mid < f <= hi:
                fb[i, m] = (hi - f) / (hi - mid)
        if area_norm:
            fb[:, m] *= 2.0 / (hi - lo)
    return fb


def hann(n):
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)  # periodic


def reference_mel(x, sr, n_fft, hop, n_mels):
    """Centred frames of a reflect-padded signal, periodic Hann, |rfft|, then the HTK filters."""
    padded = np.pad(x, n_fft // 2, mode="reflect")
    frames = [padded[t * hop: t * hop + n_fft] * hann(n_fft) for t in range(len(x) // hop + 1)]
    mag = np.abs(np.fft.rfft(np.stack(frames), axis=1))  # (frames, bins)
    return (mag @ reference_filterbank(sr, n_fft, n_mels, 0, sr / 2)).T


def reference_istft_same(spec, n_fft, hop):
    """Explicit overlap-add: every frame's windowed irfft added at t * hop, divided by the summed
    squared window, (n_fft - hop) // 2 samples cut from each end."""
    frames = spec.shape[-1]
    w = hann(n_fft)
    out = np.zeros((frames - 1) * hop + n_fft)
    env = np.zeros_like(out)
    for t in range(frames):
        out[t * hop: t * hop + n_fft] += np.fft.irfft(spec[:, t], n_fft) * w
        env[t * hop: t * hop + n_fft] += w ** 2
    cut = (n_fft - hop) // 2
    return out[cut: len(out) - cut] / env[cut: len(out) - cut]


# ----- against the references -----

@pytest.mark.parametrize("sr,n_fft,n_mels,f_min,f_max", [(24000, 1024, 100, 0.0, None), (16000, 512, 40, 50.0, 7000.0),
                                                         (22050, 1024, 80, 0.0, 8000.0)])
def test_htk_filterbank_matches_the_formula(sr, n_fft, n_mels, f_min, f_max):
    fb = mel_filterbank(sr, n_fft, n_mels, f_min, f_max)
    ref = reference_filterbank(sr, n_fft, n_mels, f_min, f_max if f_max else sr / 2)
    assert fb.shape == (n_fft // 2 + 1, n_mels) and fb.dtype == torch.float32
    np.testing.assert_allclose(fb.numpy(), ref, atol=1e-6)
    assert float(fb.max()) <= 1.0 and (fb.sum(0) > 0).all()  # every band catches at least one bin


def test_slaney_scale_and_area_norm_match_the_formula():
    fb = mel_filterbank(16000, 512, 40, 0.0, 8000.0, norm="slaney", mel_scale="slaney")
    ref = reference_filterbank(16000, 512, 40, 0.0, 8000.0, scale="slaney", area_norm=True)
    np.testing.assert_allclose(fb.numpy(), ref, rtol=1e-5, atol=1e-9)


def test_mel_spectrogram_matches_explicit_frames():
    torch.manual_seed(0)
    x = torch.randn(2, 4000)
    mel = MelSpectrogram(sample_rate=24000, n_fft=256, hop_length=64, n_mels=40)(x)
    assert mel.shape == (2, 40, 4000 // 64 + 1)
    for i in range(2):
        ref = reference_mel(x[i].double().numpy(), 24000, 256, 64, 40)
        np.testing.assert_allclose(mel[i].numpy(), ref, rtol=1e-4, atol=1e-4)
    assert list(MelSpectrogram().state_dict()) == []  # window and filters are not checkpoint state


def test_same_padding_features_have_one_frame_per_hop():
    mel = MelSpectrogram(n_fft=1024, hop_length=256, padding="same")
    assert mel(torch.randn(3, 256 * 20)).shape == (3, 100, 20)


def test_istft_same_matches_explicit_overlap_add():
    torch.manual_seed(0)
    n_fft, hop, frames = 48, 12, 9
    spec = torch.complex(torch.randn(n_fft // 2 + 1, frames, dtype=torch.float64),
                         torch.randn(n_fft // 2 + 1, frames, dtype=torch.float64))
    ours = istft(spec[None], n_fft, hop, padding="same")[0]
    ref = reference_istft_same(spec.numpy(), n_fft, hop)
    assert ours.shape == (frames * hop,)
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-12)


def test_stft_istft_round_trips():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 960)
    spec = stft(x, 256, 64)
    assert spec.shape == (2, 3, 129, 960 // 64 + 1) and spec.is_complex()
    torch.testing.assert_close(istft(spec, 256, 64, length=960), x, atol=1e-5, rtol=0)
    # "same": reflect-pad (n_fft - hop) / 2, uncentred frames -> one frame per hop -> exact inverse
    n_fft, hop = 128, 32
    pad = (n_fft - hop) // 2
    padded = torch.nn.functional.pad(x[0][:, None], (pad, pad), mode="reflect")[:, 0]
    spec = stft(padded, n_fft, hop, center=False)
    assert spec.shape[-1] == 960 // hop
    torch.testing.assert_close(istft(spec, n_fft, hop, padding="same"), x[0], atol=1e-5, rtol=0)


def test_resample_keeps_a_sine_and_the_length():
    t = np.arange(16000) / 16000
    x = torch.from_numpy(0.5 * np.sin(2 * np.pi * 440 * t)).float()
    y = resample(x, 16000, 24000)
    assert y.shape == (24000,)
    expected = 0.5 * np.sin(2 * np.pi * 440 * np.arange(24000) / 24000)
    err = np.abs(y.numpy() - expected)[1000:-1000].max()  # edges see the zero padding
    assert err < 2e-3, err
    assert resample(torch.zeros(2, 1001), 44100, 24000).shape == (2, math.ceil(1001 * 24000 / 44100))
    assert resample(x, 24000, 24000) is x
    with pytest.raises(ValueError, match="positive"):
        resample(x, 0, 24000)


def test_safe_log_clips():
    out = safe_log(torch.tensor([0.0, 1e-9, 1.0]))
    torch.testing.assert_close(out, torch.tensor([math.log(1e-7), math.log(1e-7), 0.0]))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="mel_scale"):
        mel_filterbank(24000, 1024, 100, mel_scale="bark")
    with pytest.raises(ValueError, match="norm"):
        mel_filterbank(24000, 1024, 100, norm="area")
    with pytest.raises(ValueError, match="padding"):
        istft(torch.zeros(1, 65, 3, dtype=torch.complex64), 128, 32, padding="valid")
    with pytest.raises(ValueError, match="frequency bins"):
        istft(torch.zeros(1, 64, 3, dtype=torch.complex64), 128, 32)


# ----- against torchaudio, when present -----

@pytest.mark.parametrize("norm,scale", [(None, "htk"), ("slaney", "slaney"), ("slaney", "htk")])
def test_filterbank_matches_torchaudio(norm, scale):
    ta = _torchaudio()
    for sr, n_fft, n_mels, f_min, f_max in [(24000, 1024, 100, 0.0, 12000.0), (16000, 400, 80, 20.0, 7600.0)]:
        ref = ta.functional.melscale_fbanks(n_fft // 2 + 1, f_min, f_max, n_mels, sr, norm, scale)
        ours = mel_filterbank(sr, n_fft, n_mels, f_min, f_max, norm, scale)
        torch.testing.assert_close(ours, ref, atol=1e-5 * float(ref.max()), rtol=1e-4)


def test_mel_spectrogram_matches_torchaudio():
    ta = _torchaudio()
    torch.manual_seed(0)
    x = torch.randn(2, 24000)
    ref = ta.transforms.MelSpectrogram(sample_rate=24000, n_fft=1024, hop_length=256, n_mels=100, center=True,
                                       power=1)(x)
    ours = MelSpectrogram(sample_rate=24000, n_fft=1024, hop_length=256, n_mels=100)(x)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(safe_log(ours), safe_log(ref), rtol=0, atol=1e-4)


@pytest.mark.parametrize("orig,new", [(16000, 24000), (44100, 24000), (48000, 24000), (24000, 16000)])
def test_resample_matches_torchaudio(orig, new):
    ta = _torchaudio()
    torch.manual_seed(0)
    x = torch.randn(2, 5000)
    torch.testing.assert_close(resample(x, orig, new), ta.functional.resample(x, orig, new), rtol=0, atol=5e-5)
