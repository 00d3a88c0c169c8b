import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiotok import metrics as M

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "audio"


@pytest.fixture(scope="module")
def speech():
    x, rate = sf.read(ASSETS / "pavement_k1-chob-3.flac", dtype="float64")
    assert rate == 24000
    return x, rate


def _noise(n, seed=0):
    return np.random.default_rng(seed).standard_normal(n)


def _at_snr(x, snr_db, seed=0):
    n = _noise(len(x), seed)
    return x + n * np.sqrt(np.mean(x**2) / np.mean(n**2) / 10 ** (snr_db / 10))


def test_pesq_and_stoi_are_at_their_maxima_for_identical_speech(speech):
    x, rate = speech
    assert M.pesq_wb(x, x, rate)[0] > 4.6  # P.862.2 tops out at 4.64
    assert M.stoi(x, x, rate)[0] == pytest.approx(1.0, abs=1e-6)


def test_pesq_and_stoi_are_low_against_noise(speech):
    x, rate = speech
    noise = 0.1 * _noise(len(x))
    assert M.pesq_wb(x, noise, rate)[0] < 1.3
    assert M.stoi(x, noise, rate)[0] < 0.3


def test_quality_metrics_fall_with_snr(speech):
    x, rate = speech
    clean, noisy = _at_snr(x, 20), _at_snr(x, 0)
    assert M.pesq_wb(x, clean, rate)[0] > M.pesq_wb(x, noisy, rate)[0]
    assert M.stoi(x, clean, rate)[0] > M.stoi(x, noisy, rate)[0]


@pytest.mark.parametrize("snr", [0.0, 10.0, 25.0])
def test_si_sdr_of_added_noise_is_the_snr(speech, snr):
    x, _ = speech
    assert M.si_sdr(x, _at_snr(x, snr))[0] == pytest.approx(snr, abs=0.3)


def test_si_sdr_is_scale_invariant(speech):
    x, _ = speech
    y = _at_snr(x, 10)
    assert M.si_sdr(x, 0.25 * y)[0] == pytest.approx(M.si_sdr(x, y)[0], abs=1e-9)
    assert M.si_sdr(x, x)[0] > 90


def test_spectral_distances_are_zero_for_identical_and_grow_with_noise(speech):
    x, rate = speech
    assert M.mel_distance(x, x, rate)[0] == 0.0
    assert M.multi_resolution_stft_distance(x, x)[0] == pytest.approx(0.0, abs=1e-6)
    near, far = _at_snr(x, 30), _at_snr(x, 0)
    assert 0 < M.mel_distance(x, near, rate)[0] < M.mel_distance(x, far, rate)[0]
    assert 0 < M.multi_resolution_stft_distance(x, near)[0] < M.multi_resolution_stft_distance(x, far)[0]


def test_input_layouts_agree_and_batches_give_one_value_per_item(speech):
    x, rate = speech
    x = x[:12000]
    y = _at_snr(x, 10)
    single = M.si_sdr(x, y)
    assert len(single) == 1
    assert M.si_sdr(torch.from_numpy(x).float()[None, None], torch.from_numpy(y).float()[None, None])[0] == \
        pytest.approx(single[0], abs=1e-3)
    batch_ref, batch_est = np.stack([x, x]), np.stack([y, x])
    values = M.mel_distance(batch_ref, batch_est, rate)
    assert len(values) == 2 and values[1] == 0.0 and values[0] == pytest.approx(M.mel_distance(x, y, rate)[0])


def test_bad_inputs_get_clear_errors(speech):
    x, rate = speech
    with pytest.raises(ValueError, match="differ in shape"):
        M.pesq_wb(x, x[:-5], rate)
    bad = np.stack([x, x])
    bad[1, 100] = np.nan
    with pytest.raises(ValueError, match=r"item\(s\) \[1\] contain NaN"):
        M.stoi(np.stack([x, x]), bad, rate)
    with pytest.raises(ValueError, match="shape"):
        M.si_sdr(np.zeros((2, 2, 10)), np.zeros((2, 2, 10)))
    with pytest.raises(ValueError, match="empty"):
        M.si_sdr(np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError, match="sample_rate"):
        M.mel_distance(x, x, 0)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # pesq normalises silence by 0
