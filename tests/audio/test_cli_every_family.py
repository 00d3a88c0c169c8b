"""`tokzoo audio encode / decode / reconstruct` and `eval/codec.py` for every audio family.

The families come from the ``tokzoo.families`` entry points, so a new one is covered as soon as it
is registered. Each family's tests module (``tests/audio/test_<family>.py``) must define
``tiny_model()`` (seeded, eval mode); a family without one fails here, naming what to add. A family
whose code needs an optional package that is not installed is skipped with the package's name.
EnCodec runs twice: its mono 24 kHz form and its stereo 48 kHz form (segments with loudness scales).
"""
import importlib
import importlib.util
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vistok.cli import main
from vistok.registry import families

sf = pytest.importorskip("soundfile")
pytest.importorskip("soxr")

ROOT = Path(__file__).resolve().parents[2]
#: tiny_model() arguments per variant, for families with more than one form
VARIANTS = {"encodec": {"mono": ("causal",), "stereo": ("segmented",)}}


def _cases():
    out = []
    for name, family in sorted(families().items()):
        if family.modality != "audio":
            continue
        for variant in VARIANTS.get(name, {"": ()}):
            out.append(pytest.param(name, variant, id=f"{name}-{variant}" if variant else name))
    return out


def tiny(family: str, variant: str):
    """The family's tiny model from its tests module; fails clearly when there is none."""
    target = f"tests.audio.test_{family}"
    try:
        importlib.import_module(get_family_module(family))
    except ModuleNotFoundError as err:
        top = (err.name or "").split(".")[0]
        if top not in ("audiotok", "vistok", "tests"):
            pytest.skip(f"{family} needs the optional package {err.name!r}, not installed")
        raise
    if importlib.util.find_spec(target) is None:
        pytest.fail(f"audio family {family!r} has no tests module {target.replace('.', '/')}.py defining "
                    "tiny_model(): add one so the CLI and eval/codec.py are tested on it")
    module = importlib.import_module(target)
    if not hasattr(module, "tiny_model"):
        pytest.fail(f"{target.replace('.', '/')}.py defines no tiny_model(): add one (seeded, eval mode) so the "
                    f"CLI and eval/codec.py are tested on {family!r}")
    return module.tiny_model(*VARIANTS.get(family, {}).get(variant, ()))


def get_family_module(family: str) -> str:
    return families()[family].model.split(":")[0]


def _write_clips(folder: Path, model, channels: int):
    """Two noise clips of different lengths (a few frames, not multiples of the hop) at the model's rate."""
    folder.mkdir(parents=True)
    hop, rate = model.hop_length, model.sample_rate
    gen = np.random.default_rng(0)
    paths = []
    for i, frames in enumerate((9, 5)):
        n = max(hop * frames, 2200 - 400 * i) + 7  # the metrics need more than 2048 samples (n_fft)
        data = (0.3 * gen.standard_normal((n, channels))).astype(np.float32)
        path = folder / f"clip{i}.wav"
        sf.write(path, data if channels > 1 else data[:, 0], rate, subtype="FLOAT")
        paths.append(path)
    return paths


def _alone(model, path: Path):
    """The clip as the model reads it, its ids, and its decode, computed in this process."""
    data, _ = sf.read(path, dtype="float32", always_2d=True)
    wav = torch.from_numpy(data.T.copy())
    with torch.no_grad():
        if model.needs_scales:
            codes = model.encode_with_scales(wav[None])
            return wav, codes.ids[0], model.decode(*codes)[0]
        ids = model.encode(wav.mean(0)[None])
        noise = {"generator": [torch.Generator().manual_seed(0)]} \
            if "generator" in inspect.signature(model.decode).parameters else {}  # SNAC: the CLI's default seed
        return wav.mean(0, keepdim=True), ids[0], model.decode(ids, **noise)[0].reshape(1, -1)


