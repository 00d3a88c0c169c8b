"""Rectified-flow sampling: Euler steps from noise (t = 1) to data (t = 0), with classifier-free
guidance or adaptive projected guidance (APG, Sadat et al., 2024, arXiv 2410.02416).

Conventions of the release: ``x_t = t * noise + (1 - t) * x_0``, the network predicts
``v = noise - x_0``, step ``i = T..1`` evaluates at ``t = i / T`` and updates ``x <- x - v / T``.
CFG: ``uncond + s * (cond - uncond)``. APG: the guidance difference is averaged with momentum
-0.5, its norm capped at 2.5, its component parallel to the conditional prediction removed
(eta = 0), and ``cond + (s - 1) * difference`` returned.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple, Union

import torch
import torch.nn.functional as F

Scale = Union[float, Callable[[float], float]]
# velocity(x, t, with_uncond) -> v, or (v_cond, v_uncond) when with_uncond
VelocityFn = Callable[[torch.Tensor, torch.Tensor, bool], Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]]


@dataclass
class Guidance:
    """How to combine the conditional and unconditional predictions. ``scale`` may be a function
    of t; a constant 1.0 means no guidance (and no unconditional pass)."""

    scale: Scale = 1.0
    apg: bool = False
    momentum: float = -0.5
    eta: float = 0.0
    norm_threshold: float = 2.5

    @property
    def active(self) -> bool:
        return callable(self.scale) or float(self.scale) != 1.0

    def scale_at(self, t: float) -> float:
        return float(self.scale(t)) if callable(self.scale) else float(self.scale)


def _project(v0: torch.Tensor, v1: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Parts of ``v0`` parallel and orthogonal to ``v1``, per sample over (C, H, W), in float64."""
    dims = tuple(range(1, v0.dim()))
    a, unit = v0.double(), F.normalize(v1.double(), dim=dims)
    parallel = (a * unit).sum(dim=dims, keepdim=True) * unit
    return parallel.to(v0.dtype), (a - parallel).to(v0.dtype)


class AdaptiveProjectedGuidance:
    """APG state for one sampling run (the momentum average is per sample)."""

    def __init__(self, guidance: Guidance):
        self.g = guidance
        self.average: Optional[torch.Tensor] = None

    def __call__(self, cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
        diff = cond - uncond
        self.average = diff if self.average is None else diff + self.g.momentum * self.average
        diff = self.average
        if self.g.norm_threshold > 0:
            norm = diff.norm(p=2, dim=tuple(range(1, diff.dim())), keepdim=True)
            diff = diff * torch.minimum(torch.ones_like(diff), self.g.norm_threshold / norm)
        parallel, orthogonal = _project(diff, cond)
        return cond + (scale - 1) * (orthogonal + self.g.eta * parallel)


@torch.no_grad()
def euler_sample(velocity: VelocityFn, noise: torch.Tensor, steps: int, guidance: Guidance) -> torch.Tensor:
    """Integrate from ``noise`` at t = 1 to t = 0 in ``steps`` Euler steps; returns fp32 latents."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    x = noise.float()
    apg = AdaptiveProjectedGuidance(guidance) if guidance.apg else None
    dt = 1.0 / steps
    for i in range(steps, 0, -1):
        t = i / steps
        t_batch = torch.full((x.shape[0],), t, dtype=torch.float32, device=x.device)
        if guidance.active:
            cond, uncond = velocity(x, t_batch, True)
            cond, uncond = cond.float(), uncond.float()
            scale = guidance.scale_at(t)
            v = apg(cond, uncond, scale) if apg is not None else uncond + scale * (cond - uncond)
        else:
            v = velocity(x, t_batch, False).float()
        x = x - dt * v
    return x
