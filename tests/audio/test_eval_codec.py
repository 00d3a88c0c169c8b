import importlib.util
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "tests" / "assets" / "audio"


def _load_script():
    spec = importlib.util.spec_from_file_location("eval_codec", ROOT / "eval" / "codec.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


codec = _load_script()


class MuLawCodec(torch.nn.Module):
    """Stand-in codec: 8-bit mu-law, one token per sample, decoded one sample longer than the input
    (as real codecs decode whole frames)."""

    def __init__(self, fail_on_call: int = 0):
        super().__init__()
        self.config = SimpleNamespace(sample_rate=16000, codebook_size=256)
        self.calls, self.fail_on_call = 0, fail_on_call

    def encode(self, wav, sample_rate):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("stand-in failure")
        assert sample_rate == self.config.sample_rate
        x = wav.clamp(-1, 1)
        y = torch.sign(x) * torch.log1p(255 * x.abs()) / math.log(256)
        return ((y + 1) / 2 * 255).round().long()

    def decode(self, ids):
        y = ids.float() / 255 * 2 - 1
        x = torch.sign(y) * ((256 ** y.abs()) - 1) / 255
        return torch.cat([x, x[:, -1:]], dim=-1)


def _files():
    return sorted(ASSETS.glob("*.flac"))


def test_evaluates_a_folder_and_writes_results_and_report(tmp_path):
    out = tmp_path / "out"
    results = codec.evaluate_codec(MuLawCodec(), _files(), ASSETS, out, "mulaw-8bit", log=lambda *_: None)
    saved = json.loads((out / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    protocol = saved["protocol"]
    assert protocol["model"] == "mulaw-8bit" and protocol["sample_rate"] == 16000 and protocol["files"] == 2
    assert {"pesq", "pystoi", "soxr", "tokzoo"} <= set(protocol["versions"])
    assert protocol["tokzoo_version"] and "16 kHz" in protocol["pesq_resampling"]
    rows = saved["files"]
    assert [r["file"] for r in rows] == [p.name for p in _files()]
    for row in rows:
        assert row["pesq_wb"] > 3.5 and row["stoi"] > 0.95 and row["si_sdr"] > 20  # 8-bit mu-law is transparent-ish
        assert row["tokens"] == round(row["seconds"] * 16000)
    for key, value in saved["mean"].items():
        assert value == pytest.approx(np.mean([r[key] for r in rows]))
    assert saved["failures"] == {k: 0 for k in codec.METRICS}
    assert 0 < saved["codebook"]["utilization"] <= 1 and saved["codebook"]["tokens"] == sum(r["tokens"] for r in rows)
    for path in _files():
        png = out / "report" / "spectrograms" / f"{path.stem}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        audio, rate = sf.read(out / "report" / "audio" / f"{path.stem}.wav")
        assert rate == 16000 and len(audio) == next(r["tokens"] for r in rows if r["file"] == path.name)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_a_failed_run_writes_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="stand-in failure"):
        codec.evaluate_codec(MuLawCodec(fail_on_call=2), _files(), ASSETS, out, "x", log=lambda *_: None)
    assert list(out.iterdir()) == []


def test_a_new_run_replaces_the_old_report(tmp_path):
    out = tmp_path / "out"
    codec.evaluate_codec(MuLawCodec(), _files(), ASSETS, out, "first", log=lambda *_: None)
    codec.evaluate_codec(MuLawCodec(), _files()[:1], ASSETS, out, "second", log=lambda *_: None)
    assert json.loads((out / "results.json").read_text())["protocol"]["model"] == "second"
    assert len(list((out / "report" / "audio").iterdir())) == 1
    assert sorted(p.name for p in out.iterdir()) == ["report", "results.json"]


def test_command_line_on_a_tiny_saved_wavtokenizer(tmp_path, capsys):
    from audiotok.models.wavtokenizer import WavTokenizer, WavTokenizerConfig
    from vistok.hub.pretrained import save_pretrained

    config = WavTokenizerConfig.for_token_rate(75, n_filters=4, dim=16, codebook_size=64, decoder_dim=32,
                                               decoder_intermediate_dim=48, decoder_layers=1, lstm_layers=1,
                                               norm_groups=8, kmeans_init=False)
    save_pretrained(WavTokenizer(config).eval(), tmp_path / "model")
    out = tmp_path / "eval"
    assert codec.main([str(tmp_path / "model"), str(ASSETS), "--out", str(out), "--device", "cpu"]) == 0
    assert "2 files, mean:" in capsys.readouterr().out
    saved = json.loads((out / "results.json").read_text())
    assert saved["protocol"]["family"] == "wavtokenizer" and saved["protocol"]["sample_rate"] == 24000
    assert saved["protocol"]["model_config"]["codebook_size"] == 64
    for row in saved["files"]:
        assert row["tokens"] == math.ceil(row["seconds"] * 24000 / 320)
        assert all(row[k] is None or math.isfinite(row[k]) for k in codec.METRICS)
    assert saved["codebook"]["tokens"] == sum(r["tokens"] for r in saved["files"])
    assert len(list((out / "report" / "spectrograms").glob("*.png"))) == 2
    assert codec.main([str(tmp_path / "model"), str(ASSETS), "--out", str(out), "--max-files", "1"]) == 0
    assert len(json.loads((out / "results.json").read_text())["files"]) == 1


def test_command_line_rejects_a_folder_without_audio(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="audio files"):
        codec.main(["unused-model", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
