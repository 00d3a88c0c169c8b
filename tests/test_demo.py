import json

from vistok.demo import main


def test_demo_runs_offline_and_reports_sensible_numbers(tmp_path, capsys):
    assert main(["--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert (tmp_path / "quantizers.png").stat().st_size > 10_000
    vq = report["VQ 1024 codes (k-means + EMA)"]
    rvq2, rvq4 = report["Residual VQ, 2 levels x 1024"], report["Residual VQ, 4 levels x 1024"]
    perturbed = report["VQ + latent perturbation a=.5 d=8"]
    # more residual levels: more bits and a better reconstruction
    assert vq["psnr_db"] < rvq2["psnr_db"] < rvq4["psnr_db"]
    assert rvq4["bits_per_pixel"] == 4 * vq["bits_per_pixel"]
    # perturbed tokens decode worse than clean ones, at the rate latent perturbation promises
    assert perturbed["psnr_db"] < vq["psnr_db"]
    assert abs(perturbed["replaced_tokens"] - 0.5 * 7 / 8) < 0.02
    assert vq["psnr_db"] > 25
    assert "tokzoo train train/demo/titok_tiny.yaml" in capsys.readouterr().out
