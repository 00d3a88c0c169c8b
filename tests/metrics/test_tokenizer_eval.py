"""rFID / pFID of a tokenizer: pFID at alpha=0 is rFID, pFID grows with alpha, results carry their
protocol, and the perturbation does not depend on how the set is batched."""
import pytest
import torch

from tests.metrics.fakes import FakeInception
from tests.models.test_titok import tiny_config
from vistok.metrics.eval_images import EvalImages
from vistok.metrics.lpips_metric import LPIPSMetric
from vistok.metrics.recon import PassSettings
from vistok.metrics.samples import DatasetSource
from vistok.metrics.tokenizer_eval import PFID_LABEL, evaluate_pfid, evaluate_rfid
from vistok.metrics.tokenizer_runner import TokenizerRunner
from vistok.models.titok import TiTok
from vistok.quant.stats import CodebookUsage


def _source(folder, limit=None):
    return DatasetSource(EvalImages(folder, 32, "titok", limit))


def test_pfid_at_alpha_zero_is_rfid_and_grows_with_alpha(trained_titok, photo_folder, inception):
    """Real Inception, 16 crops, the trained tiny TiTok (see its fixture for why it is trained)."""
    runner = TokenizerRunner(trained_titok)
    settings = PassSettings(batch_size=8)
    rfid, grid = evaluate_rfid(runner, _source(photo_folder), inception, settings=settings, tokenizer="tiny")
    pfid, _ = evaluate_pfid(runner, _source(photo_folder), inception, alphas=(0.0, 0.5, 1.0), deltas=(32,),
                            seed=3, settings=settings)
    assert pfid.protocol.reference["source"] == "cache"  # the originals were measured once, by rFID
    by_alpha = {p["alpha"]: p for p in pfid.points}
    assert by_alpha[0.0]["pfid"] == rfid.metrics["rfid"] == pfid.metrics["rfid"]
    assert by_alpha[0.0]["psnr"] == rfid.metrics["psnr"] and by_alpha[0.0]["replaced_fraction"] == 0
    assert rfid.metrics["rfid"] < by_alpha[0.5]["pfid"] < by_alpha[1.0]["pfid"]
    assert rfid.metrics["psnr"] > by_alpha[0.5]["psnr"] > by_alpha[1.0]["psnr"]
    assert by_alpha[1.0]["replaced_fraction"] == pytest.approx(31 / 32, abs=0.06)
    assert pfid.metrics["pfid_mean"] == pytest.approx(sum(p["pfid"] for p in pfid.points) / 3)
    # what the results say about themselves
    assert pfid.metrics["label"] == PFID_LABEL == pfid.protocol.definition["name"]
    assert pfid.protocol.definition["beta"] == 1.0 and pfid.protocol.definition["deltas"] == [32]
    assert pfid.protocol.seed == 3 and pfid.protocol.precision == "fp32"
    proto = rfid.protocol
    assert proto.dataset["count"] == 16 and "Resize(32, bicubic" in proto.dataset["preprocessing_detail"]
    assert proto.reference["content_sha256"] and proto.reference["source"].startswith("computed")
    assert proto.feature_network["weights_sha256"] == inception.weights.sha256
    assert proto.environment["tokzoo_version"] and proto.tokenizer["family"] == "titok"
    assert rfid.metrics["codebook"]["tokens"] == 16 * 8
    assert set(grid) == {"original", "clean"} and grid["clean"].dtype == torch.uint8


def test_perturbation_does_not_depend_on_batching(trained_titok, photo_folder):
    runner = TokenizerRunner(trained_titok)
    results = []
    for batch in (16, 5):
        result, _ = evaluate_pfid(runner, _source(photo_folder), FakeInception(), alphas=(0.7,), deltas=(8,),
                                  seed=1, settings=PassSettings(batch_size=batch, use_cache=False))
        results.append(result.points[0])
    assert results[0] == results[1]
    other, _ = evaluate_pfid(runner, _source(photo_folder), FakeInception(), alphas=(0.7,), deltas=(8,), seed=2,
                             settings=PassSettings(use_cache=False))
    assert other.points[0]["pfid"] != results[0]["pfid"]


def test_codebook_use_is_an_exact_count(trained_titok, photo_folder):
    runner = TokenizerRunner(trained_titok)
    result, _ = evaluate_rfid(runner, _source(photo_folder), FakeInception(), settings=PassSettings(batch_size=6))
    images = torch.stack([EvalImages(photo_folder, 32, "titok")[i][1] for i in range(16)]).float() / 255
    usage = CodebookUsage(32)
    usage.update(trained_titok.encode(images))
    assert result.metrics["codebook"] == usage.compute()


def test_lpips_is_reported_missing_rather_than_random(trained_titok, photo_folder, tmp_path):
    runner = TokenizerRunner(trained_titok)
    missing = LPIPSMetric("alex")
    assert not missing.available and "alexnet" in missing.status.lower()
    result, _ = evaluate_rfid(runner, _source(photo_folder, 4), FakeInception(), missing, PassSettings())
    assert "lpips" not in result.metrics and result.metrics["lpips_status"] == missing.status
    from tests.losses.test_perceptual import fake_torchvision_checkpoint

    weights = tmp_path / "alexnet.pth"
    fake_torchvision_checkpoint("alex", str(weights))
    present = LPIPSMetric("alex", str(weights))
    assert present.available and str(weights) in present.status
    x = torch.rand(3, 3, 32, 32)
    assert present(x, x).abs().max() < 1e-6 and (present(x, x.flip(-1)) > 0).all()
    result, _ = evaluate_rfid(runner, _source(photo_folder, 4), FakeInception(), present, PassSettings())
    assert result.metrics["lpips"] > 0


def test_runner_precision_and_refusals(photo_folder):
    kl = TiTok({**tiny_config(False).to_dict(), "bottleneck": "kl"})
    runner = TokenizerRunner(kl, precision="bf16")
    assert runner.precision_used == "fp32" and runner.codebook_size is None  # CPU runs fp32
    with pytest.raises(ValueError, match="discrete tokenizer"):
        evaluate_pfid(runner, _source(photo_folder, 2), FakeInception(), alphas=(0.5,), deltas=(4,))
    result, _ = evaluate_rfid(runner, _source(photo_folder, 2), FakeInception())
    assert "codebook" not in result.metrics and result.metrics["num_images"] == 2
    vq = TokenizerRunner(TiTok(tiny_config(False)))
    with pytest.raises(ValueError, match="codebook size"):
        evaluate_pfid(vq, _source(photo_folder, 2), FakeInception(), alphas=(0.5,), deltas=(64,))
    with pytest.raises(ValueError, match="precision"):
        TokenizerRunner(kl, precision="int8")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_autocast_runs(trained_titok, photo_folder, precision):
    runner = TokenizerRunner(trained_titok, "cuda", precision)
    result, _ = evaluate_rfid(runner, _source(photo_folder, 8), FakeInception(), settings=PassSettings())
    assert result.protocol.precision == precision and result.metrics["psnr"] > 15
    trained_titok.to("cpu")

