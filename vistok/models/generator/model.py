"""ARGenerator: a class-conditional, LlamaGen/RAR-style autoregressive transformer over token ids.

The sequence is ``[class, t_0, ..., t_{L-2}]``; position ``i`` predicts ``t_i``. Positions are
learned absolute embeddings (token sequences of 1D tokenizers such as TiTok have no 2D grid for
a 2D RoPE to follow, and absolute positions make cached and uncached runs compute the same
thing). Tokens are generated in raster order (no RAR permutation training).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from vistok.models.generator.blocks import CausalBlock, KVCache, make_norm
from vistok.models.generator.config import ARGeneratorConfig
from vistok.models.generator.sampling import Generators, cfg_scale_at, draw_uniforms, guide, sample_logits
from vistok.models.base import ZooModel
from vistok.models.pretrained import CONFIG_NAME, load_pretrained_dir
from vistok.quant import Stats


def next_token_loss(logits: torch.Tensor, ids: torch.Tensor) -> Tuple[torch.Tensor, Stats]:
    """Cross-entropy of ``(B, T, V)`` logits against the ``(B, T)`` ids they predict (fp32), and
    lazy stats for logging (token accuracy)."""
    logits = logits.float()
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids.reshape(-1).long())
    accuracy = (logits.detach().argmax(-1) == ids).float().mean()
    return loss, Stats({"token_accuracy": accuracy})


class ARGenerator(ZooModel):
    """Class-conditional next-token model for gFID sampling and RobusTok post-training pairs.

    ``forward(ids, labels)`` returns logits aligned with ``ids`` (teacher forcing);
    ``generate(labels, ...)`` samples with a KV cache, classifier-free guidance (the batch is
    doubled with the null class), temperature, top-k / top-p, and RobusTok's partial teacher
    forcing. ``save_pretrained`` / ``from_pretrained`` use the tokzoo layout (config.json +
    model.safetensors) with family ``"generator"``."""

    family = "generator"
    config_class = ARGeneratorConfig
    modality = "tokens"

    def __init__(self, config: Union[ARGeneratorConfig, Dict[str, Any]]):
        super().__init__()
        cfg = config if isinstance(config, ARGeneratorConfig) else ARGeneratorConfig(**config)
        self.config = cfg
        shape = cfg.shape
        w = shape.width
        self.token_embed = nn.Embedding(cfg.codebook_size, w)
        self.class_embed = nn.Embedding(cfg.num_classes + 1, w)  # last row: the null class
        self.pos_embed = nn.Parameter(torch.zeros(cfg.num_tokens, w))
        self.blocks = nn.ModuleList(CausalBlock(w, shape.heads, shape.mlp_ratio, cfg.norm)
                                    for _ in range(shape.depth))
        self.norm = make_norm(cfg.norm, w)
        self.head = nn.Linear(w, cfg.codebook_size, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2 initialisation: N(0, 0.02) weights, zero biases, residual projections scaled by
        1/sqrt(2 * depth)."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.pos_embed, std=0.02)
        for block in self.blocks:
            for proj in (block.attn.proj, block.mlp[2]):
                nn.init.normal_(proj.weight, std=0.02 / (2 * len(self.blocks)) ** 0.5)

    @property
    def num_tokens(self) -> int:
        return self.config.num_tokens

    # ----- teacher-forced pass -----

    def drop_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Replace each label by the null class with probability ``class_dropout`` (global RNG)."""
        drop = torch.rand(labels.shape, device=labels.device) < self.config.class_dropout
        return labels.masked_fill(drop, self.config.null_class)

    def _hidden(self, labels: torch.Tensor, ids: torch.Tensor, cache: Optional[KVCache] = None) -> torch.Tensor:
        """Final-norm states of ``[class, ids]``; with a cache that already holds a prefix, of
        ``ids`` only, continuing at position ``cache.length``."""
        start = 0 if cache is None else cache.length
        parts = [self.class_embed(labels)[:, None]] if start == 0 else []
        if ids.shape[1]:
            parts.append(self.token_embed(ids))
        x = torch.cat(parts, dim=1)
        if start + x.shape[1] > self.num_tokens:
            raise ValueError(f"sequence of {start + x.shape[1]} positions; the model has {self.num_tokens}")
        x = x + self.pos_embed[start:start + x.shape[1]].to(x.dtype)
        for i, block in enumerate(self.blocks):
            x = block(x, cache, i)
        if cache is not None:
            cache.advance(x.shape[1])
        return self.norm(x)

    def forward(self, ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``ids`` ``(B, T)`` (T <= num_tokens), ``labels`` ``(B,)`` (``num_classes`` = null) ->
        logits ``(B, T, codebook_size)``; ``logits[:, i]`` predicts ``ids[:, i]`` from the label and
        ``ids[:, :i]``. In training mode labels are dropped to the null class (``class_dropout``)."""
        labels = labels.long()
        if self.training and self.config.class_dropout > 0:
            labels = self.drop_labels(labels)
        return self.head(self._hidden(labels, ids[:, :-1].long()))

    def loss(self, ids: torch.Tensor, labels: torch.Tensor) -> Tuple[torch.Tensor, Stats]:
        """Next-token cross-entropy over all positions, and logging stats."""
        return next_token_loss(self(ids, labels), ids)

    # ----- sampling -----

    def _check_labels(self, labels: torch.Tensor) -> torch.Tensor:
        labels = torch.as_tensor(labels).long().reshape(-1)
        if labels.numel() and (labels.min() < 0 or labels.max() > self.config.num_classes):
            raise ValueError(f"labels must be in 0..{self.config.num_classes - 1} "
                             f"(or {self.config.num_classes} for the null class)")
        return labels

    @torch.no_grad()
    def generate(self, labels: torch.Tensor, num_tokens: Optional[int] = None, cfg_scale: float = 1.0,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, generator: Generators = None,
                 use_cache: bool = True, teacher_ids: Optional[torch.Tensor] = None,
                 teacher_keep_prob: float = 0.0, cfg_power: Optional[float] = None) -> torch.Tensor:
        """Sample ``(B, num_tokens)`` ids for the class ``labels`` ``(B,)``.

        ``cfg_scale``: guided logits ``uncond + s * (cond - uncond)`` (the batch is doubled with the
        null class; 1 gives the conditional logits exactly and runs no unconditional pass);
        ``cfg_power``: RAR's power-cosine ramp of the scale over the steps (None: constant).
        ``temperature`` (0: greedy), ``top_k`` (0: all), ``top_p`` (1: all) shape each step.
        ``generator``: None, one ``torch.Generator``, or one per sample; every random number is
        drawn before the first step, so ``use_cache`` does not change the result.
        ``teacher_ids`` ``(B, num_tokens)`` with ``teacher_keep_prob`` = sigma: RobusTok's
        post-training sampling; each position is kept from the teacher with probability sigma
        (mask drawn up front), and a kept token conditions the later steps like a sampled one.
        With sigma = 0 the result equals plain sampling with the same generator."""
        length = self.num_tokens if num_tokens is None else int(num_tokens)
        if not 1 <= length <= self.num_tokens:
            raise ValueError(f"num_tokens must be in 1..{self.num_tokens}, got {length}")
        if not 0.0 <= teacher_keep_prob <= 1.0:
            raise ValueError(f"teacher_keep_prob must be in [0, 1], got {teacher_keep_prob}")
        device = self.pos_embed.device
        labels = self._check_labels(labels).to(device)
        b = labels.shape[0]
        if teacher_ids is not None:
            teacher_ids = torch.as_tensor(teacher_ids).long().to(device)
            if teacher_ids.shape != (b, length):
                raise ValueError(f"teacher_ids must be shaped {(b, length)}, got {tuple(teacher_ids.shape)}")
        elif teacher_keep_prob > 0:
            raise ValueError("teacher_keep_prob > 0 needs teacher_ids")
        noise, keep_noise = draw_uniforms(b, length, generator, device)
        keep = keep_noise < teacher_keep_prob

        guided = cfg_scale != 1.0
        cond = torch.cat([labels, torch.full_like(labels, self.config.null_class)]) if guided else labels
        cache = KVCache(length) if use_cache else None
        ids = torch.empty(b, 0, dtype=torch.long, device=device)
        for step in range(length):
            if cache is None:
                prefix = torch.cat([ids, ids]) if guided else ids
            else:
                last = ids[:, -1:]
                prefix = torch.cat([last, last]) if guided else last
            h = self._hidden(cond, prefix, cache)[:, -1]
            logits = self.head(h).float()
            if guided:
                c, u = logits.chunk(2)
                logits = guide(c, u, cfg_scale_at(step, length, cfg_scale, cfg_power))
            token = sample_logits(logits, noise[:, step], temperature, top_k, top_p)
            if teacher_ids is not None:
                token = torch.where(keep[:, step], teacher_ids[:, step], token)
            ids = torch.cat([ids, token[:, None]], dim=1)
        return ids

    # ----- files -----

    @classmethod
    def from_pretrained(cls, directory: Union[str, Path], device: str = "cpu") -> "ARGenerator":
        """Load a directory written by :meth:`save_pretrained` (in eval mode on ``device``)."""
        model = load_pretrained_dir(directory, device)
        if not isinstance(model, cls):
            raise ValueError(f"{Path(directory) / CONFIG_NAME}: holds a {model.family!r} model, not a generator")
        return model
