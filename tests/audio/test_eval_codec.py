import importlib.util
import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch

from vistok.models.base import Tokenizer

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "tests" / "assets" / "audio"


def _load_script():
    spec = importlib.util.spec_from_file_location("eval_codec", ROOT / "eval" / "codec.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


codec = _load_script()


class MuLawCodec(Tokenizer):
    """Stand-in codec: 8-bit mu-law, one token per sample, decoded one sample longer than the input
    (as real codecs decode whole frames)."""

    family, modality = "mulaw", "audio"
    sample_rate, codebook_size = 16000, 256

    def __init__(self, fail_on_call: int = 0):
        super().__init__()
        self.config = SimpleNamespace(sample_rate=16000, codebook_size=256, to_dict=lambda: {"bits": 8})
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


@pytest.fixture(autouse=True)
def _no_model_env(monkeypatch):
    for _, _, env in codec.MODEL_METRICS.values():
        monkeypatch.delenv(env, raising=False)


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

    for key, (_, flag, env) in codec.MODEL_METRICS.items():  # no model file anywhere: the reason is recorded
        entry = saved["model_metrics"][key]
        assert entry["model"] is None and entry["reason"].startswith(f"not scored: no {flag} given and {env} not set")
        assert "local disk" in entry["reason"] and key not in saved["mean"] and key not in rows[0]

    report = (out / "report" / "report.md").read_text()
    assert report.startswith("# Codec evaluation: mulaw-8bit")
    assert "| file | seconds | tokens | pesq_wb | stoi | mel_distance | si_sdr | mrstft_distance |" in report
    assert f"| pesq_wb | {saved['mean']['pesq_wb']:.3f} | higher | 0 |" in report
    assert "- utmos: not scored: no --utmos-model given" in report
    for row, path in zip(rows, _files()):
        line = next(line for line in report.splitlines() if line.startswith(f"| {row['file']} |"))
        assert f"| {row['si_sdr']:.3f} |" in line and f"| {row['tokens']} |" in line
        links = dict((label, target) for label, target in re.findall(r"\[(\w+)\]\(([^)]+)\)", line))
        assert links["png"] == f"spectrograms/{path.stem}.png" and links["reconstruction"] == f"audio/{path.stem}.wav"
        for target in links.values():  # every link resolves from the report folder
            assert (out / "report" / target).resolve().is_file()
        assert (out / "report" / links["original"]).resolve() == path.resolve()


class _Loudness(torch.nn.Module):
    """Stand-in UTMOS: (B, T) -> (B,), 1 + 10 * mean |x|."""

    def forward(self, x):
        return 1 + 10 * x.abs().mean(-1)


class _Embedding(torch.nn.Module):
    """Stand-in speaker model: (B, T) -> (B, 3) crude signal statistics."""

    def forward(self, x):
        return torch.stack([x.abs().mean(-1), x.pow(2).mean(-1).sqrt(), x.diff(dim=-1).abs().mean(-1)], -1)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_model_metrics_from_a_flag_and_an_environment_variable(tmp_path, monkeypatch):
    utmos_file, speaker_file = tmp_path / "utmos.pt", tmp_path / "speaker.pt"
    torch.jit.script(_Loudness()).save(str(utmos_file))
    torch.jit.script(_Embedding()).save(str(speaker_file))
    monkeypatch.setenv("TOKZOO_SPEAKER_MODEL", str(speaker_file))
    out = tmp_path / "out"
    saved = codec.evaluate_codec(MuLawCodec(), _files(), ASSETS, out, "m", log=lambda *_: None,
                                 utmos_model=str(utmos_file))
    assert saved["model_metrics"]["utmos"]["model"] == str(utmos_file)
    assert saved["model_metrics"]["utmos"]["source"] == "--utmos-model"
    assert saved["model_metrics"]["speaker_similarity"]["source"] == "TOKZOO_SPEAKER_MODEL"
    assert all(entry["reason"] is None for entry in saved["model_metrics"].values())
    for row, path in zip(saved["files"], _files()):
        rec, _ = sf.read(out / "report" / "audio" / f"{path.stem}.wav")
        expected = codec.M.utmos(rec[: round(row["seconds"] * 16000)], 16000, utmos_file)[0]
        assert row["utmos"] == pytest.approx(expected, rel=1e-3)  # 16-bit WAV vs float reconstruction
        assert 0.99 < row["speaker_similarity"] <= 1.0 + 1e-6  # mu-law keeps these statistics
    assert saved["mean"]["utmos"] == pytest.approx(np.mean([r["utmos"] for r in saved["files"]]))
    assert saved["failures"]["speaker_similarity"] == 0
    report = (out / "report" / "report.md").read_text()
    assert "| mrstft_distance | utmos | speaker_similarity |" in report and "Not scored" not in report


def test_an_unusable_model_file_stops_the_run_before_any_work(tmp_path, monkeypatch):
    junk = tmp_path / "utmos.pt"
    junk.write_bytes(b"not a model")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"--utmos-model: .*utmos\.pt: not a TorchScript archive"):
        codec.evaluate_codec(MuLawCodec(), _files(), ASSETS, out, "m", utmos_model=str(junk))
    monkeypatch.setenv("TOKZOO_SPEAKER_MODEL", str(tmp_path / "gone.pt"))
    with pytest.raises(FileNotFoundError, match=r"TOKZOO_SPEAKER_MODEL: .*gone\.pt: no such file"):
        codec.evaluate_codec(MuLawCodec(), _files(), ASSETS, out, "m")
    assert not out.exists()


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
    from vistok.models.pretrained import save_pretrained

    config = WavTokenizerConfig.for_token_rate(75, n_filters=4, dim=16, codebook_size=64, decoder_dim=32,
                                               decoder_intermediate_dim=48, decoder_layers=1, lstm_layers=1,
                                               norm_groups=8, kmeans_init=False)
    save_pretrained(WavTokenizer(config).eval(), tmp_path / "model")
    out = tmp_path / "eval"
    assert codec.main([str(tmp_path / "model"), str(ASSETS), "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "2 files, mean:" in printed and "utmos not scored: no --utmos-model given" in printed
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
