"""EnCodec's loss balancer (Defossez et al. 2022, section 3.4; the ``Balancer`` of AudioCraft's
``audiocraft/losses/balancer.py``): the losses computed on a model's output ``y`` contribute
gradient shares fixed by their weights, whatever their own scales.

For losses ``l_i(y)`` with weights ``w_i``, let ``g_i = d l_i / d y`` and ``n_i`` its norm (the
mean over the batch of each item's L2 norm, or the norm of the whole tensor). With ``<n_i>`` an
exponential moving average of ``n_i`` over the calls, the gradient sent into the model is

    G = sum_i  total_norm * (w_i / sum_j w_j) * g_i / (epsilon + <n_i>)

so on average a loss of weight ``w_i`` supplies the fraction ``w_i / sum_j w_j`` of a gradient of
norm ``total_norm``. The sum over ``j`` runs over the losses given in that call. With
``balance=False`` it is the plain weighted sum ``G = sum_i w_i g_i``.

How it plugs into a training engine that backpropagates one scalar: :meth:`LossBalancer.__call__`
returns ``loss`` whose value is the effective loss ``sum_i s_i l_i`` (``s_i`` the scale applied to
``g_i`` this call) and whose gradient with respect to ``y`` is ``G``:
``loss = effective + <y, G> - stopgrad(<y, G>)``. Backpropagating it (alone, or plus terms that do
not depend on ``y``, such as a quantizer's commitment loss) gives every parameter upstream of
``y`` exactly the gradient AudioCraft's ``y.backward(G)`` gives; nothing downstream of ``y`` gets a
gradient from it (the losses' own networks, e.g. a frozen discriminator, receive none).

The averages are the balancer's state (:meth:`state_dict`, checkpointed with the run). AudioCraft
keeps a bias-corrected average (its ``flashy.averager``) per process and averages the result over
processes, weighting each by its batch size; here the norms are averaged over processes first and
one average is kept, identical on every rank. Both give the same numbers when every process has the
same batch size (the average is linear in the norms), and this way the checkpoint (written by the
main process) holds what every rank uses. One update per call: with gradient accumulation, one per
micro-batch.
"""
from __future__ import annotations

from typing import Dict, Mapping, NamedTuple, Optional

import torch

from vistok.quant import distributed as D


class Balanced(NamedTuple):
    """What :class:`LossBalancer` returns: ``loss`` to backpropagate (value: ``effective``;
    gradient with respect to the output: the balanced one), ``effective`` (detached, for logging)
    and float ``stats`` (``balancer/ratio_<name>``: each loss's share of the summed average norms,
    AudioCraft's monitored ratio; ``balancer/scale_<name>``: the factor its gradient got)."""

    loss: torch.Tensor
    effective: torch.Tensor
    stats: Dict[str, float]


