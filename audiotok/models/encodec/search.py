"""The nearest-code search of the official EnCodec, whose fp32 rounding the released codes depend on."""
from __future__ import annotations

import torch

from vistok.quant.search import DEFAULT_MAX_ELEMENTS


def nearest_code_as_official(x: torch.Tensor, codebook: torch.Tensor,
                             max_elements: int = DEFAULT_MAX_ELEMENTS) -> torch.Tensor:
    """Nearest code per row of ``x`` ``(N, d)``, computed as the official EnCodec code does in fp32:
    the largest ``-(|x|^2 - 2 x.e + |e|^2)``. Keeping ``|x|^2`` (mathematically irrelevant) fixes
    the rounding: near-ties, common deep in the residual levels, then resolve to the official codes.
    Rows are processed in chunks of at most ``max_elements`` distances."""
    codes_t = codebook.t()
    code_sq = codes_t.pow(2).sum(0, keepdim=True)
    rows = max(1, max_elements // max(1, codebook.shape[0]))
    out = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    for start in range(0, x.shape[0], rows):
        part = x[start: start + rows]
        score = -(part.pow(2).sum(1, keepdim=True) - 2 * part @ codes_t + code_sq)
        out[start: start + rows] = score.max(dim=-1).indices
    return out
