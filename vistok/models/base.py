"""What every tokenizer shares: the forward output and the save/load interface."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import nn

from vistok.models.pretrained import load_pretrained, save_pretrained
from vistok.quant.base import Stats


@dataclass
class ReconOut:
    """recon: the reconstruction (images in [0, 1] before clamping, or waveforms).
    indices: token ids (None for continuous bottlenecks). loss: the bottleneck's own loss
    (quantizer or KL). latent: what the decoder consumed. stats: named floats for logging."""

    recon: torch.Tensor
    indices: Optional[torch.Tensor]
    loss: torch.Tensor
    latent: torch.Tensor
    stats: Stats = field(default_factory=Stats)


class Tokenizer(nn.Module):
    """Base of every tokzoo tokenizer (image or audio): the Hugging Face-style directory layout.

    A subclass sets ``family`` (its name in the family registry, :mod:`vistok.registry`) and keeps its architecture
    in ``self.config``, an object with ``to_dict()`` whose dict the constructor accepts back.
    ``save_pretrained(dir)`` writes ``config.json`` + ``model.safetensors``;
    ``from_pretrained(name_or_path)`` reads that layout, a zoo name, or a Hugging Face repo.
    """

    family: str = ""
    frozen: tuple = ()  # names of submodules kept frozen and in eval mode (see freeze)

    def freeze(self, *names: str) -> None:
        """Freeze the named submodules or parameters (e.g. ``"encoder"``, ``"pixel_codebook"``): no
        gradients, and frozen submodules stay in eval mode whatever ``train()`` is called with, as a
        fine-tuning stage needs. (Under DDP a part that a stage never uses must be frozen too.)"""
        modules, params = dict(self.named_modules()), dict(self.named_parameters())
        unknown = [n for n in names if not n or (n not in modules and n not in params)]
        if unknown:
            top = ", ".join(n for n, _ in self.named_children())
            raise ValueError(f"freeze: {type(self).__name__} has no submodule or parameter {unknown[0]!r}; "
                             f"its parts: {top}")
        for name in names:
            (modules[name] if name in modules else params[name]).requires_grad_(False)
        self.frozen = tuple(dict.fromkeys((*self.frozen, *(n for n in names if n in modules))))
        self.train(self.training)

    def train(self, mode: bool = True) -> "Tokenizer":
        super().train(mode)
        modules = dict(self.named_modules())
        for name in self.frozen:
            modules[name].eval()
        return self

    def save_pretrained(self, directory: Union[str, Path]) -> Path:
        return save_pretrained(self, directory)

    @classmethod
    def from_pretrained(cls, name_or_path: Union[str, Path], **kwargs: Any) -> "Tokenizer":
        """A local ``save_pretrained`` directory, or a name the installed resolver knows (a zoo name
        or a Hugging Face repo: :func:`vistok.load_tokenizer`); ``kwargs`` go to that loader."""
        model = load_pretrained(name_or_path, **kwargs)
        if not isinstance(model, cls):
            raise TypeError(f"{name_or_path!s} holds a {type(model).__name__} ({model.family!r}), "
                            f"not a {cls.__name__}")
        return model
