"""Official MaskGIT-VQGAN checkpoints (``maskgit-vqgan-imagenet-f16-256.bin``, as released with
bytedance/1d-tokenizer) -> :class:`vistok.models.maskgit_vqgan.MaskGITVQGAN`.

``encoder.*`` and ``decoder.*`` keep their names (the modules share the official layout); the
codebook ``quantize.embedding.weight`` becomes ``quantize.embed``, and the quantizer's usage
statistics, which the official file lacks, are filled in (all codes used once, initialised).
"""
from __future__ import annotations

from typing import Dict, Mapping

import torch

from vistok.models.state_dict import load_strict
from vistok.models.maskgit_vqgan import MaskGITVQGAN, MaskGITVQGANConfig


def convert_maskgit_state_dict(official: Mapping[str, torch.Tensor],
                               config: MaskGITVQGANConfig) -> Dict[str, torch.Tensor]:
    """Official MaskGIT-VQGAN state dict -> tokzoo state dict (unknown keys pass through
    unchanged, so :func:`load_maskgit_state_dict` can name them)."""
    out = {("quantize.embed" if key == "quantize.embedding.weight" else key): value
           for key, value in official.items()}
    out.setdefault("quantize.cluster_size", torch.ones(config.codebook_size))
    out.setdefault("quantize.initted", torch.tensor([True]))
    return out


def load_maskgit_state_dict(model: MaskGITVQGAN, official: Mapping[str, torch.Tensor],
                            source: str = "checkpoint") -> MaskGITVQGAN:
    """Convert and load strictly; mismatches raise an error naming the keys."""
    load_strict(model, convert_maskgit_state_dict(official, model.config), source)
    return model
