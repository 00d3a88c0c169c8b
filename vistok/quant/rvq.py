"""Residual vector quantization (SoundStream / EnCodec) with quantizer dropout."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from vistok.quant import distributed as D
from vistok.quant.base import Quantizer, QuantOut, Stats, check_last_dim, fp32_region
from vistok.quant.gradients import get_estimator
from vistok.quant.vq import VectorQuantizer

DROPPED = -1  # index of a level that quantizer dropout switched off


class ResidualVQ(Quantizer):
    """A stack of vector quantizers, each quantizing what the previous ones left over.

    Args:
        num_quantizers: number of levels Q.
        codebook_size, dim: per level.
        shared_codebook: one codebook for all levels (RQ-VAE) instead of one per level.
        dropout: quantizer dropout for bitrate scalability: during training a cut-off
            ``n ~ U{dropout_min_levels..Q}`` is drawn per forward (the same on all ranks) and
            levels from ``n`` on are skipped; their indices are ``-1``.
        dropout_prob: probability that a training forward applies dropout at all.
        gradient: estimator applied to the sum of all levels (``"ste"`` or ``"rotation"``), so
            the encoder sees an identity-scaled gradient whatever Q is.
        **vq_kwargs: passed to every level's :class:`VectorQuantizer` (``ema_decay``,
            ``kmeans_init``, ``dead_code_threshold``, ``l2_norm``, ``commitment``, ``sync``, ...).

    Indices have shape ``(..., Q)``; ``decode_indices`` accepts the first ``k <= Q`` levels.
    """

    def __init__(
        self,
        num_quantizers: int,
        codebook_size: int,
        dim: int,
        *,
        shared_codebook: bool = False,
        dropout: bool = False,
        dropout_min_levels: int = 1,
        dropout_prob: float = 1.0,
        gradient: str = "ste",
        **vq_kwargs,
    ):
        super().__init__()
        if num_quantizers < 1:
            raise ValueError(f"num_quantizers must be >= 1, got {num_quantizers}")
        if not 1 <= dropout_min_levels <= num_quantizers:
            raise ValueError(f"dropout_min_levels must be in 1..{num_quantizers}, got {dropout_min_levels}")
        self.num_quantizers = num_quantizers
        self.codebook_size = codebook_size
        self.dim = dim
        self.shared_codebook = shared_codebook
        self.dropout = dropout
        self.dropout_min_levels = dropout_min_levels
        self.dropout_prob = dropout_prob
        self._estimator = get_estimator(gradient)
        self.sync = vq_kwargs.get("sync")
        count = 1 if shared_codebook else num_quantizers
        self.quantizers = nn.ModuleList(
            VectorQuantizer(codebook_size, dim, **vq_kwargs) for _ in range(count)
        )

    def level(self, i: int) -> VectorQuantizer:
        return self.quantizers[0 if self.shared_codebook else i]

    def _active_levels(self, device: torch.device) -> int:
        """How many levels this forward uses (drawn on rank 0, broadcast to all ranks)."""
        if not (self.training and self.dropout):
            return self.num_quantizers
        draw = torch.empty(2, device=device)
        draw[0] = torch.rand(())
        draw[1] = torch.randint(self.dropout_min_levels, self.num_quantizers + 1, ()).float()
        draw = D.broadcast(draw, enabled=D.should_sync(self.sync))
        return int(draw[1]) if float(draw[0]) < self.dropout_prob else self.num_quantizers

    def forward(self, z: torch.Tensor, num_levels: Optional[int] = None) -> QuantOut:
        """Quantize with all levels (or the first ``num_levels``, e.g. for a lower bitrate)."""
        check_last_dim(z, self.dim, type(self).__name__)
        active = self._active_levels(z.device) if num_levels is None else num_levels
        if not 1 <= active <= self.num_quantizers:
            raise ValueError(f"num_levels must be in 1..{self.num_quantizers}, got {active}")
        with fp32_region(z.device):
            x = z.float()
            residual = x
            total = torch.zeros_like(x)
            loss = x.new_zeros(())
            stats = Stats()
            level_indices = []
            for i in range(active):
                # Each level's losses reach the encoder through its residual input; the
                # reconstruction gradient goes through the estimator on the sum below.
                out = self.level(i)(residual)
                q = out.z_q.detach().float()
                total = total + q
                residual = residual - q
                loss = loss + out.loss
                level_indices.append(out.indices)
                stats = stats.merged(out.stats, prefix=f"level{i}/")
            for _ in range(active, self.num_quantizers):
                level_indices.append(torch.full_like(level_indices[0], DROPPED))
            z_q = self._estimator(x, total)
        stats = stats.merged({"active_levels": float(active)})
        return QuantOut(z_q.to(z.dtype), torch.stack(level_indices, dim=-1), loss, stats)

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Sum of the code vectors of the given levels: ``(..., k)`` -> ``(..., d)``, k <= Q.
        Entries equal to -1 (dropped levels) contribute nothing."""
        k = indices.shape[-1]
        if k > self.num_quantizers:
            raise ValueError(f"got {k} levels of indices, this ResidualVQ has {self.num_quantizers}")
        with fp32_region(indices.device):
            total = None
            for i in range(k):
                idx = indices[..., i]
                keep = idx != DROPPED
                vec = self.level(i).decode_indices(idx.clamp_min(0)) * keep.unsqueeze(-1)
                total = vec if total is None else total + vec
        return total

    def nearby_indices(self, z: torch.Tensor, indices: torch.Tensor, k: int) -> torch.Tensor:
        """Per level: the ``k`` codes nearest to that level's residual -> ``(..., Q, k)``."""
        with fp32_region(z.device), torch.no_grad():
            residual = z.float()
            out = []
            for i in range(indices.shape[-1]):
                idx = indices[..., i]
                cand = self.level(i).nearby_indices(residual, idx, k)
                cand = torch.where((idx == DROPPED).unsqueeze(-1), torch.full_like(cand, DROPPED), cand)
                out.append(cand)
                residual = residual - self.level(i).decode_indices(idx.clamp_min(0)) * (idx != DROPPED).unsqueeze(-1)
        return torch.stack(out, dim=-2)

    def extra_repr(self) -> str:
        return (
            f"num_quantizers={self.num_quantizers}, codebook_size={self.codebook_size}, dim={self.dim}, "
            f"shared_codebook={self.shared_codebook}, dropout={self.dropout}"
        )
