"""rFID / pFID at several token counts in one pass (FlexTok, TiTok): per-k results, one measurement
of the originals, seeded flow decoding (so pFID at alpha=0 is rFID at every k), the k plot, the CLI."""
import json

import pytest
import torch

from tests.metrics.fakes import FakeInception
from tests.models.test_flextok import tiny_model
from vistok.metrics.eval_images import EvalImages
from vistok.metrics.recon import PassSettings
from vistok.metrics.report import write_report
from vistok.metrics.samples import DatasetSource
from vistok.metrics.tokenizer_eval import evaluate_pfid, evaluate_rfid
from vistok.metrics.tokenizer_runner import TokenizerRunner


def _source(folder, size=16, limit=None):
    return DatasetSource(EvalImages(folder, size, "titok", limit))


@pytest.fixture(scope="module")
def flextok():
    return tiny_model()  # 16 px, 256 registers, deterministic VAE encoding (posterior mode)


def _runner(model):
    return TokenizerRunner(model, decode_options={"steps": 2})


def test_rfid_at_several_k_measures_the_originals_once(flextok, photo_folder, tmp_path):
    inception = FakeInception()
    settings = PassSettings(batch_size=16, use_cache=False, num_tokens=(16, 1, 4))
    result, grid = evaluate_rfid(_runner(flextok), _source(photo_folder), inception, settings=settings)
    assert inception.seen == 16 * (1 + 3)  # the originals once, then each k
    assert [p["num_tokens"] for p in result.points] == [1, 4, 16]
    by_k = {p["num_tokens"]: p for p in result.points}
    assert result.metrics["rfid"] == by_k[16]["rfid"] and result.metrics["num_tokens"] == 16
    assert result.metrics["rfid_by_k"] == {str(k): by_k[k]["rfid"] for k in (1, 4, 16)}
    assert len({p["rfid"] for p in result.points}) == 3  # decoding more tokens changes the images
    assert result.protocol.tokenizer["num_tokens"] == [1, 4, 16] and result.protocol.seed == 0
    assert result.protocol.tokenizer["decode_options"] == {"steps": 2}
    assert set(grid) == {"original", "clean@k=1", "clean@k=4", "clean@k=16"}
    files = write_report(result, tmp_path / "report", "rFID vs k", grid)
    assert files["k_plot"].name == "rfid_vs_k.png" and files["k_plot"].stat().st_size > 0
    assert "plot" not in files  # no pFID grid
    assert "| num_tokens |" in (tmp_path / "report/report.md").read_text()
    saved = json.loads((tmp_path / "report/result.json").read_text())
    assert saved["metrics"]["rfid_by_k"]["4"] == by_k[4]["rfid"]


def test_seeded_decoding_does_not_depend_on_batching(flextok, photo_folder):
    results = []
    for batch in (16, 5):
        settings = PassSettings(batch_size=batch, use_cache=False, num_tokens=(2, 8))
        result, _ = evaluate_rfid(_runner(flextok), _source(photo_folder), FakeInception(), settings=settings)
        results.append(result.points)
    assert results[0] == [pytest.approx(p, rel=1e-4) for p in results[1]]  # BLAS blocking differs by batch


def test_pfid_at_several_k_equals_rfid_at_alpha_zero(flextok, photo_folder, tmp_path):
    settings = PassSettings(batch_size=8, use_cache=False, num_tokens=(1, 16))
    result, _ = evaluate_pfid(_runner(flextok), _source(photo_folder), FakeInception(), alphas=(0.0, 1.0),
                              deltas=(8,), seed=0, settings=settings)
    rows = {(p["num_tokens"], p["alpha"]): p for p in result.points}
    assert sorted(rows) == [(1, 0.0), (1, 1.0), (16, 0.0), (16, 1.0)]
    for k in (1, 16):
        assert rows[(k, 0.0)]["pfid"] == result.metrics["rfid_by_k"][str(k)]
        assert rows[(k, 0.0)]["replaced_fraction"] == 0
        assert rows[(k, 1.0)]["pfid"] > rows[(k, 0.0)]["pfid"]
        assert rows[(k, 1.0)]["replaced_fraction"] == pytest.approx(7 / 8, abs=0.2)
        assert result.metrics["pfid_mean_by_k"][str(k)] == pytest.approx((rows[(k, 0.0)]["pfid"]
                                                                           + rows[(k, 1.0)]["pfid"]) / 2)
    assert result.metrics["pfid_mean"] == result.metrics["pfid_mean_by_k"]["16"]
    assert result.protocol.definition["num_tokens"] == [1, 16]
    files = write_report(result, tmp_path / "report", "pFID vs k")
    assert {"plot", "k_plot"} <= set(files)


def test_titok_prefix_of_all_tokens_is_the_plain_rfid(trained_titok, photo_folder):
    runner = TokenizerRunner(trained_titok)
    plain, _ = evaluate_rfid(runner, _source(photo_folder, 32), FakeInception(), settings=PassSettings(use_cache=False))
    multi, _ = evaluate_rfid(runner, _source(photo_folder, 32), FakeInception(),
                             settings=PassSettings(use_cache=False, num_tokens=(2, 8)))
    assert multi.metrics["rfid"] == plain.metrics["rfid"] and multi.metrics["psnr"] == plain.metrics["psnr"]
    assert multi.points[0]["psnr"] < multi.points[1]["psnr"]  # 2 of 8 tokens reconstruct worse


def test_token_counts_are_checked(flextok, photo_folder):
    from vistok.models.flextok import FlexTokVAE

    vae = FlexTokVAE(dict(image_size=16, latent_channels=4, block_out_channels=[32, 32], layers_per_block=1,
                          scaling_factor=1.0))
    with pytest.raises(ValueError, match="needs a 1D tokenizer that decodes any prefix"):
        evaluate_rfid(TokenizerRunner(vae), _source(photo_folder, limit=2), FakeInception(),
                      settings=PassSettings(num_tokens=(4,)))
    with pytest.raises(ValueError, match=r"has 256 tokens; got \[300\]"):
        evaluate_rfid(_runner(flextok), _source(photo_folder, limit=2), FakeInception(),
                      settings=PassSettings(num_tokens=(4, 300)))
    with pytest.raises(ValueError, match="decode option.*'temperature'.*not accepted by FlexTok.decode"):
        TokenizerRunner(flextok, decode_options={"temperature": 1.0})


def test_cli_writes_per_k_results(flextok, photo_folder, tmp_path, monkeypatch):
    from vistok.cli import main

    monkeypatch.setattr("vistok.commands.evaluate._inception", lambda args, device, isc: FakeInception())
    model = tmp_path / "flextok"
    flextok.save_pretrained(model)
    out = tmp_path / "out"
    code = main(["eval", "rfid", "--model", str(model), "--data", str(photo_folder), "--num-images", "6",
                 "--num-tokens", "1,4,256", "--decode-steps", "2", "--lpips", "none", "--workers", "0",
                 "--no-cache", "--out", str(out)])
    assert code == 0
    result = json.loads((out / "result.json").read_text())
    assert sorted(result["metrics"]["rfid_by_k"]) == ["1", "256", "4"]
    assert [p["num_tokens"] for p in result["points"]] == [1, 4, 256]
    assert result["protocol"]["tokenizer"]["decode_options"] == {"steps": 2}
    assert (out / "rfid_vs_k.png").is_file()
    torch.testing.assert_close(result["metrics"]["rfid"], result["metrics"]["rfid_by_k"]["256"])
