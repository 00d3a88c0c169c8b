"""Running an image tokenizer for evaluation: batches under CUDA autocast, clean or perturbed tokens.

Perturbed tokens (pFID) need the quantizer's input, which the public ``encode`` hides: the model's
``quantizer_input`` hook gives it (:class:`vistok.models.base.Tokenizer`). Every image is perturbed
with its own generator, seeded from
``(seed, alpha, delta, image index)``, so a pFID does not depend on batch size or process count.
Tokenizers that decode by sampling (FlexTok's flow decoder) get their initial noise the same way,
from ``(seed, 'decode', image index)``: the same noise for an image at every token count and batching.
Tokenizers that encode by sampling (FlexTok and its VAE with ``sample_posterior``) get their
posterior noise from one generator per image seeded ``(seed, 'posterior', image index)``, given
to the model's ``encode`` (no global RNG state is read or moved): the same ids for an image in
every run, batching and process count. :meth:`TokenizerRunner.quantizer_input` draws the same
sample as :meth:`TokenizerRunner.encode`, and a pFID pass takes its clean ids from it
(:meth:`TokenizerRunner.clean_ids`), so the ids pFID perturbs are the ids rFID reconstructs.
"""
from __future__ import annotations

import inspect
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from vistok.data.seeding import make_generator
from vistok.models.base import require_tokenizer
from vistok.precision import PRECISIONS, cuda_autocast, precision_used
from vistok.quant.perturb import LatentPerturbation


Generators = Optional[List[torch.Generator]]


