"""Throughput of the rFID pipeline against torch-fidelity's own feature extraction, in one run.

- ours: ``vistok.metrics.tokenizer_eval.evaluate_rfid`` end to end on a folder of PNGs - decode the
  files with the TiTok eval preprocessing, encode + decode with a tokenizer, round to uint8, Inception
  features of the reconstructions, FID against the (cached) statistics of the originals, PSNR, SSIM,
  exact codebook counts;
- torch-fidelity: ``extract_featuresdict_from_input_id`` on the same PNG folder (its loader and its
  ``inception-v3-compat``), i.e. only the Inception features of the same number of images.

Both read the same Inception weights and run on the same device; the originals' statistics are
cached before timing (as on any second evaluation of the same set), so each side runs Inception
once per image. The ratio ours/torch-fidelity (images/s) is the headline (target >= 1.0x); the
breakdown (tokenizer alone, Inception alone on in-memory batches, both in the same layout)
shows where the time goes. The tokenizer is a tiny random TiTok at 256 px (``--model`` takes a
real one): on the CPU the comparison is about the Inception side.

    python eval/bench_eval.py                       # CPU: 48 images, batch 16
    python eval/bench_eval.py --device cuda --images 2048 --batch 128 --model titok-l32
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vistok.data.images import save_image  # noqa: E402
from vistok.data.bundled import load_samples  # noqa: E402
from bench_common import cpu_name, timed  # noqa: E402  (eval/ is on sys.path when a script here runs)


def tiny_titok(size: int):
    from vistok.models.titok import TiTok

    torch.manual_seed(0)
    width = dict(width=64, depth=2, heads=4)
    return TiTok(dict(image_size=size, patch_size=16, encoder_size=width, decoder_size=width, num_latent_tokens=32,
                      codebook_size=1024, token_size=12, decoder="pixels", legacy_reshape=False))


def write_images(folder: Path, count: int, size: int) -> None:
    """``count`` distinct crops of the bundled photos (shrunk to 1.25 x size) as PNGs."""
    photos = F.interpolate(load_samples(), size=(size * 5 // 4,) * 2, mode="bicubic", antialias=True).clamp(0, 1)
    gen = torch.Generator().manual_seed(0)
    for k in range(count):
        y, x = torch.randint(0, size // 4 + 1, (2,), generator=gen).tolist()
        crop = photos[k % len(photos), :, y : y + size, x : x + size]
        save_image(crop.flip(-1) if (k // len(photos)) % 2 else crop, folder / f"img{k:04d}.png")




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="bf16", choices=("bf16", "fp16", "fp32"))
    parser.add_argument("--model", help="a real tokenizer (zoo name or directory) instead of the tiny random TiTok")
    parser.add_argument("--workers", type=int, default=2, help="our PNG decoding processes")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per side (median), alternating")
    parser.add_argument("--inception-weights")
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args()

    from torch_fidelity.utils import create_feature_extractor, extract_featuresdict_from_input_id

    from vistok.metrics.eval_images import EvalImages
    from vistok.metrics.inception import InceptionFeatures
    from vistok.metrics.inception_weights import resolve_inception_weights
    from vistok.metrics.recon import PassSettings
    from vistok.metrics.samples import DatasetSource
    from vistok.metrics.tokenizer_eval import evaluate_rfid
    from vistok.metrics.tokenizer_runner import TokenizerRunner

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    work = Path(tempfile.mkdtemp(prefix="bench_eval_"))
    os.environ["TOKZOO_CACHE"] = str(work / "cache")  # a private reference cache, warmed below
    folder = work / "images"
    write_images(folder, args.images, args.size)
    weights = resolve_inception_weights(args.inception_weights)

    if args.model:
        from vistok.hub.loading import load_tokenizer

        model, name = load_tokenizer(args.model, device=str(device)), args.model
    else:
        model, name = tiny_titok(args.size), "tiny random TiTok (width 64, depth 2, 32 tokens, 1024 codes)"
    runner = TokenizerRunner(model, device, args.precision)
    ours_net = InceptionFeatures(weights, device=device)
    source = DatasetSource(EvalImages(folder, args.size, "titok"), num_workers=args.workers)
    settings = PassSettings(batch_size=args.batch)
    evaluate_rfid(runner, source, ours_net, settings=settings)  # warm-up; caches the originals' statistics

    tf_net = create_feature_extractor("inception-v3-compat", ["2048"], cuda=cuda,
                                      feature_extractor_weights_path=str(weights.path), verbose=False)
    tf_kwargs = dict(input1=str(folder), batch_size=args.batch, cuda=cuda, verbose=False, samples_find_ext="png")
    results = {"ours": [], "torch-fidelity": []}
    for _ in range(args.repeats):
        results["torch-fidelity"].append(timed(lambda: extract_featuresdict_from_input_id(1, tf_net, **tf_kwargs),
                                               device))
        results["ours"].append(timed(lambda: evaluate_rfid(runner, source, ours_net, settings=settings), device))
    ours_ips = args.images / statistics.median(results["ours"])
    tf_ips = args.images / statistics.median(results["torch-fidelity"])

    # Breakdown on in-memory batches (no file decoding).
    batches = [source.dataset[i][1] for i in range(args.images)]
    batches = [torch.stack(batches[i : i + args.batch]) for i in range(0, args.images, args.batch)]

    def tokenizer_only():
        for b in batches:
            runner.decode(runner.encode(b.float() / 255))

    def inception_only(net):
        with torch.inference_mode():
            for b in batches:
                net(b.to(device) if net is tf_net else b)

    parts = {"tokenizer encode+decode": timed(tokenizer_only, device),
             "Inception, ours (channels-last)": timed(lambda: inception_only(ours_net), device),
             "Inception, torch-fidelity (NCHW)": timed(lambda: inception_only(tf_net), device)}
    with torch.inference_mode():
        b = batches[0]
        diff = (ours_net(b)["2048"] - tf_net(b.to(device))[0].float().cpu()).abs().max().item()

    where = torch.cuda.get_device_name(device) if cuda else f"{cpu_name()}, {torch.get_num_threads()} threads"
    lines = [
        f"rFID pipeline vs torch-fidelity feature extraction: {args.images} PNGs of {args.size}x{args.size}, "
        f"batch {args.batch}, {where}, torch {torch.__version__}, tokenizer {runner.precision_used}, "
        f"Inception fp32, median of {args.repeats}",
        f"tokenizer: {name}",
        f"Inception weights: {weights.source} (sha256 {weights.sha256[:16]}...)",
        "",
        f"{'pipeline':58s} {'img/s':>8s}",
        f"{'ours: evaluate_rfid (PNG -> encode/decode -> Inception -> FID)':58s} {ours_ips:8.2f}",
        f"{'torch-fidelity: extract features of the PNG folder':58s} {tf_ips:8.2f}",
        f"ratio ours / torch-fidelity: {ours_ips / tf_ips:.2f}x (target >= 1.0x)",
        "",
        "breakdown on in-memory uint8 batches:",
    ]
    lines += [f"  {k:40s} {args.images / v:8.2f} img/s" for k, v in parts.items()]
    lines.append(f"  max |feature difference| ours vs torch-fidelity on one batch: {diff:.2e}")
    print("\n".join(lines))
    if args.json:
        record = {"images": args.images, "batch": args.batch, "size": args.size, "device": where,
                  "torch": torch.__version__, "tokenizer": name, "precision": runner.precision_used,
                  "ours_images_per_s": ours_ips, "torch_fidelity_images_per_s": tf_ips,
                  "ratio": ours_ips / tf_ips, "seconds": results,
                  "breakdown_images_per_s": {k: args.images / v for k, v in parts.items()},
                  "max_feature_difference": diff}
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
