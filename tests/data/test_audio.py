import numpy as np
import pytest
import torch

sf = pytest.importorskip("soundfile")
pytest.importorskip("soxr")

from audiotok.data import AudioFolder, load_audio  # noqa: E402


def sine(freq, rate, seconds, channels=1):
    t = np.arange(int(rate * seconds)) / rate
    mono = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.stack([mono * (1 - 0.5 * c) for c in range(channels)], axis=1).astype(np.float32)


def dominant_hz(x, rate):
    spectrum = np.abs(np.fft.rfft(np.asarray(x, dtype=np.float64)))
    return np.argmax(spectrum) * rate / len(x)


@pytest.fixture
def audio_dir(tmp_path):
    root = tmp_path / "audio"
    (root / "sub").mkdir(parents=True)
    sf.write(root / "a16k.wav", sine(440, 16000, 0.5, channels=2), 16000)
    sf.write(root / "sub" / "b24k.FLAC", sine(1000, 24000, 0.5, channels=2), 24000)
    (root / "notes.txt").write_text("not audio")
    return root


def test_load_audio_resamples_and_downmixes(audio_dir):
    x = load_audio(audio_dir / "a16k.wav", 24000)
    assert x.shape == (1, 12000) and x.dtype == torch.float32
    assert abs(dominant_hz(x[0], 24000) - 440) < 5
    mid = x[0, 2000:10000]
    assert abs(float(mid.abs().max()) - 0.375) < 0.01  # mean of the 0.5 and 0.25 channels
    y = load_audio(audio_dir / "sub" / "b24k.FLAC", 24000)
    assert y.shape == (1, 12000) and abs(dominant_hz(y[0], 24000) - 1000) < 5


def test_segments_padded_or_cropped(audio_dir):
    padded = AudioFolder(audio_dir, 24000, 1.0, return_length=True)
    assert [p.name for p in padded.paths] == ["a16k.wav", "b24k.FLAC"]
    audio, valid = padded[0]
    assert audio.shape == (1, 24000) and valid == 12000
    assert float(audio[0, 12000:].abs().max()) == 0.0
    cropped = AudioFolder(audio_dir, 24000, 0.1, seed=3)
    assert cropped[1].shape == (1, 2400) and cropped.valid_length(1) == 2400
    assert abs(dominant_hz(cropped[1][0], 24000) - 1000) < 11


def test_offsets_reproducible_and_partial_reads_exact(tmp_path):
    (tmp_path / "long").mkdir()
    sf.write(tmp_path / "long" / "x.wav", sine(300, 16000, 1.0, channels=2) * np.linspace(0.2, 1, 16000)[:, None],
             16000)
    full = load_audio(tmp_path / "long" / "x.wav", 24000)[0]
    ds = AudioFolder(tmp_path / "long", 24000, 0.1, seed=5)
    starts = set()
    for epoch in range(4):
        ds.set_epoch(epoch)
        torch.manual_seed(epoch)  # global RNG must not matter
        seg = ds[0][0]
        ds2 = AudioFolder(tmp_path / "long", 24000, 0.1, seed=5)
        ds2.set_epoch(epoch)
        assert torch.equal(seg, ds2[0][0])
        heads = full.unfold(0, 64, 1)[: 24000 - 2400]  # where in the whole file does the segment start?
        start = int((heads - seg[:64]).abs().amax(dim=1).argmin())
        assert float((full[start:start + 2400] - seg).abs().max()) < 1e-4  # partial read == slice of the whole
        starts.add(start)
    assert len(starts) > 1
    center = AudioFolder(tmp_path / "long", 24000, 0.1, random_crop=False)[0][0]
    assert torch.allclose(center, full[10800:13200], atol=1e-4)


def test_bad_files_named(tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "text.wav").write_text("this is not a wav file at all")
    (root / "empty.flac").write_bytes(b"")
    sf.write(root / "nosamples.wav", np.zeros((0, 1), dtype=np.float32), 16000)
    nan = sine(440, 16000, 0.1)
    nan[100] = np.nan
    sf.write(root / "nan.wav", nan, 16000, subtype="FLOAT")
    ds = AudioFolder(root, 16000, 0.05)
    for i, path in enumerate(ds.paths):
        with pytest.raises(ValueError, match=path.name):
            ds[i]
        with pytest.raises(ValueError, match=path.name):
            load_audio(path, 16000)
    with pytest.raises(ValueError, match="NaN"):
        load_audio(root / "nan.wav", 16000)
    with pytest.raises(FileNotFoundError, match="missing"):
        AudioFolder(tmp_path / "missing", 16000, 1.0)
    (tmp_path / "none").mkdir()
    with pytest.raises(ValueError, match=r"none.*\.flac"):
        AudioFolder(tmp_path / "none", 16000, 1.0)
