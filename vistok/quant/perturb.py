"""Latent perturbation (RobusTok, "Robust Latent Matters", Qiu et al. 2025).

During tokenizer training some quantized tokens are swapped for nearby codes before the decoder,
simulating the sampling errors of a generator so the decoder learns to tolerate them. The same
operation, applied to every image at evaluation time, defines pFID.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Union

import torch
from torch import nn

from vistok.quant.base import Quantizer, QuantOut

Schedule = Callable[[float], float]


def constant_schedule() -> Schedule:
    return lambda progress: 1.0


def robustok_schedule(anneal_start: float = 40, anneal_end: float = 120, final_ratio: float = 0.5) -> Schedule:
    """The RobusTok main-training annealing (applied per epoch): full strength until
    ``anneal_start``, then linear down to ``final_ratio`` at ``anneal_end``, constant after."""
    if anneal_end <= anneal_start:
        raise ValueError("anneal_end must be after anneal_start")

    def ratio(progress: float) -> float:
        if progress < anneal_start:
            return 1.0
        if progress > anneal_end:
            return final_ratio
        frac = (progress - anneal_start) / (anneal_end - anneal_start)
        return 1.0 - frac * (1.0 - final_ratio)

    return ratio


SCHEDULES = {"constant": constant_schedule, "robustok": robustok_schedule}


def make_schedule(spec: Union[None, str, dict, Schedule]) -> Schedule:
    """``None``/name/``{"name": ..., **kwargs}``/callable -> progress -> ratio."""
    if spec is None:
        return constant_schedule()
    if callable(spec):
        return spec
    if isinstance(spec, str):
        spec = {"name": spec}
    spec = dict(spec)
    name = spec.pop("name", None)
    if name not in SCHEDULES:
        raise ValueError(f"unknown perturbation schedule {name!r}; known: {sorted(SCHEDULES)}")
    return SCHEDULES[name](**spec)


class LatentPerturbation(nn.Module):
    """Replaces quantized tokens by codes drawn from their ``delta`` nearest neighbours.

    Args:
        alpha: per-token probability of drawing a replacement rank uniformly from
            ``0..delta-1`` (rank 0 is the token's own code, so the expected fraction of tokens
            that change is ``alpha * (delta - 1) / delta``).
        beta: fraction of the batch (``floor(B * beta)`` samples) that is perturbed.
        delta: size of the neighbour set.
        schedule: annealing of alpha and delta over training progress (``"robustok"``, a dict
            with its arguments, or a callable); advance it with :meth:`set_progress`.
        batch_selection: ``"random"`` samples, or ``"first"`` samples of the batch as the
            reference code does (for exact reproduction).

    Call it after the quantizer, with the quantizer, its channels-last input and its output:
    the quantizer loss is left untouched, so only reconstruction-side losses see the perturbed
    latent. Gradients reach the encoder through the quantizer's own estimator.
    Works with every quantizer that implements ``nearby_indices`` (VQ, each residual-VQ level,
    FSQ, LFQ/BSQ, dimension-wise).
    """

    def __init__(
        self,
        alpha: float,
        beta: float,
        delta: int,
        schedule: Union[None, str, dict, Schedule] = None,
        batch_selection: str = "random",
    ):
        super().__init__()
        if not 0.0 <= alpha <= 1.0 or not 0.0 <= beta <= 1.0:
            raise ValueError(f"alpha and beta must be in [0, 1], got alpha={alpha}, beta={beta}")
        if int(delta) < 1:
            raise ValueError(f"delta must be >= 1, got {delta}")
        if batch_selection not in ("random", "first"):
            raise ValueError(f"batch_selection must be 'random' or 'first', got {batch_selection!r}")
        self.alpha, self.beta, self.delta = float(alpha), float(beta), int(delta)
        self.schedule = make_schedule(schedule)
        self.batch_selection = batch_selection
        self.current_alpha, self.current_delta = self.alpha, self.delta

    def set_progress(self, progress: float) -> None:
        """Move the schedule to ``progress`` (an epoch for the RobusTok schedule)."""
        ratio = self.schedule(progress)
        self.current_alpha = ratio * self.alpha
        self.current_delta = max(1, int(ratio * self.delta))

    @property
    def expected_replacement_rate(self) -> float:
        d = self.current_delta
        return self.current_alpha * (d - 1) / d

    def _selected(self, batch: int, device: torch.device, generator: Optional[torch.Generator]) -> torch.Tensor:
        count = math.floor(batch * self.beta + 1e-9)
        if self.batch_selection == "first":
            return torch.arange(count, device=device)
        perm = torch.randperm(batch, generator=generator, device=_rng_device(generator, device))
        return perm[:count].to(device)

    def forward(
        self, quantizer: Quantizer, z: torch.Tensor, out: QuantOut, generator: Optional[torch.Generator] = None
    ) -> QuantOut:
        alpha, delta = self.current_alpha, self.current_delta
        if alpha == 0.0 or self.beta == 0.0 or delta <= 1:
            return out
        selected = self._selected(z.shape[0], z.device, generator)
        if selected.numel() == 0:
            return out
        clean = out.indices[selected]
        candidates = quantizer.nearby_indices(z[selected], clean, delta)
        rng_device = _rng_device(generator, z.device)
        hit = torch.rand(clean.shape, generator=generator, device=rng_device) < alpha
        rank = torch.randint(0, delta, clean.shape, generator=generator, device=rng_device)
        rank = torch.where(hit, rank, torch.zeros_like(rank)).to(z.device)
        new = torch.gather(candidates, -1, rank.unsqueeze(-1)).squeeze(-1)
        clean_zq = out.z_q[selected]
        codes = quantizer.decode_indices(new).to(clean_zq.dtype)
        perturbed = clean_zq + (codes - clean_zq).detach()  # the clean path's gradient, new value
        z_q = out.z_q.index_put((selected,), perturbed)
        indices = out.indices.index_put((selected,), new)
        valid = clean >= 0
        replaced = ((new != clean) & valid).sum().float() / valid.sum().clamp_min(1)
        stats = out.stats.merged({
            "perturb/replaced": replaced,
            "perturb/expected": self.expected_replacement_rate,
            "perturb/alpha": alpha,
            "perturb/delta": float(delta),
            "perturb/batch_fraction": selected.numel() / z.shape[0],
        })
        return QuantOut(z_q, indices, out.loss, stats)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, delta={self.delta}, batch_selection={self.batch_selection!r}"


def _rng_device(generator: Optional[torch.Generator], fallback: torch.device) -> torch.device:
    return generator.device if generator is not None else fallback
