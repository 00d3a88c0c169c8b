"""Inference precision: what ``--precision`` asks for (the CUDA autocast dtype) and what runs;
off CUDA everything runs fp32, and the protocol records that."""
from __future__ import annotations

import contextlib

PRECISIONS = ("bf16", "fp16", "fp32")


def precision_used(device, precision: str) -> str:
    """What a model actually runs in: the autocast dtype on CUDA, fp32 elsewhere."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision if str(device).startswith("cuda") else "fp32"


def cuda_autocast(device, precision: str):
    """A CUDA autocast context in ``precision`` on a CUDA device; a no-op elsewhere or for fp32."""
    used = precision_used(device, precision)
    if used == "fp32":
        return contextlib.nullcontext()
    import torch

    return torch.autocast("cuda", dtype=torch.bfloat16 if used == "bf16" else torch.float16)
