"""Periodic evaluation during training: reconstruction quality and codebook use on held-out batches."""
from __future__ import annotations

from typing import Dict, Iterable, Tuple

import torch
from torch import nn

from vistok.models.base import Tokenizer
from vistok.quant.stats import CodebookUsage


@torch.no_grad()
def evaluate_reconstruction(model: nn.Module, batches: Iterable[torch.Tensor], device: torch.device,
                            autocast) -> Tuple[Dict[str, float], torch.Tensor]:
    """PSNR / SSIM (images) and codebook use over ``batches``; returns the numbers and a grid
    (originals above reconstructions) of the first batch for images, or an empty tensor."""
    from vistok.metrics.image_quality import psnr, ssim

    was_training = model.training
    model.eval()
    scores: Dict[str, list] = {"psnr": [], "ssim": []}
    usage = None
    grid = torch.empty(0)
    for i, x in enumerate(batches):
        x = x.to(device)
        with autocast():
            out = model(x)
        recon = out.recon.float().clamp(0, 1)
        if x.dim() == 4:
            scores["psnr"].append(psnr(recon, x))
            scores["ssim"].append(ssim(recon, x))
            if i == 0:
                import torchvision

                grid = torchvision.utils.make_grid(torch.cat([x[:8], recon[:8]]).cpu(), nrow=min(8, len(x)))
        if out.indices is not None:
            size = model.codebook_size if isinstance(model, Tokenizer) else model.config.codebook_size
            if size:
                if usage is None:
                    usage = CodebookUsage(size).to(device)
                usage.update(out.indices[out.indices >= 0])
    model.train(was_training)
    results = {f"val/{k}": torch.cat(v).mean().item() for k, v in scores.items() if v}
    if usage is not None:
        stats = usage.compute(sync=False)
        results.update({f"val/codebook_{k}": float(v) for k, v in stats.items() if isinstance(v, (int, float))})
    return results, grid