class LossBalancer:
    """Gradient-norm balancing of named losses with respect to one output tensor (see the module notes).

    Args:
        weights: loss name -> weight (> 0); a call may pass any subset of these names.
        total_norm: norm of the balanced gradient a loss of weight 1 of 1 would get.
        ema_decay: decay ``beta`` of the norm averages, in [0, 1]; ``avg_t = sum_s beta^(t-s) n_s /
            sum_s beta^(t-s)`` (bias-corrected; 1 is a plain mean over all calls, 0 uses this call's
            norm only). AudioCraft's config maps 0 / None to 1; here 0 means no averaging.
        per_item: norms as the mean over the batch (dim 0) of per-item L2 norms, else of the whole tensor.
        epsilon: added to the average norm before dividing.
        balance: False gives the plain weighted sum ``sum_i w_i g_i`` (no norms, no state change).
        sync: average the norms over processes (None: whenever more than one is running).
    """

    def __init__(self, weights: Mapping[str, float], total_norm: float = 1.0, ema_decay: float = 0.999,
                 per_item: bool = True, epsilon: float = 1e-12, balance: bool = True, sync: Optional[bool] = None):
        self.weights = {str(k): float(v) for k, v in weights.items()}
        bad = {k: v for k, v in self.weights.items() if not v > 0}
        if not self.weights or bad:
            raise ValueError(f"LossBalancer: needs positive weights, got {dict(weights)}")
        if not total_norm > 0:
            raise ValueError(f"LossBalancer: total_norm must be > 0, got {total_norm}")
        if not 0.0 <= ema_decay <= 1.0:
            raise ValueError(f"LossBalancer: ema_decay must be in [0, 1], got {ema_decay}")
        self.total_norm, self.ema_decay = float(total_norm), float(ema_decay)
        self.per_item, self.epsilon, self.balance, self.sync = bool(per_item), float(epsilon), bool(balance), sync
        self._sums: Dict[str, float] = {}
        self._counts: Dict[str, float] = {}

    # ----- state -----

    def state_dict(self) -> Dict[str, Dict[str, float]]:
        return {"sums": dict(self._sums), "counts": dict(self._counts)}

    def load_state_dict(self, state: Mapping[str, Mapping[str, float]]) -> None:
        self._sums = {str(k): float(v) for k, v in state["sums"].items()}
        self._counts = {str(k): float(v) for k, v in state["counts"].items()}

    def average_norms(self) -> Dict[str, float]:
        """The current average gradient norm of every loss seen so far."""
        return {k: self._sums[k] / self._counts[k] for k in self._sums}

    # ----- one call -----

    def _norm(self, grad: torch.Tensor) -> torch.Tensor:
        if self.per_item and grad.dim() > 1:
            return grad.reshape(grad.shape[0], -1).norm(dim=1).mean()
        return grad.norm()

    def _across_processes(self, norms: torch.Tensor, count: float) -> torch.Tensor:
        """Norms averaged over processes, each weighted by ``count`` (its batch size when per item)."""
        if not D.should_sync(self.sync):
            return norms
        packed = torch.cat([norms * count, norms.new_tensor([count])])
        packed = D.all_reduce_sum(packed)
        return packed[:-1] / packed[-1]

    def _update(self, names, norms) -> Dict[str, float]:
        beta = self.ema_decay
        for name, value in zip(names, norms):
            self._sums[name] = self._sums.get(name, 0.0) * beta + value
            self._counts[name] = self._counts.get(name, 0.0) * beta + 1.0
        return {name: self._sums[name] / self._counts[name] for name in names}

    def __call__(self, losses: Mapping[str, torch.Tensor], output: torch.Tensor) -> Balanced:
        """Balance ``losses`` (scalars, each a function of ``output``, none of them backpropagated
        yet; their graphs are kept) with respect to ``output``."""
        names = list(losses)
        if not names:
            raise ValueError("LossBalancer: no losses to balance")
        unknown = [n for n in names if n not in self.weights]
        if unknown:
            raise ValueError(f"LossBalancer: no weight for {unknown}; weights are given for {sorted(self.weights)}")
        grads = []
        for name in names:
            if not losses[name].requires_grad:
                raise ValueError(f"LossBalancer: loss {name!r} does not depend on the output (no gradient)")
            grad, = torch.autograd.grad(losses[name], [output], retain_graph=True)
            grads.append(grad)
        stats: Dict[str, float] = {}
        if self.balance:
            norms = torch.stack([self._norm(g).detach().float() for g in grads])
            count = float(output.shape[0]) if self.per_item and output.dim() > 1 else 1.0
            averages = self._update(names, self._across_processes(norms, count).tolist())
            total_weight = sum(self.weights[n] for n in names)
            scales = {n: self.weights[n] / total_weight * self.total_norm / (self.epsilon + averages[n]) for n in names}
            summed = sum(averages.values())
            for n in names:
                stats[f"balancer/ratio_{n}"] = averages[n] / summed if summed > 0 else 0.0
        else:
            scales = {n: self.weights[n] for n in names}
        balanced = torch.zeros_like(output)
        effective = output.new_zeros(())
        for name, grad in zip(names, grads):
            balanced.add_(grad, alpha=scales[name])
            effective = effective + scales[name] * losses[name].detach()
            stats[f"balancer/scale_{name}"] = scales[name]
        dot = (output * balanced).sum()
        return Balanced(effective + (dot - dot.detach()), effective, stats)
