"""Codebook usage from exact counts (never from EMA buffers), synchronised across ranks."""
from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import nn

from vistok.quant import distributed as D

MAX_COUNTS = 1 << 28


class CodebookUsage(nn.Module):
    """Accumulates an exact histogram of token ids over an evaluation set.

    Args:
        codebook_size: codes per group.
        num_groups: codes emitted per vector (residual-VQ levels, dimension-wise channels); indices
            then have a trailing dim of this size and statistics are reported per group.

    ``update(indices)`` ignores negative ids (dropped residual levels). ``compute()`` sums the
    histograms of all ranks and returns utilization (fraction of codes used at least once),
    perplexity, normalized perplexity (perplexity / K), code entropy in bits, dead codes and the
    token count; with several groups every key is prefixed ``group{i}/`` and the means over groups
    are reported without prefix.
    """

    def __init__(self, codebook_size: int, num_groups: int = 1):
        super().__init__()
        if codebook_size * num_groups > MAX_COUNTS:
            raise ValueError(f"codebook of {codebook_size} x {num_groups} groups is too large for exact counts")
        self.codebook_size = codebook_size
        self.num_groups = num_groups
        self.register_buffer("counts", torch.zeros(num_groups, codebook_size, dtype=torch.long), persistent=False)

    def reset(self) -> None:
        self.counts.zero_()

    @torch.no_grad()
    def update(self, indices: torch.Tensor) -> None:
        idx = indices.to(self.counts.device).long()
        if self.num_groups == 1:
            idx = idx.reshape(-1, 1)
        elif idx.shape[-1] != self.num_groups:
            raise ValueError(f"expected a trailing dim of {self.num_groups} groups, got shape {tuple(indices.shape)}")
        idx = idx.reshape(-1, self.num_groups)
        if idx.numel() and int(idx.max()) >= self.codebook_size:
            raise ValueError(f"index {int(idx.max())} out of range for codebook_size {self.codebook_size}")
        for g in range(self.num_groups):
            col = idx[:, g]
            col = col[col >= 0]
            self.counts[g] += torch.bincount(col, minlength=self.codebook_size)

    def compute(self, sync: Optional[bool] = None) -> Dict[str, float]:
        counts = D.all_reduce_sum(self.counts, enabled=D.should_sync(sync)).double()
        per_group = [_summary(counts[g]) for g in range(self.num_groups)]
        if self.num_groups == 1:
            return per_group[0]
        out: Dict[str, float] = {}
        for g, summary in enumerate(per_group):
            out.update({f"group{g}/{k}": v for k, v in summary.items()})
        for key in per_group[0]:
            out[key] = sum(s[key] for s in per_group) / self.num_groups
        return out


def _summary(counts: torch.Tensor) -> Dict[str, float]:
    total = counts.sum()
    k = counts.numel()
    used = int((counts > 0).sum())
    if total == 0:
        return {"utilization": 0.0, "perplexity": 0.0, "normalized_perplexity": 0.0,
                "entropy_bits": 0.0, "dead_codes": float(k), "tokens": 0.0}
    p = counts[counts > 0] / total
    entropy = float(-(p * p.log()).sum())
    perplexity = float(torch.exp(torch.tensor(entropy, dtype=torch.float64)))
    return {
        "utilization": used / k,
        "perplexity": perplexity,
        "normalized_perplexity": perplexity / k,
        "entropy_bits": entropy / float(torch.log(torch.tensor(2.0, dtype=torch.float64))),
        "dead_codes": float(k - used),
        "tokens": float(total),
    }
