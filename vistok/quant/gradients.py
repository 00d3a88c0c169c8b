"""Gradient estimators that pass the decoder's gradient through the non-differentiable lookup."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def straight_through(z: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Value ``q``, gradient identity to ``z`` (van den Oord et al., 2017)."""
    return z + (q - z).detach()


def rotation_trick(z: torch.Tensor, q: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Value ``q``, gradient through the rotation + rescaling that maps ``z`` onto ``q``
    (Fifty et al., 2024, "Restructuring Vector Quantization with the Rotation Trick").

    With u = z/|z|, v = q/|q|, w = (u+v)/|u+v| and lam = |q|/|z| (all treated as constants),
    R z = z - 2 w (w.z) + 2 v (u.z) maps u to v; the output is lam * R z, evaluated with a
    Householder-style expression so no d x d matrix is formed.
    """
    z_norm = z.norm(dim=-1, keepdim=True).clamp_min(eps)
    q_norm = q.norm(dim=-1, keepdim=True).clamp_min(eps)
    u = (z / z_norm).detach()
    v = (q / q_norm).detach()
    w = F.normalize(u + v, dim=-1, eps=eps).detach()
    lam = (q_norm / z_norm).detach()
    rotated = z - 2 * w * (w * z).sum(-1, keepdim=True) + 2 * v * (u * z).sum(-1, keepdim=True)
    out = lam * rotated
    # Return exactly q in the forward pass (the expression above equals q up to rounding).
    return out + (q - out).detach()


ESTIMATORS = {"ste": straight_through, "rotation": rotation_trick}


def get_estimator(name: str):
    try:
        return ESTIMATORS[name]
    except KeyError:
        raise ValueError(f"gradient={name!r} is not one of {sorted(ESTIMATORS)}") from None
