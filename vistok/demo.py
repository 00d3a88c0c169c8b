"""`make demo`: what tokzoo can do today, on real images, offline.

The shared quantizers tokenize 4x4-pixel patches of the bundled sample photos (each patch a
48-d vector) and decode them back, so their rate/distortion and codebook use can be compared on
real data; latent perturbation shows the kind of token error pFID measures. Writes a picture
grid and a JSON report, then prints the commands that train and measure the learned tokenizers.
"""
from __future__ import annotations

import argparse
import json
import math
from importlib import resources
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch
from PIL import Image

from vistok.quant import CodebookUsage, DimwiseQuantizer, LatentPerturbation, ResidualVQ, VectorQuantizer

PATCH = 4

NEXT_STEPS = (
    "tokzoo train train/demo/titok_tiny.yaml          # a 1D image tokenizer on the corpus, CPU-sized",
    "tokzoo train train/demo/wavtokenizer_tiny.yaml   # a speech codec with the three discriminators",
    "tokzoo eval pfid --model outputs/train/titok-tiny-demo/export --data IMAGES --out outputs/pfid",
    "tokzoo zoo list                                  # the published tokenizers and their reported numbers",
)


def load_samples() -> torch.Tensor:
    """The bundled 256x256 sample photos as a (N, 3, 256, 256) tensor in [0, 1]."""
    folder = resources.files("vistok") / "assets" / "samples"
    images = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".jpg"):
            with resources.as_file(entry) as path:
                img = Image.open(path).convert("RGB").resize((256, 256))
            images.append(torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255)
    return torch.stack(images)


def to_patches(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, H/p, W/p, 3*p*p), values in [-1, 1]."""
    n, c, h, w = x.shape
    p = x.unfold(2, PATCH, PATCH).unfold(3, PATCH, PATCH)  # N, C, H/p, W/p, p, p
    return p.permute(0, 2, 3, 1, 4, 5).reshape(n, h // PATCH, w // PATCH, c * PATCH * PATCH) * 2 - 1


def from_patches(p: torch.Tensor) -> torch.Tensor:
    n, gh, gw, _ = p.shape
    x = p.reshape(n, gh, gw, 3, PATCH, PATCH).permute(0, 3, 1, 4, 2, 5)
    return ((x.reshape(n, 3, gh * PATCH, gw * PATCH) + 1) / 2).clamp(0, 1)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a - b).pow(2).mean().item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def fit(quantizer: torch.nn.Module, patches: torch.Tensor, steps: int) -> None:
    """Codebook fitting for the VQ family: k-means init on the first batch, then EMA steps."""
    quantizer.train()
    flat = patches.reshape(-1, patches.shape[-1])
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        quantizer(flat[torch.randperm(flat.shape[0], generator=gen)[:8192]])
    quantizer.eval()


def run(out_dir: Path) -> Dict[str, dict]:
    torch.manual_seed(0)
    images = load_samples()
    patches = to_patches(images)
    mean, std = patches.mean((0, 1, 2)), patches.std((0, 1, 2))
    report: Dict[str, dict] = {}
    rows: List[torch.Tensor] = [images]
    pixels = images.shape[-1] * images.shape[-2]

    def record(name: str, recon: torch.Tensor, bits_per_patch: float, usage: Dict[str, float]):
        rows.append(recon)
        report[name] = {
            "psnr_db": round(psnr(recon, images), 2),
            "bits_per_pixel": round(bits_per_patch / (PATCH * PATCH), 3),
            "codebook_utilization": round(usage.get("utilization", float("nan")), 3),
            "perplexity": round(usage.get("perplexity", float("nan")), 1),
        }
        print(f"  {name:<34} {report[name]['psnr_db']:>6.2f} dB  {report[name]['bits_per_pixel']:>5.3f} bpp  "
              f"usage {report[name]['codebook_utilization']:.0%}")

    print(f"Quantizing {PATCH}x{PATCH} patches of {len(images)} sample photos ({pixels} pixels each):")
    vq = VectorQuantizer(1024, patches.shape[-1], ema_decay=0.9, kmeans_init=True, kmeans_iters=10,
                         dead_code_threshold=1.0)
    fit(vq, patches, steps=8)
    out = vq(patches)
    usage = CodebookUsage(1024)
    usage.update(out.indices)
    record("VQ 1024 codes (k-means + EMA)", from_patches(out.z_q), 10, usage.compute())

    rvq = ResidualVQ(4, 1024, patches.shape[-1], ema_decay=0.9, kmeans_init=True, kmeans_iters=10,
                     dead_code_threshold=1.0)
    fit(rvq, patches, steps=8)
    out_rvq = rvq(patches)
    for levels in (2, 4):
        usage = CodebookUsage(1024, num_groups=levels)
        usage.update(out_rvq.indices[..., :levels])
        recon = from_patches(rvq.decode_indices(out_rvq.indices[..., :levels]))
        record(f"Residual VQ, {levels} levels x 1024", recon, 10 * levels, usage.compute())

    dimwise = DimwiseQuantizer(bits=3, value_range=3.0, std_range=3.0)
    out_dw = dimwise((patches - mean) / std)
    usage = CodebookUsage(8, num_groups=patches.shape[-1])
    usage.update(out_dw.indices)
    record("Dimension-wise, 3 bits x 48 dims", from_patches(out_dw.z_q * std + mean), 3 * 48, usage.compute())

    perturb = LatentPerturbation(alpha=0.5, beta=1.0, delta=8)
    out_p = perturb(vq, patches, out, generator=torch.Generator().manual_seed(0))
    usage = CodebookUsage(1024)
    usage.update(out_p.indices)
    record("VQ + latent perturbation a=.5 d=8", from_patches(out_p.z_q), 10, usage.compute())
    report["VQ + latent perturbation a=.5 d=8"]["replaced_tokens"] = round(out_p.stats["perturb/replaced"], 3)

    out_dir.mkdir(parents=True, exist_ok=True)
    grid = torch.cat([torch.cat(list(row), dim=2) for row in rows], dim=1)  # 3, rows*H, N*W
    small = torch.nn.functional.interpolate(grid[None], scale_factor=0.5, mode="area")[0]
    Image.fromarray((small.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(out_dir / "quantizers.png")
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="outputs/demo", help="folder for the picture grid and report")
    args = parser.parse_args(argv)
    out_dir = Path(args.out)
    run(out_dir)
    print(f"Wrote {out_dir / 'quantizers.png'} (rows: originals, then each line above) and {out_dir / 'report.json'}.")
    print("Learned tokenizers are trained and measured with the commands below (their training takes longer")
    print("than this demo; the published weights need a download, which this offline demo does not do):")
    for line in NEXT_STEPS:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
