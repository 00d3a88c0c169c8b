"""From class labels to pixels: sample ids with an :class:`ARGenerator`, decode them with the
tokenizer whose ids it was trained on."""
from __future__ import annotations

from typing import Any, Optional

import torch

from vistok.errors import InputError
from vistok.models.base import Tokenizer
from vistok.models.generator.model import ARGenerator
from vistok.models.generator.sampling import Generators


def tokenizer_codebook_size(tokenizer: torch.nn.Module) -> Optional[int]:
    """The number of ids a discrete tokenizer emits, or None (continuous, or not a tokenizer)."""
    return tokenizer.codebook_size if isinstance(tokenizer, Tokenizer) else None


def check_pair(generator: ARGenerator, tokenizer: torch.nn.Module) -> None:
    """Raise ValueError unless the generator's ids fit the tokenizer (same codebook, at most as many
    tokens as the tokenizer decodes)."""
    codebook = tokenizer_codebook_size(tokenizer)
    if codebook is None:
        raise InputError(f"{type(tokenizer).__name__} is not a discrete tokenizer (no quantizer codebook)")
    if codebook != generator.config.codebook_size:
        raise InputError(f"the generator models {generator.config.codebook_size} ids, the tokenizer's codebook "
                         f"has {codebook}: they were not trained together")
    if generator.num_tokens > tokenizer.num_tokens:
        raise InputError(f"the generator writes {generator.num_tokens} tokens, the tokenizer decodes at most "
                         f"{tokenizer.num_tokens}")


@torch.no_grad()
def sample_images(generator: ARGenerator, tokenizer: torch.nn.Module, labels: torch.Tensor,
                  generators: Generators = None, teacher_ids: Optional[torch.Tensor] = None,
                  **sampling: Any) -> torch.Tensor:
    """Images ``(B, 3, H, W)`` in [0, 1] (clamped, float) for class ``labels`` ``(B,)``.

    ``generators``: the random streams (one per sample makes each sample independent of its
    batch); ``sampling`` goes to :meth:`ARGenerator.generate` (``cfg_scale``, ``cfg_power``,
    ``temperature``, ``top_k``, ``top_p``, ``teacher_keep_prob``, ``use_cache``). Run it inside
    the autocast region the transformer and the decoder should use."""
    ids = generator.generate(labels, generator=generators, teacher_ids=teacher_ids, **sampling)
    return tokenizer.decode(ids).float().clamp(0, 1)

