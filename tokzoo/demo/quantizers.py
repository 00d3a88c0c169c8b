"""The demo's quantizer section: each shared quantizer tokenizes 4x4-pixel patches of real photos.

The patches of the bundled photos are split like a checkerboard: codebooks (and the PCA basis the
scalar and binary quantizers work in) are fitted on the "white" patches and every number is
measured on the "black" ones, so nothing is scored on the data it was fitted to. Rate is bits per
pixel; quality is PSNR over the held-out patches; codebook use is counted exactly on their tokens.
The picture shows whole photos (both halves of the checkerboard) rebuilt from quantized patches.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import torch

from vistok.quant import (BSQ, FSQ, LFQ, CodebookUsage, DimwiseQuantizer, LatentPerturbation, ResidualVQ,
                          VectorQuantizer)

PATCH = 4
PCA_DIMS = 12
HALF_NORMAL_MEAN = math.sqrt(2 / math.pi)  # E|z| for z ~ N(0, 1): the best scale for sign codes of whitened data

PROTOCOL = {
    "data": "the 4 bundled photos (vistok/assets/samples, 256x256, val-split sources of the corpus)",
    "fit": "codebooks, k-means and the PCA basis fitted on the 4x4 patches at (row + column) even",
    "measured": "the held-out patches at (row + column) odd: PSNR over their pixels, exact codebook counts",
    "rate": "bits per pixel = bits per token / 16 pixels per patch",
    "seed": 0,
}


def to_patches(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1] -> (N * H/p * W/p, 3*p*p) in [-1, 1]."""
    n, c, h, w = x.shape
    p = x.unfold(2, PATCH, PATCH).unfold(3, PATCH, PATCH)  # N, C, H/p, W/p, p, p
    return p.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * PATCH * PATCH) * 2 - 1


