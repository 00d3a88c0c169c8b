"""Checked clip reads and atomic WAV writes (audiotok.io)."""
from pathlib import Path

import numpy as np
import pytest
import torch

sf = pytest.importorskip("soundfile")
pytest.importorskip("soxr")

from audiotok.io import read_clip, write_wav  # noqa: E402

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "audio"


def test_read_clip_downmixes_and_resamples(tmp_path):
    t = np.arange(8000) / 16000
    stereo = np.stack([np.sin(2 * np.pi * 300 * t), np.zeros_like(t)], 1).astype(np.float32)
    sf.write(tmp_path / "a.wav", stereo, 16000)
    clip = read_clip(tmp_path / "a.wav", 24000)
    assert clip.shape == (12000,) and clip.dtype == torch.float32
    assert abs(float(clip[2000:10000].abs().max()) - 0.5) < 0.01  # mean of the two channels


def test_read_clip_errors_name_the_file(tmp_path):
    sf.write(tmp_path / "short.flac", np.zeros(10, dtype=np.float32), 24000)
    with pytest.raises(ValueError, match=r"short\.flac: too short \(10 samples at 24000 Hz; at least 600 needed\)"):
        read_clip(tmp_path / "short.flac", 24000, min_samples=600)
    sf.write(tmp_path / "nan.wav", np.array([0.1, np.inf, 0.0], dtype=np.float32), 24000, subtype="FLOAT")
    with pytest.raises(ValueError, match=r"nan\.wav: contains NaN or infinite"):
        read_clip(tmp_path / "nan.wav", 24000)
    (tmp_path / "empty.ogg").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.ogg: empty file"):
        read_clip(tmp_path / "empty.ogg", 24000)
    (tmp_path / "junk.wav").write_bytes(b"RIFF....not really")
    with pytest.raises(ValueError, match=r"junk\.wav: not audio"):
        read_clip(tmp_path / "junk.wav", 24000)
    with pytest.raises(FileNotFoundError, match=r"gone\.wav"):
        read_clip(tmp_path / "gone.wav", 24000)


def test_read_clip_reads_a_real_ogg_vorbis_file(tmp_path):
    if "VORBIS" not in sf.available_subtypes("OGG"):
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} was built without Ogg Vorbis")
    flac = ASSETS / "pavement_k1-chob-3.flac"
    speech, rate = sf.read(flac, dtype="float32")
    ogg = tmp_path / "speech.ogg"
    sf.write(ogg, speech, rate, format="OGG", subtype="VORBIS")
    assert ogg.stat().st_size > 1000
    clip = read_clip(ogg, rate, min_samples=320)
    assert clip.shape == (len(speech),) and clip.dtype == torch.float32
    assert float(clip.abs().max()) > 0.1  # real speech, not silence
    assert np.corrcoef(clip.numpy(), speech)[0, 1] > 0.95  # lossy, but the same signal
    assert read_clip(ogg, 16000).shape == (round(len(speech) * 16000 / rate),)


def test_write_wav_is_lossless_and_atomic(tmp_path):
    wav = torch.linspace(-1.5, 1.5, 480)  # beyond [-1, 1]: float WAV keeps it
    path = write_wav(tmp_path / "out" / "x.wav", wav, 24000)
    data, rate = sf.read(path, dtype="float32")
    assert rate == 24000 and np.array_equal(data, wav.numpy())
    with pytest.raises(Exception):
        write_wav(tmp_path / "out" / "bad.wav", wav, 0)  # soundfile refuses a zero rate
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.wav"]  # no partial or temporary file
