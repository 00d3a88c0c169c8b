"""Turning next-token logits into ids: classifier-free guidance, its schedule, temperature,
top-k / top-p filtering, and inverse-CDF sampling from pre-drawn uniforms.

All randomness of a sampling run is drawn before the first step (one uniform per position, and
the teacher-forcing mask), so a cached and an uncached run with the same seed consume exactly the
same random numbers, and per-sample generators make a sample independent of its batch."""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Union

import torch

Generators = Union[None, torch.Generator, Sequence[torch.Generator]]


def guide(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """``uncond + scale * (cond - uncond)``; exactly ``cond`` when ``scale == 1``."""
    if scale == 1.0:
        return cond
    return uncond + scale * (cond - uncond)


def cfg_scale_at(step: int, num_steps: int, scale: float, power: Optional[float] = None) -> float:
    """The guidance scale at ``step``: constant, or with ``power`` RAR's power-cosine ramp, which
    rises from 1 at step 0 towards ``scale``: ``1 + (scale - 1) * (1 - cos(pi * (step/n)**power)) / 2``."""
    if power is None:
        return float(scale)
    ramp = (1.0 - math.cos(math.pi * (step / num_steps) ** power)) / 2.0
    return 1.0 + (scale - 1.0) * ramp


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Set to -inf every logit outside the ``top_k`` largest (0: no limit) and outside the nucleus:
    the smallest set of most likely tokens whose probability reaches ``top_p``."""
    if top_k < 0 or not 0.0 < top_p <= 1.0:
        raise ValueError(f"need top_k >= 0 and 0 < top_p <= 1, got top_k={top_k}, top_p={top_p}")
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        ordered, order = logits.sort(dim=-1, descending=True)
        probs = ordered.softmax(-1)
        before = probs.cumsum(-1) - probs  # mass of the more likely tokens
        ordered = ordered.masked_fill(before >= top_p, float("-inf"))  # the top token has before = 0
        logits = logits.scatter(-1, order, ordered)
    return logits


def sample_logits(logits: torch.Tensor, uniform: torch.Tensor, temperature: float = 1.0, top_k: int = 0,
                  top_p: float = 1.0) -> torch.Tensor:
    """One id per row of ``(B, V)`` logits, drawn by inverting the CDF at ``uniform`` ``(B,)`` in
    [0, 1). ``temperature == 0`` is greedy (argmax)."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    logits = logits.float()
    if temperature == 0:
        return logits.argmax(-1)
    probs = filter_logits(logits / temperature, top_k, top_p).softmax(-1)
    cdf = probs.cumsum(-1)
    total = cdf[:, -1:]
    # strictly below the total, so the first cdf entry above it is a token with probability > 0
    target = torch.minimum(uniform[:, None].to(cdf) * total, torch.nextafter(total, torch.zeros_like(total)))
    return torch.searchsorted(cdf, target, right=True).squeeze(-1).clamp_(max=logits.shape[-1] - 1)


def draw_uniforms(batch: int, length: int, generator: Generators,
                  device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Two ``(batch, length)`` uniform tensors on ``device``: the sampling noise, then the noise
    of the teacher-forcing mask. ``generator``: None (global RNG), one generator, or one per row
    (each row then depends only on its own generator)."""
    if generator is None or isinstance(generator, torch.Generator):
        where = generator.device if generator is not None else device
        noise = torch.rand(batch, length, generator=generator, device=where)
        keep = torch.rand(batch, length, generator=generator, device=where)
        return noise.to(device), keep.to(device)
    generators = list(generator)
    if len(generators) != batch:
        raise ValueError(f"got {len(generators)} generators for a batch of {batch}")
    rows = [torch.rand(2, length, generator=g, device=g.device).to(device) for g in generators]
    stacked = torch.stack(rows, dim=1)
    return stacked[0], stacked[1]