def checkerboard(n: int, h: int, w: int) -> torch.Tensor:
    """True for the held-out patches (row + column odd), in ``to_patches`` order."""
    rows = torch.arange(h // PATCH)[:, None]
    cols = torch.arange(w // PATCH)[None, :]
    return ((rows + cols) % 2 == 1).expand(n, -1, -1).reshape(-1)


def from_patches(p: torch.Tensor, n: int, h: int, w: int) -> torch.Tensor:
    x = p.reshape(n, h // PATCH, w // PATCH, 3, PATCH, PATCH).permute(0, 3, 1, 4, 2, 5)
    return ((x.reshape(n, 3, h, w) + 1) / 2).clamp(0, 1)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / max((a - b).pow(2).mean().item(), 1e-12))


@dataclass
class PCA:
    """Whitening basis of the training patches: ``encode`` gives unit-variance coefficients."""

    mean: torch.Tensor
    basis: torch.Tensor  # (dims, 48)
    scale: torch.Tensor  # (dims,)

    @classmethod
    def fit(cls, patches: torch.Tensor, dims: int) -> "PCA":
        mean = patches.mean(0)
        _, s, v = torch.linalg.svd(patches - mean, full_matrices=False)
        return cls(mean, v[:dims], s[:dims] / math.sqrt(len(patches) - 1))

    def encode(self, patches: torch.Tensor) -> torch.Tensor:
        return (patches - self.mean) @ self.basis.T / self.scale

    def decode(self, coeffs: torch.Tensor) -> torch.Tensor:
        return (coeffs * self.scale) @ self.basis + self.mean


def _fit_codebook(quantizer: torch.nn.Module, patches: torch.Tensor, steps: int = 8) -> None:
    """k-means init on the first batch, then EMA steps (VQ family)."""
    quantizer.train()
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        quantizer(patches[torch.randperm(patches.shape[0], generator=gen)[:8192]])
    quantizer.eval()


def _vq(codes: int = 1024):
    return VectorQuantizer(codes, 3 * PATCH * PATCH, ema_decay=0.9, kmeans_init=True, kmeans_iters=10,
                           dead_code_threshold=1.0)


def run(images: torch.Tensor) -> Tuple[Dict[str, dict], torch.Tensor]:
    """-> per-quantizer numbers, and a picture grid (rows: the originals, then each quantizer)."""
    torch.manual_seed(0)
    n, _, h, w = images.shape
    every = to_patches(images)
    held_out = checkerboard(n, h, w)
    train, test = every[~held_out], every
    pca = PCA.fit(train, PCA_DIMS)
    report: Dict[str, dict] = {}
    rows: List[torch.Tensor] = [images]
    truth = (every[held_out] + 1) / 2

    def record(name: str, patches: torch.Tensor, indices: torch.Tensor, bits: float, usage: CodebookUsage,
               **extra) -> None:
        usage.update(indices[held_out])
        stats = usage.compute(sync=False)
        rows.append(from_patches(patches, n, h, w))
        scored = ((patches[held_out] + 1) / 2).clamp(0, 1)
        report[name] = {"psnr_db": round(psnr(scored, truth), 2), "bits_per_pixel": round(bits / PATCH**2, 3),
                        "codebook_utilization": round(stats.get("utilization", float("nan")), 3),
                        "perplexity": round(stats.get("perplexity", float("nan")), 1), **extra}

    with torch.no_grad():
        vq = _vq()
        _fit_codebook(vq, train)
        out = vq(test)
        record("VQ, 1024 codes (k-means + EMA)", out.z_q, out.indices, 10, CodebookUsage(1024))

        rvq = ResidualVQ(4, 1024, 3 * PATCH * PATCH, ema_decay=0.9, kmeans_init=True, kmeans_iters=10,
                         dead_code_threshold=1.0)
        _fit_codebook(rvq, train)
        ids = rvq(test).indices
        for levels in (2, 4):
            record(f"Residual VQ, {levels} levels x 1024", rvq.decode_indices(ids[..., :levels]), ids[..., :levels],
                   10 * levels, CodebookUsage(1024, num_groups=levels))

        coeffs = pca.encode(test)
        fsq = FSQ([8, 8, 8, 5, 5, 5]).eval()
        out = fsq(coeffs[:, :6] / 2)  # FSQ bounds with tanh: /2 keeps most whitened values off the saturation
        record("FSQ 8-8-8-5-5-5 on 6 PCA coefficients", pca.decode(_pad(_fsq_values(fsq, out.z_q) * 2)),
               out.indices, math.log2(fsq.codebook_size), CodebookUsage(fsq.codebook_size))

        for name, quantizer in (("LFQ", LFQ(PCA_DIMS)), ("BSQ", BSQ(PCA_DIMS))):
            out = quantizer.eval()(coeffs)
            signs = torch.sign(out.z_q)
            record(f"{name}, {PCA_DIMS} bits on {PCA_DIMS} PCA coefficients", pca.decode(signs * HALF_NORMAL_MEAN),
                   out.indices, PCA_DIMS, CodebookUsage(2**PCA_DIMS))

        mean, std = train.mean(0), train.std(0)
        dimwise = DimwiseQuantizer(bits=3, value_range=3.0, std_range=3.0)
        out = dimwise((test - mean) / std)
        record("Dimension-wise, 3 bits x 48 dims", out.z_q * std + mean, out.indices, 3 * 48,
               CodebookUsage(8, num_groups=test.shape[-1]))

        clean = vq(test)
        perturbed = LatentPerturbation(alpha=0.5, beta=1.0, delta=8)(vq, test, clean,
                                                                     generator=torch.Generator().manual_seed(0))
        record("VQ + latent perturbation a=.5 d=8", perturbed.z_q, perturbed.indices, 10, CodebookUsage(1024),
               replaced_tokens=round(float(perturbed.indices[held_out].ne(clean.indices[held_out]).float().mean()), 3))
    grid = torch.cat([torch.cat(list(row), dim=2) for row in rows], dim=1)  # 3, rows*H, n*W
    return report, grid


def _fsq_values(fsq: FSQ, z_q: torch.Tensor) -> torch.Tensor:
    """FSQ codes are in [-1, 1]; undo the bound's scale so they live in the input's units."""
    return torch.atanh(z_q.clamp(-0.999, 0.999))


def _pad(coeffs: torch.Tensor) -> torch.Tensor:
    """Coefficients of the first few PCA directions, zeros for the rest."""
    return torch.nn.functional.pad(coeffs, (0, PCA_DIMS - coeffs.shape[-1]))


def printed(report: Dict[str, dict], emit: Callable[[str], None] = print) -> None:
    for name, row in report.items():
        emit(f"  {name:<42} {row['psnr_db']:>6.2f} dB  {row['bits_per_pixel']:>5.3f} bpp  "
             f"usage {row['codebook_utilization']:.0%}")