class TokenizerRunner:
    """An image tokenizer in eval mode on ``device``; images in and out are ``(B, 3, H, W)`` in [0, 1].

    ``precision`` (``bf16`` default, ``fp16``, ``fp32``) is the CUDA autocast dtype of the tokenizer;
    on the CPU it always runs fp32 and ``precision_used`` says so. Quantizers keep their own fp32
    region whatever the autocast.
    """

    def __init__(self, model: nn.Module, device: torch.device | str = "cpu", precision: str = "bf16",
                 decode_options: Optional[Dict[str, Any]] = None):
        """``decode_options``: keyword arguments for every ``model.decode`` call (FlexTok: ``steps``,
        ``guidance``); each must be a parameter of the model's ``decode``."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        self.model = require_tokenizer(model, "image", type(model).__name__).eval().to(device)
        self.device = torch.device(device)
        self.precision = precision
        self.precision_used = precision_used(self.device.type, precision)
        self.decode_options = dict(decode_options or {})
        accepted = inspect.signature(model.decode).parameters
        unknown = sorted(set(self.decode_options) - set(accepted))
        if unknown:
            raise ValueError(f"decode option(s) {unknown} not accepted by {type(model).__name__}.decode "
                             f"(its parameters: {', '.join(accepted)})")

    @property
    def family(self) -> str:
        return self.model.family

    @property
    def is_discrete(self) -> bool:
        return self.model.is_discrete

    @property
    def seeded_decoding(self) -> bool:
        """Whether decoding samples (from noise seeded per image)."""
        return self.model.decode_noise_shape() is not None

    @property
    def seeded_encoding(self) -> bool:
        """Whether encoding samples a posterior (from noise seeded per image)."""
        return self.model.samples_posterior

    def posterior_generators(self, indices: Optional[torch.Tensor], seed: int = 0) -> Generators:
        """One CPU generator per image, seeded ``(seed, 'posterior', index)``, for a model whose
        encoding samples; None when it does not or no ``indices`` are given (the model's own
        default: the global generator)."""
        if indices is None or not self.seeded_encoding:
            return None
        return [make_generator(seed, "posterior", int(i)) for i in indices.tolist()]

    def check_prefixes(self, ks: Sequence[int]) -> None:
        """Refuse token counts unless the model is a 1D tokenizer that decodes any prefix of its ids."""
        n = self.model.num_tokens
        if not self.model.prefix_decoding:
            raise ValueError(f"--num-tokens needs a 1D tokenizer that decodes any prefix of its ids (TiTok, "
                             f"FlexTok); {type(self.model).__name__} ({self.family!r}) does not")
        bad = [k for k in ks if not 1 <= k <= n]
        if bad:
            raise ValueError(f"--num-tokens: {type(self.model).__name__} has {n} tokens; got {bad}")

    @property
    def codebook_size(self) -> Optional[int]:
        return self.model.codebook_size

    def autocast(self):
        return cuda_autocast(self.device, self.precision)

    @torch.inference_mode()
    def encode(self, images: torch.Tensor, indices: Optional[torch.Tensor] = None, seed: int = 0) -> torch.Tensor:
        """Images -> tokens; ``indices`` (the images' positions in the evaluation set) seed the
        posterior sample of sampling encoders (else they draw from the global generator)."""
        generators = self.posterior_generators(indices, seed)
        options = {} if generators is None else {"generator": generators}
        with self.autocast():
            return self.model.encode(images.to(self.device, non_blocking=True), **options)

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor, indices: Optional[torch.Tensor] = None, seed: int = 0) -> torch.Tensor:
        """Tokens -> images; ``indices`` (the images' positions in the evaluation set) seed the
        decoding noise of sampling decoders (else they draw from the global generator)."""
        options = dict(self.decode_options)
        if indices is not None and self.seeded_decoding:
            shape = self.model.decode_noise_shape()
            options["noise"] = torch.cat([
                torch.randn((1, *shape), generator=make_generator(seed, "decode", int(i))) for i in indices.tolist()
            ]).to(self.device)
        with self.autocast():
            return self.model.decode(tokens, **options).float()

    @torch.inference_mode()
    def quantizer_input(self, images: torch.Tensor, indices: Optional[torch.Tensor] = None, seed: int = 0):
        """``(z, clean)``: the latent the quantizer sees and its clean output, computed once per
        batch and shared by every perturbation point (:meth:`perturbed_ids`) and by the clean
        reconstruction (:meth:`clean_ids`). ``indices``, ``seed``: as :meth:`encode`, whose
        posterior sample this draws too."""
        if not self.is_discrete:
            raise ValueError(f"pFID needs a discrete tokenizer; {type(self.model).__name__} ({self.family!r}) "
                             "has a continuous bottleneck")
        generators = self.posterior_generators(indices, seed)
        with self.autocast():
            try:
                z = self.model.quantizer_input(images.to(self.device, non_blocking=True), generators)
            except NotImplementedError as err:
                raise ValueError(f"pFID needs the quantizer input: {err}") from None
        return z, self.model.token_quantizer()(z)

    def clean_ids(self, clean) -> torch.Tensor:
        """The token ids of :meth:`quantizer_input`'s clean output, as :meth:`encode` returns them."""
        return self.model.ids_from_quantizer(clean.indices)

    @torch.inference_mode()
    def perturbed_ids(self, z: torch.Tensor, clean, indices: torch.Tensor, alpha: float, delta: int, seed: int,
                      prefixes: Sequence[Optional[int]] = (None,)
                      ) -> Tuple[torch.Tensor, Dict[Optional[int], torch.Tensor]]:
        """Token ids with every image perturbed (beta = 1), and for each prefix length k in
        ``prefixes`` (None: all tokens) the fraction of each image's first k tokens that changed.
        ``z``, ``clean`` come from :meth:`quantizer_input`; ``indices`` are the images' positions in
        the evaluation set."""
        quantizer = self.model.token_quantizer()
        perturb = LatentPerturbation(alpha=alpha, beta=1.0, delta=delta, batch_selection="first")
        ids = clean.indices.clone()
        for row, index in enumerate(indices.tolist()):
            one = type(clean)(clean.z_q[row : row + 1], clean.indices[row : row + 1], clean.loss, clean.stats)
            generator = make_generator(seed, "pfid", repr(float(alpha)), int(delta), int(index))
            ids[row] = perturb(quantizer, z[row : row + 1], one, generator=generator).indices[0]
        valid = clean.indices >= 0
        changed = (ids != clean.indices) & valid
        fractions = {k: (changed[:, :k].flatten(1).sum(1) / valid[:, :k].flatten(1).sum(1).clamp_min(1))
                     .double().cpu() for k in prefixes}
        return self.model.ids_from_quantizer(ids), fractions