@pytest.mark.parametrize("family, variant", _cases())
def test_cli_and_eval_on_every_audio_family(family, variant, tmp_path, capsys):
    model = tiny(family, variant)
    assert model.family == family
    model_dir = tmp_path / "codec"
    model.save_pretrained(model_dir)
    paths = _write_clips(tmp_path / "clips", model, model.channels)
    expected = [_alone(model, p) for p in paths]
    files = [str(p) for p in paths]

    ids_path = tmp_path / "ids.npy"
    assert main(["audio", "encode", *files, "--model", str(model_dir), "-o", str(ids_path), "--batch-size", "2"]) == 0
    array = np.load(ids_path)
    longest = max(ids.shape[-1] for _, ids, _ in expected)
    assert array.dtype == np.int32 and array.shape == (2, *expected[0][1].shape[:-1], longest)
    for row, (_, ids, _) in zip(array, expected):
        n = ids.shape[-1]
        assert np.array_equal(row[..., :n], ids.numpy()) and (row[..., n:] == -1).all()  # batched == alone

    assert main(["audio", "decode", str(ids_path), "--model", str(model_dir), "-o", str(tmp_path / "dec")]) == 0
    assert main(["audio", "reconstruct", *files, "--model", str(model_dir), "-o", str(tmp_path / "rec")]) == 0
    for i, (path, (wav, ids, audio)) in enumerate(zip(paths, expected)):
        decoded, rate = sf.read(tmp_path / "dec" / f"{i:06d}.wav", dtype="float32", always_2d=True)
        assert rate == model.sample_rate and decoded.shape[1] == model.channels
        if model.needs_scales:  # decode(ids, scales, lengths): the input's length
            assert decoded.shape[0] == wav.shape[-1]
        else:
            assert decoded.shape[0] == min(ids.shape[-1] * model.hop_length, audio.shape[-1])
            assert decoded.shape[0] >= wav.shape[-1] - model.hop_length
        np.testing.assert_allclose(decoded.T, audio[:, : decoded.shape[0]].numpy(), atol=1e-5)
        rebuilt, rate = sf.read(tmp_path / "rec" / f"{path.stem}.wav", dtype="float32", always_2d=True)
        assert rate == model.sample_rate and rebuilt.shape == (wav.shape[-1], model.channels)
        np.testing.assert_allclose(rebuilt.T, audio[:, : wav.shape[-1]].numpy(), atol=1e-5)
    out = capsys.readouterr().out
    assert f"{ids_path}: {array.shape} int32" in out and "wrote 2 WAV file(s)" in out

    pytest.importorskip("matplotlib")
    codec = _eval_script()
    assert codec.main([str(model_dir), str(tmp_path / "clips"), "--out", str(tmp_path / "eval"), "--device", "cpu"]) == 0
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    protocol = results["protocol"]
    assert protocol["family"] == family and protocol["model"] == str(model_dir) and protocol["files"] == 2
    assert protocol["sample_rate"] == model.sample_rate and protocol["channels"] == model.channels
    assert protocol["input"] and protocol["reconstruction"] and protocol["metrics"]
    assert [r["file"] for r in results["files"]] == ["clip0.wav", "clip1.wav"]
    assert all(r["tokens"] == ids.shape[-1] for r, (_, ids, _) in zip(results["files"], expected))
    assert all(isinstance(r["si_sdr"], float) for r in results["files"]) and results["mean"]["si_sdr"] is not None
    assert (tmp_path / "eval" / "report" / "report.md").is_file()
    for name in ("clip0", "clip1"):
        written, rate = sf.read(tmp_path / "eval" / "report" / "audio" / f"{name}.wav", always_2d=True)
        assert rate == model.sample_rate and written.shape[1] == model.channels


def _eval_script():
    spec = importlib.util.spec_from_file_location("eval_codec_every_family", ROOT / "eval" / "codec.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_family_without_a_tiny_model_fails_and_a_missing_extra_skips(monkeypatch):
    from vistok.registry import Family

    import tests.audio.test_cli_every_family as me

    fake = {"nocodec": Family("nocodec", "audiotok.models.dac.model:DAC", "audio"),
            "extracodec": Family("extracodec", "tokzoo_absent_extra_pkg.model:Codec", "audio")}
    monkeypatch.setattr(me, "families", lambda: fake)
    assert [p.id for p in me._cases()] == ["extracodec", "nocodec"]
    with pytest.raises(pytest.fail.Exception, match="'nocodec' has no tests module tests/audio/test_nocodec.py"):
        me.tiny("nocodec", "")
    with pytest.raises(pytest.skip.Exception, match="optional package 'tokzoo_absent_extra_pkg'"):
        me.tiny("extracodec", "")