def test_pesq_failure_is_an_error_or_nan():
    silence = np.zeros(16000)
    with pytest.raises(ValueError, match="item 0"):
        M.pesq_wb(silence, silence, 16000)
    assert np.isnan(M.pesq_wb(silence, silence, 16000, on_error="nan")[0])


def test_codebook_utilization_counts_exactly():
    ids = [torch.tensor([[0, 1, 1, 3]]), np.array([[3, 3, -1, 0]])]  # -1: dropped level, ignored
    stats = M.codebook_utilization(ids, codebook_size=8)
    assert stats["utilization"] == 3 / 8 and stats["tokens"] == 7 and stats["dead_codes"] == 5


class _Length(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0],), float(x.shape[1]))


class _Embed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(1, 8, 64, stride=32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x[:, None]).relu().mean(-1)


def test_model_metrics_need_a_local_file(monkeypatch, tmp_path, speech):
    x, rate = speech
    monkeypatch.delenv(M.UTMOS_ENV, raising=False)
    monkeypatch.delenv(M.SPEAKER_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=f"UTMOS needs model weights.*{M.UTMOS_ENV}"):
        M.utmos(x, rate)
    with pytest.raises(FileNotFoundError, match=f"speaker similarity needs.*WavLM.*{M.SPEAKER_ENV}"):
        M.speaker_similarity(x, x, rate)
    missing = tmp_path / "utmos.pt"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        M.utmos(x, rate, model_path=missing)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a TorchScript archive"):
        M.utmos(x, rate, model_path=junk)
    junk2 = tmp_path / "junk.pt2"
    junk2.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a torch.export archive"):
        M.speaker_similarity(x, x, rate, model_path=junk2)


def test_model_metrics_run_local_models_at_16k(monkeypatch, tmp_path, speech):
    x, rate = speech
    with warnings.catch_warnings():  # TorchScript is deprecated (the warning class depends on torch); still accepted
        warnings.simplefilter("ignore", (FutureWarning, DeprecationWarning))
        torch.jit.script(_Length()).save(str(tmp_path / "utmos.pt"))
    length = torch.export.Dim("T", min=1600, max=16000 * 60)
    program = torch.export.export(_Embed(), (torch.randn(1, 16000),), dynamic_shapes={"x": {1: length}})
    torch.export.save(program, str(tmp_path / "spk.pt2"))
    monkeypatch.setenv(M.UTMOS_ENV, str(tmp_path / "utmos.pt"))
    assert M.utmos(np.stack([x, x]), rate) == [len(x) * 16000 / rate] * 2
    assert M.utmos(x[:24000], rate) == [16000.0]
    est = np.stack([x, 0.01 * _noise(len(x))])
    sims = M.speaker_similarity(np.stack([x, x]), est, rate, model_path=tmp_path / "spk.pt2")
    assert sims[0] == pytest.approx(1.0, abs=1e-6) and sims[1] < 0.99


def test_versions_name_the_metric_packages():
    versions = M.metric_versions()
    assert {"pesq", "pystoi", "soxr", "torch", "tokzoo"} <= set(versions)
    assert versions["pesq"] != "missing"


def test_stoi_of_a_clip_too_short_to_score_is_nan_not_zero(speech):
    """pystoi returns 1e-5 (with a warning) below 30 non-silent frames; that is no score, not a bad one."""
    x, rate = speech
    short = x[: int(0.25 * rate)]
    scores = M.stoi(np.stack([short, short]), np.stack([short, short * 0.5]), rate)
    assert all(np.isnan(s) for s in scores)
    assert M.stoi(x, x * 0.5, rate)[0] == pytest.approx(1.0, abs=1e-6)  # long enough: scored
