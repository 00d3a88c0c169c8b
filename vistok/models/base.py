"""What every tokenizer shares: the forward output, the contract the core calls, and save/load."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Tuple, Union

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


class ZooModel(nn.Module):
    """What the zoo stores and the engine trains: a family's model (a tokenizer, or a model over
    token ids such as the generator) with its config and the Hugging Face-style directory layout.

    A subclass sets :attr:`family` (its name in the registry, :mod:`vistok.registry`) and
    :attr:`modality`, and keeps its architecture in ``self.config``: an object with ``to_dict()``
    whose dict the constructor accepts back. ``save_pretrained(dir)`` writes ``config.json`` +
    ``model.safetensors``; ``from_pretrained(name_or_path)`` reads that layout, a zoo name, or a
    Hugging Face repo.
    """

    family: str = ""  # the family's name in the registry (its entry point)
    config_class: Optional[type] = None  # the config dataclass the constructor takes (recipe and card checks)
    modality: str = "image"  # "image" (inputs (B, 3, H, W) in [0, 1]), "audio" (waveforms) or "tokens"
    # forward applies ``self.perturbation`` (a vistok.quant.LatentPerturbation the engine sets for
    # RobusTok-style training, None otherwise; never saved) to the quantizer output in training
    accepts_perturbation: bool = False
    frozen: tuple = ()  # names of submodules kept frozen and in eval mode (see freeze)

    def prepare_training(self) -> None:
        """Called once before the first training step (e.g. load a frozen teacher now, so that
        missing weights stop a run before it starts)."""

    def prepare_export(self, batches: Iterable[torch.Tensor]) -> None:
        """Called before the trained model is exported, with a few training batches (e.g. a VAE
        measures its latent scaling factor)."""

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

    def train(self, mode: bool = True) -> "ZooModel":
        super().train(mode)
        modules = dict(self.named_modules())
        for name in self.frozen:
            modules[name].eval()
        return self

    def save_pretrained(self, directory: Union[str, Path]) -> Path:
        return save_pretrained(self, directory)

    @classmethod
    def from_pretrained(cls, name_or_path: Union[str, Path], **kwargs: Any) -> "ZooModel":
        """A local ``save_pretrained`` directory, or a name the installed resolver knows (a zoo name
        or a Hugging Face repo: :func:`vistok.load_tokenizer`); ``kwargs`` go to that loader."""
        model = load_pretrained(name_or_path, **kwargs)
        if not isinstance(model, cls):
            raise TypeError(f"{name_or_path!s} holds a {type(model).__name__} ({model.family!r}), "
                            f"not a {cls.__name__}")
        return model



class Tokenizer(ZooModel):
    """The contract every tokzoo tokenizer (image or audio) keeps.

    The engine, the metrics and the commands call these members and nothing else of a model; a
    family is a subclass plus its declaration (:mod:`vistok.registry`). A subclass implements
    :meth:`encode`, :meth:`decode` and :meth:`forward`; the hooks below have defaults for models
    without the feature (pFID, seeded sampling, prefixes).
    """

    # decode(ids[:, :k]) works for any 1 <= k <= num_tokens, and encode takes num_tokens=k (1D tokenizers)
    prefix_decoding: bool = False

    # ----- what every tokenizer implements -----

    def encode(self, x: torch.Tensor, **options: Any) -> torch.Tensor:
        """Inputs -> token ids (``(B, N)`` for images; audio families document their layout), or
        continuous latents for a tokenizer without a codebook."""
        raise NotImplementedError

    def decode(self, ids: torch.Tensor, **options: Any) -> torch.Tensor:
        """What :meth:`encode` returned -> reconstructions in the input's layout."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, **options: Any) -> ReconOut:
        """One training pass: the reconstruction, ids, the bottleneck's loss and stats."""
        raise NotImplementedError

    # ----- what it is -----

    @property
    def image_size(self) -> Optional[int]:
        """The image side the model is built for (image tokenizers: ``config.image_size``); None for audio."""
        return int(self.config.image_size) if self.modality == "image" else None

    @property
    def sample_rate(self) -> Optional[int]:
        """The waveform rate in Hz (audio tokenizers); None for images."""
        return None

    @property
    def num_tokens(self) -> Optional[int]:
        """Ids per image (per codebook); None where the count depends on the input's length (audio)."""
        return None

    @property
    def token_rate(self) -> Optional[float]:
        """Ids per second of audio, per codebook (audio tokenizers); None for images."""
        return None

    @property
    def num_codebooks(self) -> int:
        """Codebooks per position (residual levels); 1 for a single codebook."""
        return 1

    @property
    def bitrate(self) -> Optional[float]:
        """Bits per second of audio at every level (``token_rate * num_codebooks *
        log2(codebook_size)``); None for images and continuous bottlenecks. A codec whose levels run
        at different rates overrides it."""
        if self.token_rate is None or self.codebook_size is None:
            return None
        return float(self.token_rate) * self.num_codebooks * math.log2(self.codebook_size)

    def token_quantizer(self) -> Optional[nn.Module]:
        """The quantizer whose ids :meth:`encode` returns (it has ``codebook_size``); None for a
        continuous bottleneck."""
        return None

    @property
    def codebook_size(self) -> Optional[int]:
        """Ids are in ``0..codebook_size - 1``; None for a continuous bottleneck."""
        quantizer = self.token_quantizer()
        return None if quantizer is None else int(quantizer.codebook_size)

    @property
    def is_discrete(self) -> bool:
        return self.codebook_size is not None

    # ----- optional hooks (engine and metrics) -----

    def quantizer_input(self, x: torch.Tensor, generator: Optional[Sequence[torch.Generator]] = None) -> torch.Tensor:
        """What :meth:`token_quantizer` reads for inputs ``x``, channels last (pFID perturbs it);
        ``generator``: one per image for a sampling encoder (:attr:`samples_posterior`)."""
        raise NotImplementedError(f"{type(self).__name__} does not expose its quantizer input (no pFID)")

    def ids_from_quantizer(self, indices: torch.Tensor) -> torch.Tensor:
        """The quantizer's ids for :meth:`quantizer_input` -> the layout :meth:`encode` returns."""
        return indices

    @property
    def samples_posterior(self) -> bool:
        """Whether :meth:`encode` samples (a VAE posterior); it then takes ``generator=[one
        torch.Generator per image]`` so that evaluation can seed every image."""
        return False

    def decode_noise_shape(self) -> Optional[Tuple[int, ...]]:
        """One image's initial noise shape for a decoder that samples (it then takes ``noise=``,
        batched); None for a deterministic decoder."""
        return None


def require_tokenizer(model: Any, modality: str, where: str) -> Tokenizer:
    """``model`` if it is a tokenizer of ``modality``; else an error naming ``where`` it came from."""
    from vistok.errors import InputError

    if isinstance(model, Tokenizer) and model.modality == modality:
        return model
    if isinstance(model, ZooModel):
        what = f"family {model.family!r} is a {model.modality} model"
    else:
        what = f"a {type(model).__name__} is not a vistok.models.base.Tokenizer"
    raise InputError(f"{where}: not an {modality} tokenizer ({what})")
