"""Vector quantization with a learnable or EMA codebook."""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from vistok.quant import distributed as D
from vistok.quant.base import Quantizer, QuantOut, Stats, check_last_dim, fp32_region
from vistok.quant.gradients import get_estimator
from vistok.quant.kmeans import kmeans, sample_rows
from vistok.quant.search import DEFAULT_MAX_ELEMENTS, nearest_code, nearest_codes_topk


def perplexity_from_counts(counts: torch.Tensor) -> torch.Tensor:
    """exp(entropy) of the empirical code distribution; 1 for one code, K for uniform use."""
    p = counts.float() / counts.sum().clamp_min(1)
    return torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())


class VectorQuantizer(Quantizer):
    """Nearest-neighbour vector quantizer (VQ-VAE) for image and audio tokenizers alike.

    Args:
        codebook_size: number of codes K.
        dim: code dimension d; input is channels-last ``(..., d)``.
        l2_norm: normalise inputs and codes before the search (cosine VQ, as in TiTok /
            ViT-VQGAN); outputs are then unit vectors.
        ema_decay: ``None`` trains the codebook by gradient (codebook loss
            ``|sg(z) - e|^2``); a float in (0, 1) updates it as an exponential moving average of
            assigned vectors with Laplace smoothing (EnCodec / WavTokenizer style) instead.
        kmeans_init: initialise the codebook by k-means on the first training batch
            (``kmeans_iters`` iterations).
        dead_code_threshold: codes whose running usage falls below this count are replaced by
            vectors of the current batch (0 disables).
        commitment: weight of the commitment loss ``|z - sg(e)|^2``.
        gradient: ``"ste"`` (straight-through) or ``"rotation"`` (rotation trick).
        usage_decay: decay of the running usage count used for dead-code detection with a
            learnable codebook (the EMA codebook uses ``ema_decay``).
        sync: synchronise EMA statistics, k-means and dead-code replacement over
            ``torch.distributed`` ranks; ``None`` = whenever running distributed.
        max_search_elements: bound on the distance matrix chunk of the nearest-code search.

    Buffers ``embed`` (K, d), ``cluster_size`` (K), ``embed_avg`` (K, d, EMA only) and
    ``initted`` hold the state; with a learnable codebook ``embed`` is a parameter.
    """

    def __init__(
        self,
        codebook_size: int,
        dim: int,
        *,
        l2_norm: bool = False,
        ema_decay: Optional[float] = None,
        kmeans_init: bool = False,
        kmeans_iters: int = 10,
        dead_code_threshold: float = 0.0,
        commitment: float = 0.25,
        gradient: str = "ste",
        usage_decay: float = 0.99,
        laplace_eps: float = 1e-5,
        sync: Optional[bool] = None,
        max_search_elements: int = DEFAULT_MAX_ELEMENTS,
    ):
        super().__init__()
        if codebook_size < 1 or dim < 1:
            raise ValueError(f"codebook_size and dim must be positive, got {codebook_size}, {dim}")
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1) or None, got {ema_decay}")
        self.codebook_size = codebook_size
        self.dim = dim
        self.l2_norm = l2_norm
        self.ema_decay = ema_decay
        self.kmeans_init = kmeans_init
        self.kmeans_iters = kmeans_iters
        self.dead_code_threshold = dead_code_threshold
        self.commitment = commitment
        self.gradient = gradient
        self._estimator = get_estimator(gradient)
        self.usage_decay = usage_decay
        self.laplace_eps = laplace_eps
        self.sync = sync
        self.max_search_elements = max_search_elements

        if kmeans_init:
            init = torch.zeros(codebook_size, dim)
        elif l2_norm:
            init = torch.randn(codebook_size, dim)
        else:
            init = torch.empty(codebook_size, dim).uniform_(-1.0 / codebook_size, 1.0 / codebook_size)
        if self.uses_ema:
            self.register_buffer("embed", init)
            self.register_buffer("embed_avg", init.clone())
        else:
            self.embed = torch.nn.Parameter(init)
        self.register_buffer("cluster_size", torch.ones(codebook_size))
        self.register_buffer("initted", torch.tensor([not kmeans_init]))

    @property
    def uses_ema(self) -> bool:
        return self.ema_decay is not None

    def codebook(self) -> torch.Tensor:
        """The code vectors as used for search and lookup (unit norm in l2 mode), fp32."""
        embed = self.embed.float()
        return F.normalize(embed, dim=-1) if self.l2_norm else embed

    def _prepare(self, z: torch.Tensor) -> torch.Tensor:
        x = z.reshape(-1, self.dim).float()
        return F.normalize(x, dim=-1) if self.l2_norm else x

    def forward(self, z: torch.Tensor) -> QuantOut:
        check_last_dim(z, self.dim, type(self).__name__)
        sync = D.should_sync(self.sync)
        with fp32_region(z.device):
            x = self._prepare(z)
            if self.training and self.kmeans_init and not bool(self.initted):
                self._init_from_batch(x.detach(), sync)
            codebook = self.codebook()
            with torch.no_grad():
                indices = nearest_code(
                    x.detach(), codebook.detach(), cosine=self.l2_norm,
                    max_elements=self.max_search_elements,
                )
            q = F.embedding(indices, codebook)
            commit = F.mse_loss(x, q.detach())
            loss = self.commitment * commit
            stats = {"commitment": commit.detach()}
            if not self.uses_ema:
                codebook_loss = F.mse_loss(q, x.detach())
                loss = loss + codebook_loss
                stats["codebook"] = codebook_loss.detach()
            z_q = self._estimator(x, q.detach())
            if self.training:
                counts = self._update(x.detach(), indices, sync)
                stats["perplexity"] = perplexity_from_counts(counts)
                if self.dead_code_threshold > 0:
                    stats["dead_codes"] = (self.cluster_size < self.dead_code_threshold).sum().float()
        return QuantOut(
            z_q=z_q.reshape(z.shape).to(z.dtype),
            indices=indices.reshape(z.shape[:-1]),
            loss=loss,
            stats=Stats(stats),
        )

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Code vectors (fp32) for integer indices of any shape -> ``indices.shape + (d,)``."""
        with fp32_region(indices.device):
            return F.embedding(indices, self.codebook())

    def nearby_indices(self, z: torch.Tensor, indices: torch.Tensor, k: int) -> torch.Tensor:
        """The ``k`` codes nearest to each input vector, nearest (its own code) first."""
        with fp32_region(z.device), torch.no_grad():
            x = self._prepare(z)
            topk = nearest_codes_topk(
                x, self.codebook(), k, cosine=self.l2_norm, max_elements=self.max_search_elements
            )
        return topk.reshape(*indices.shape, k)

    # ----- state updates (training only, no gradient) -----

    @torch.no_grad()
    def _init_from_batch(self, x: torch.Tensor, sync: bool) -> None:
        centroids, counts = kmeans(
            x, self.codebook_size, self.kmeans_iters, cosine=self.l2_norm, sync=sync
        )
        self.embed.data.copy_(centroids)
        self.cluster_size.copy_(counts)
        if self.uses_ema:
            self.embed_avg.copy_(centroids * counts.unsqueeze(1))
            # codes with no members keep their centroid: embed = embed_avg / smoothed count
            self.embed_avg[counts == 0] = centroids[counts == 0] * 1.0
            self.cluster_size[counts == 0] = 1.0
        self.initted.fill_(True)

    @torch.no_grad()
    def _update(self, x: torch.Tensor, indices: torch.Tensor, sync: bool) -> torch.Tensor:
        """EMA / usage statistics, then dead-code replacement. Returns the global batch counts."""
        counts = D.all_reduce_sum(torch.bincount(indices, minlength=self.codebook_size).float(), sync)
        if self.uses_ema:
            decay = self.ema_decay
            sums = torch.zeros(self.codebook_size, self.dim, device=x.device).index_add_(0, indices, x)
            sums = D.all_reduce_sum(sums, sync)
            self.cluster_size.mul_(decay).add_(counts, alpha=1 - decay)
            self.embed_avg.mul_(decay).add_(sums, alpha=1 - decay)
            total = self.cluster_size.sum()
            eps = self.laplace_eps
            smoothed = (self.cluster_size + eps) / (total + self.codebook_size * eps) * total
            self.embed.copy_(self.embed_avg / smoothed.unsqueeze(1))
        else:
            self.cluster_size.mul_(self.usage_decay).add_(counts, alpha=1 - self.usage_decay)
        if self.dead_code_threshold > 0:
            self._replace_dead_codes(x, sync)
        return counts

    @torch.no_grad()
    def _replace_dead_codes(self, x: torch.Tensor, sync: bool) -> None:
        dead = self.cluster_size < self.dead_code_threshold
        num_dead = int(dead.sum())  # identical on all ranks: cluster_size is synchronised
        if num_dead == 0:
            return
        per_rank = math.ceil(num_dead / (D.world_size() if sync else 1))
        candidates = D.all_gather_cat(sample_rows(x, per_rank), enabled=sync)[:num_dead]
        self.embed.data[dead] = candidates.to(self.embed.dtype)
        # Reset the statistics of respawned codes, so the next EMA step keeps the new vector
        # instead of averaging it with the dead code's history.
        self.cluster_size[dead] = self.dead_code_threshold
        if self.uses_ema:
            self.embed_avg[dead] = candidates * self.dead_code_threshold

    def extra_repr(self) -> str:
        mode = f"ema_decay={self.ema_decay}" if self.uses_ema else "learnable"
        return (
            f"codebook_size={self.codebook_size}, dim={self.dim}, l2_norm={self.l2_norm}, {mode}, "
            f"gradient={self.gradient}"
        )
