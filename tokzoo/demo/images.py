"""The demo's image section: a 1D image tokenizer from the zoo on the bundled photos and a slice of
the corpus val split, at several token counts (prefixes of the same ids).

- bundled photos: ids, reconstructions per k as PNG, PSNR / SSIM per image and k;
- val slice: rFID at every k (one pass, the originals measured once) and pFID over an
  (alpha, delta) grid at the full count, with the full protocol of each and the small-N caveat;
  ``tokzoo eval`` writes the same report folders (``result.json``, ``report.md``, plots).
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

from vistok.data.images import save_image
from vistok.hub.loading import load_tokenizer
from vistok.metrics.image_quality import psnr, ssim
from vistok.metrics.samples import DatasetSource

SMALL_N_CAVEAT = ("FID on {n} images is biased upwards by its small sample and varies with N: it compares runs "
                  "with the same N, data and protocol only, never an ImageNet 50k number")
PFID_ALPHAS = (0.1, 0.3, 0.5)
PFID_DELTAS = (10, 100)


def bundled_dir() -> Path:
    """The folder of the bundled sample photos (a real folder in a checkout and in an installed wheel)."""
    return Path(str(resources.files("vistok") / "assets" / "samples"))


def _images(folder: Path, size: int, limit: Optional[int] = None):
    from vistok.metrics.eval_images import EvalImages

    return EvalImages(folder, size, "titok", limit)


def reconstruct_samples(model, dataset, ks: Sequence[int], out_dir: Path, root: Path) -> List[Dict[str, Any]]:
    """Tokenize each image of ``dataset`` once and decode the first k ids for every k; PNGs under
    ``out_dir``, named in the rows by their path relative to ``root`` (the page's folder)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    with torch.inference_mode():
        for index in range(len(dataset)):
            _, image = dataset[index]
            x = image[None].float() / 255
            ids = model.encode(x)
            stem = dataset.paths[index].stem
            original = save_image(x[0], out_dir / f"{stem}_original.png")
            row: Dict[str, Any] = {"name": stem, "original": original.relative_to(root).as_posix(),
                                   "ids": ids[0].tolist(), "by_k": []}
            for k in ks:
                recon = model.decode(ids[:, :k]).float().clamp(0, 1)
                path = out_dir / f"{stem}_k{k}.png"
                save_image(recon[0], path)
                row["by_k"].append({"k": k, "image": path.relative_to(root).as_posix(),
                                    "psnr": float(psnr(recon, x)[0]), "ssim": float(ssim(recon, x)[0])})
            rows.append(row)
    return rows


def evaluate_val(model, name: str, val_dir: Path, num_images: Optional[int], ks: Sequence[int], out_dir: Path,
                 emit: Callable[[str], None]) -> Dict[str, Any]:
    """rFID at every k and pFID at the full count on the first ``num_images`` of ``val_dir`` (all of
    them when None, or when there are fewer); writes the two report folders and returns their results."""
    from vistok.metrics.inception import InceptionFeatures
    from vistok.metrics.inception_weights import resolve_inception_weights
    from vistok.metrics.recon import PassSettings
    from vistok.metrics.report import write_report
    from vistok.metrics.tokenizer_eval import evaluate_pfid, evaluate_rfid
    from vistok.metrics.tokenizer_runner import TokenizerRunner

    size = model.config.image_size
    dataset = _images(val_dir, size)
    if num_images is not None and num_images < len(dataset):
        dataset = _images(val_dir, size, num_images)
    caveat = SMALL_N_CAVEAT.format(n=len(dataset))
    source = DatasetSource(dataset, description={**dataset.describe(), "split": "val", "caveat": caveat})
    runner = TokenizerRunner(model, "cpu", "fp32")
    inception = InceptionFeatures(resolve_inception_weights(None), device="cpu")
    results: Dict[str, Any] = {"caveat": caveat}
    settings = PassSettings(batch_size=32, num_tokens=tuple(ks))
    emit(f"  rFID at k = {', '.join(map(str, ks))} on {len(dataset)} val images ...")
    rfid, grid = evaluate_rfid(runner, source, inception, None, settings, name)
    write_report(rfid, out_dir / "rfid", f"rFID of {name} at several token counts", grid)
    results["rfid"] = rfid.to_dict()
    emit(f"  pFID at k = {ks[-1]} over alpha {PFID_ALPHAS} x delta {PFID_DELTAS} ...")
    pfid, grid = evaluate_pfid(runner, source, inception, PFID_ALPHAS, PFID_DELTAS, 0, None,
                               PassSettings(batch_size=32), name)
    write_report(pfid, out_dir / "pfid", f"pFID of {name}", grid)
    results["pfid"] = pfid.to_dict()
    return results


def run(name: str, val_dir: Optional[Path], num_val: int, ks: Sequence[int], out_dir: Path,
        emit: Callable[[str], None] = print) -> Dict[str, Any]:
    model = load_tokenizer(name)
    size = model.config.image_size
    emit(f"Image tokenizer {name}: {model.num_tokens} tokens, codebook {model.quantize.codebook_size}, {size} px")
    bundled = _images(bundled_dir(), size)
    samples = reconstruct_samples(model, bundled, ks, out_dir / "samples", out_dir.parent)
    for row in samples:
        scores = "  ".join(f"k={r['k']}: {r['psnr']:.1f} dB" for r in row["by_k"])
        emit(f"  {row['name']:<24} {scores}")
    section: Dict[str, Any] = {"model": name, "image_size": size, "num_tokens": model.num_tokens, "ks": list(ks),
                               "samples": samples, "samples_protocol": {
                                   "data": "the bundled photos (vistok/assets/samples; val-split sources, never "
                                           "trained on)", "preprocessing": bundled.describe(),
                                   "metrics": "PSNR and SSIM (11x11 Gaussian, sigma 1.5) after uint8 rounding",
                                   "precision": "fp32 (CPU)"}}
    if val_dir is None:
        section["val"] = {"skipped": "no corpus val split found (pass --data DIR with images/val)"}
        emit(f"  val slice skipped: {section['val']['skipped']}")
    else:
        section["val"] = evaluate_val(model, name, val_dir, num_val, ks, out_dir, emit)
    return section
