"""Official LlamaGen VQ checkpoints (``vq_ds16_c2i.pt``, ``vq_ds8_c2i.pt``, ``vq_ds16_t2i.pt``: torch.save
files holding ``{"model": state_dict, ...}``) -> :class:`vistok.models.llamagen.LlamaGenVQ`.

The modules keep the release's names, so only the quantizer changes: the codebook
``quantize.embedding.weight`` becomes ``quantize.embed``; ``quantize.codebook_used`` (a 65536-entry
ring buffer of recently used ids, a training-log statistic that no output depends on) is dropped;
the usage statistics tokzoo's quantizer keeps, which the release lacks, are filled in.
``tokzoo``'s checkpoint reader unwraps the ``"model"`` entry (the one the authors' sampling
scripts load); a whole checkpoint dict passed here is unwrapped the same way.
"""
from __future__ import annotations

from typing import Dict, Mapping

import torch

from vistok.models.llamagen.config import LlamaGenVQConfig
from vistok.models.llamagen.model import LlamaGenVQ
from vistok.models.state_dict import load_strict

DROPPED = ("quantize.codebook_used",)


def convert_llamagen_state_dict(official: Mapping[str, torch.Tensor],
                                config: LlamaGenVQConfig) -> Dict[str, torch.Tensor]:
    """Official LlamaGen VQ state dict (or a checkpoint dict with a ``"model"`` entry) -> tokzoo's
    state dict; unknown keys pass through unchanged so that strict loading names them."""
    if isinstance(official.get("model"), Mapping):
        official = official["model"]
    out = {("quantize.embed" if key == "quantize.embedding.weight" else key): value
           for key, value in official.items() if key not in DROPPED}
    out.setdefault("quantize.cluster_size", torch.ones(config.codebook_size))
    out.setdefault("quantize.initted", torch.tensor([True]))
    return out


def load_llamagen_state_dict(model: LlamaGenVQ, official: Mapping[str, torch.Tensor],
                             source: str = "checkpoint") -> LlamaGenVQ:
    """Convert and load strictly; mismatches raise an error naming the keys (and ``source``)."""
    load_strict(model, convert_llamagen_state_dict(official, model.config), source)
    return model
