"""`make demo` end to end: the embedded tokenizers load through the zoo, every section reports sane
numbers with their protocol, and the page shows every picture and plays every clip in Chromium."""
import json
import math
import os
from pathlib import Path

import pytest

from tests.browser import INSTALL_HINT, chromium, inspect_page
from tokzoo.demo.__main__ import NEXT_STEPS, main

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
PAGE_FACTS = """(async () => {
  const audios = [...document.querySelectorAll('audio')];
  await Promise.all(audios.map(a => a.readyState >= 1 ? null : new Promise(done => {
    a.addEventListener('loadedmetadata', done); a.addEventListener('error', done); setTimeout(done, 20000); })));
  const images = [...document.images];
  await Promise.all(images.map(i => i.complete ? null : new Promise(done => { i.onload = done; i.onerror = done; })));
  return {images: images.map(i => [i.getAttribute('src'), i.naturalWidth, i.naturalHeight]),
          audio: audios.map(a => [a.getAttribute('src'), a.duration]),
          tables: [...document.querySelectorAll('table')].map(t => t.rows.length),
          headings: [...document.querySelectorAll('h2')].map(h => h.textContent)};
})()"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    if not (CORPUS / "images" / "val").is_dir():
        pytest.skip(f"the project corpus is not at {CORPUS}")
    out = tmp_path_factory.mktemp("demo")
    assert main(["--out", str(out), "--data", str(CORPUS), "--num-val", "16"]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_images_section_reconstructs_every_prefix_and_names_its_protocol(demo):
    out, results = demo
    images = results["images"]
    assert images["model"] == "tokzoo-demo-titok-64" and images["ks"] == [8, 32, 128]
    assert len(images["samples"]) == 4
    for row in images["samples"]:
        assert len(row["ids"]) == 128 and all(0 <= i < 4096 for i in row["ids"])
        assert [r["k"] for r in row["by_k"]] == [8, 32, 128]
        assert all((out / r["image"]).stat().st_size > 500 for r in row["by_k"])
        assert all(10 < r["psnr"] < 60 and 0 < r["ssim"] <= 1 for r in row["by_k"])
    rfid = images["val"]["rfid"]
    assert [p["num_tokens"] for p in rfid["points"]] == [8, 32, 128]
    full = rfid["points"][-1]
    assert full["psnr"] >= 18.0, full  # the shipped tokenizer, not a broken one (random weights give ~10 dB)
    protocol = rfid["protocol"]
    assert protocol["dataset"]["count"] == 16 and protocol["dataset"]["split"] == "val"
    assert "biased" in protocol["dataset"]["caveat"]
    assert len(protocol["feature_network"]["weights_sha256"]) == 64
    assert protocol["reference"]["content_sha256"] and protocol["precision"] == "fp32"
    pfid = images["val"]["pfid"]
    assert len(pfid["points"]) == 6 and pfid["protocol"]["definition"]["alphas"] == [0.1, 0.3, 0.5]
    # more perturbation, fewer clean tokens: the replaced fraction grows with alpha at each delta
    for delta in (10, 100):
        replaced = [p["replaced_fraction"] for p in pfid["points"] if p["delta"] == delta]
        assert replaced == sorted(replaced) and replaced[0] > 0
    for name in ("rfid/rfid_vs_k.png", "pfid/pfid_vs_alpha.png", "rfid/result.json", "pfid/report.md"):
        assert (out / "images" / name).stat().st_size > 0


def test_speech_section_scores_every_bundled_clip(demo):
    out, results = demo
    speech = results["speech"]
    assert speech["model"] == "tokzoo-demo-wavtokenizer-speech" and len(speech["files"]) == 3
    for row in speech["files"]:
        assert (out / row["original"]).stat().st_size > 10_000
        assert (out / row["reconstruction"]).stat().st_size > 10_000
        assert all(math.isfinite(row[k]) for k in ("stoi", "si_sdr", "mel_distance"))
    # the shipped demo codec reaches STOI 0.35 on the val split (below the 0.75 it was meant to reach, see its
    # card); random weights give ~0.1
    assert speech["mean"]["stoi"] >= 0.2, speech["mean"]
    assert speech["protocol"]["precision"] == "float32" and "pesq" in speech["protocol"]["versions"]


def test_quantizer_section_is_measured_on_held_out_patches(demo):
    _, results = demo
    report = results["quantizers"]
    vq, rvq2, rvq4 = (report[k] for k in ("VQ, 1024 codes (k-means + EMA)", "Residual VQ, 2 levels x 1024",
                                          "Residual VQ, 4 levels x 1024"))
    assert vq["psnr_db"] < rvq2["psnr_db"] < rvq4["psnr_db"] and rvq4["bits_per_pixel"] == 4 * vq["bits_per_pixel"]
    perturbed = report["VQ + latent perturbation a=.5 d=8"]
    assert perturbed["psnr_db"] < vq["psnr_db"] and abs(perturbed["replaced_tokens"] - 0.5 * 7 / 8) < 0.03
    assert {"FSQ 8-8-8-5-5-5 on 6 PCA coefficients", "LFQ, 12 bits on 12 PCA coefficients",
            "BSQ, 12 bits on 12 PCA coefficients"} <= set(report)
    assert "held-out" in results["quantizers_protocol"]["measured"]


def test_demo_prints_the_next_commands(demo, capsys):
    out, _ = demo
    text = (out / "index.html").read_text()
    for line in NEXT_STEPS:
        assert line.split("#")[0].strip() in text
    assert any("train/finetune/" in line for line in NEXT_STEPS) and any("zoo download" in line for line in NEXT_STEPS)


def test_page_shows_every_image_and_plays_every_clip_in_chromium(demo):
    if chromium() is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser check; .ci/run installs Chromium ({INSTALL_HINT})")
        pytest.skip(f"Chromium is not installed; to run this check: {INSTALL_HINT}")
    out, _ = demo
    facts, errors = inspect_page(out / "index.html", PAGE_FACTS)
    assert errors == []
    # samples x (original + 3 k), 3 spectrograms, 3 val plots (rFID vs k, grid, pFID vs alpha), quantizers
    assert len(facts["images"]) == 4 * 4 + 3 + 3 + 1
    assert all(w > 0 and h > 0 for _, w, h in facts["images"]), facts["images"]
    assert len(facts["audio"]) == 6
    assert all(d is not None and 0 < d < 60 for _, d in facts["audio"]), facts["audio"]
    assert len(facts["tables"]) == 4 and min(facts["tables"]) >= 2  # val per k, pFID grid, speech, quantizers
    headings = facts["headings"]
    assert any(h.startswith("Images") for h in headings) and any(h.startswith("Speech") for h in headings)
