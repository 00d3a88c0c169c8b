"""SNAC, the Multi-Scale Neural Audio Codec (Siuzdak et al., 2024): mono waveforms to residual-VQ
ids whose levels run at different rates, and back; released at 24 kHz (speech, 3 levels at about
12, 23 and 47 Hz), 32 kHz and 44.1 kHz (music and sound, 4 levels at 1/8, 1/4, 1/2 and 1 of the
latent rate).

Ids are ``(B, S, F)`` int64: ``F`` positions of the coarsest level (``hop_length = encoder_hop *
vq_strides[0]`` samples each, ``token_rate`` per second) and ``S`` ids per position, the levels'
tokens in level order (level ``q`` has ``r_q = vq_strides[0] / vq_strides[q]`` tokens per position,
in time order; ``S = sum r_q``: 7 for the 24 kHz release, 15 for the others). The first ``k``
levels are the first ``S_k`` rows, so ``encode(num_quantizers=k)`` returns them and ``decode``
takes any ``S_k`` (1, 3, 7 or 15 rows for four levels). :meth:`SNAC.ids_to_levels` /
:meth:`SNAC.levels_to_ids` convert to and from the official list of per-level sequences.
``num_codebooks`` is ``S`` (ids per position) and ``token_rate * num_codebooks`` the ids per second.

Like the official ``preprocess``, the waveform is zero-padded on the right to a multiple of
``pad_multiple = encoder_hop * lcm(vq_strides[0], attn_window_size or 1)`` samples (12288 at 32
and 44.1 kHz, 2048 at 24 kHz), so ``F = ceil(T / pad_multiple) * pad_multiple / hop_length``. A
shorter item of a batch (``lengths``) is padded to its own multiple and coded with the items of
its token count only, so its ids are the ones it gets alone; past its positions they are
``PAD_ID`` (-1). ``decode`` returns ``F * hop_length`` samples per item.

The decoder's noise blocks draw Gaussian noise at inference too, as the released model does:
``decode`` and ``forward`` draw from torch's global generator unless ``generator`` is given (one
``torch.Generator``, or one per item so that each item's audio does not depend on the batch).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from audiotok.models.codec import PAD_ID, AudioCodec, group_by_length
from audiotok.models.snac.config import SNACConfig
from audiotok.models.snac.quantizer import MultiScaleQuantizer, levels_to_slots, slots_to_levels
from audiotok.nn.snac_blocks import SNACDecoder, SNACEncoder
from vistok.models.base import ReconOut


class SNAC(AudioCodec):
    """The SNAC codec family: ``encode(wav) -> ids (B, S, F)``, ``decode(ids) -> wav (B, F *
    hop_length)``, ``forward(wav) -> ReconOut`` for training.

    Waveforms are mono, ``(T,)``, ``(B, T)`` or ``(B, 1, T)``, at ``config.sample_rate`` unless
    ``sample_rate`` says otherwise (then resampled).
    """

    family = "snac"
    config_class = SNACConfig

    def __init__(self, config: Union[SNACConfig, Dict[str, Any]]):
        super().__init__()
        cfg = config if isinstance(config, SNACConfig) else SNACConfig(**config)
        self.config = cfg
        self.encoder = SNACEncoder(cfg.encoder_dim, cfg.encoder_rates, cfg.attn_window_size, cfg.depthwise)
        self.quantizer = MultiScaleQuantizer(cfg.vq_strides, cfg.codebook_size, cfg.latent_dim, cfg.codebook_dim,
                                             dropout=cfg.quantizer_dropout, commitment_weight=cfg.commitment_weight,
                                             codebook_weight=cfg.codebook_weight)
        self.decoder = SNACDecoder(cfg.latent_dim, cfg.decoder_dim, cfg.decoder_rates, cfg.attn_window_size,
                                   cfg.noise, cfg.depthwise)

    # ----- what it is -----

    @property
    def num_codebooks(self) -> int:
        """Ids per position with all levels (``S``)."""
        return self.quantizer.num_slots

    @property
    def num_levels(self) -> int:
        """Residual levels (``len(vq_strides)``)."""
        return self.config.num_quantizers

    @property
    def level_rates(self) -> List[float]:
        """Tokens per second of each level, coarsest first."""
        return self.config.level_rates

    @property
    def pad_multiple(self) -> int:
        return self.config.pad_multiple

    def levels_for(self, num_quantizers: Optional[int] = None) -> int:
        """Levels to use: ``num_quantizers`` (1..Q) or all."""
        if num_quantizers is None:
            return self.num_levels
        if isinstance(num_quantizers, bool) or int(num_quantizers) != num_quantizers \
                or not 1 <= int(num_quantizers) <= self.num_levels:
            raise ValueError(f"num_quantizers must be an integer in 1..{self.num_levels} (levels), "
                             f"got {num_quantizers!r}")
        return int(num_quantizers)

    def last_layer_weight(self) -> torch.Tensor:
        """The decoder's last convolution weight (the adaptive GAN weight's reference)."""
        return self.decoder.proj.weight

    # ----- the official per-level layout -----

    def ids_to_levels(self, ids: torch.Tensor) -> List[torch.Tensor]:
        """ids ``(B, S_k, F)`` -> the official list of ``k`` per-level sequences ``(B, F * r_q)``."""
        return slots_to_levels(self.check_ids(ids).transpose(1, 2), self.quantizer.repeats)

    def levels_to_ids(self, codes: Sequence[torch.Tensor]) -> torch.Tensor:
        """The official list (the first ``k`` levels, ``(B, n_q)`` each, ``n_q = F * r_q``) -> ids
        ``(B, S_k, F)``."""
        codes = list(codes)
        if not 1 <= len(codes) <= self.num_levels:
            raise ValueError(f"codes must be a list of 1..{self.num_levels} per-level tensors, got {len(codes)}")
        repeats = self.quantizer.repeats
        frames = codes[0].shape[-1]
        for q, c in enumerate(codes):
            if c.dim() != 2 or c.shape[-1] != frames * repeats[q] or c.shape[0] != codes[0].shape[0]:
                raise ValueError(f"codes[{q}] must be (B, {frames * repeats[q]}) (level {q} has {repeats[q]} "
                                 f"tokens per coarsest token), got shape {tuple(c.shape)}")
        return self.check_ids(levels_to_slots(codes, repeats).transpose(1, 2))

    # ----- encode -----

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, T)`` zero-padded on the right to a multiple of ``pad_multiple`` (``SNAC.preprocess``)."""
        m = self.pad_multiple
        return F.pad(x, (0, -(-x.shape[-1] // m) * m - x.shape[-1]))

    def _latent(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, T)`` -> encoder output ``(B, latent_dim, L)``, ``L = F * vq_strides[0]``."""
        return self.encoder(self._pad(x))

    def _codes(self, z: torch.Tensor, levels: int) -> torch.Tensor:
        """Encoder output ``(B, D, L)`` -> ids ``(B, S_levels, F)`` (quantizer in inference mode)."""
        with self.frozen_quantizer():
            ids = self.quantizer(z.transpose(1, 2), num_levels=levels).indices
        return ids[..., : self.quantizer.slots(levels)].transpose(1, 2)

    def positions(self, samples: int) -> int:
        """Id positions ``F`` of an input of ``samples`` samples."""
        m = self.pad_multiple
        return -(-int(samples) // m) * m // self.hop_length

    def encode(self, wav: torch.Tensor, sample_rate: Optional[int] = None, num_quantizers: Optional[int] = None,
               lengths: Optional[torch.Tensor] = None, resample: bool = True) -> torch.Tensor:
        """Waveforms -> int64 ids ``(B, S_k, F)`` (layout: the module docstring).

        ``sample_rate``: the rate of ``wav`` when it is not the model's (resampled here unless
        ``resample=False``, which makes it an error). ``num_quantizers``: how many residual levels
        ``k`` (default: all; the first ``S_k`` rows of the full code). ``lengths``: valid samples per
        item of a zero-padded batch; each item is then encoded exactly as if alone, and its ids
        past its own :meth:`positions` are ``PAD_ID`` (-1).
        """
        levels = self.levels_for(num_quantizers)
        x, lengths = self.prepare_waveform(wav, sample_rate, lengths, 1, resample)
        if lengths is None:
            return self._codes(self._latent(x), levels)
        counts = [self.positions(n) for n in lengths.tolist()]
        ids = torch.full((x.shape[0], self.quantizer.slots(levels), max(counts)), PAD_ID, dtype=torch.long,
                         device=x.device)
        for count, items in group_by_length(counts).items():
            part = x[items, :, : count * self.hop_length].clone()
            for row, item in enumerate(items):
                part[row, :, int(lengths[item]):] = 0
            ids[items, :, :count] = self._codes(self._latent(part), levels)
        return ids

    # ----- pFID hooks -----

    def quantizer_input(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        """The encoder's output for waveforms ``x``, channels last ``(B, L, latent_dim)``."""
        wav, _ = self.prepare_waveform(x, None, None)
        return self._latent(wav).transpose(1, 2)

    def ids_from_quantizer(self, indices: torch.Tensor) -> torch.Tensor:
        """The quantizer's ``(B, F, S)`` -> ``(B, S, F)``."""
        return indices.transpose(1, 2)

    # ----- decode -----

    def check_ids(self, ids: torch.Tensor, levels: bool = True) -> torch.Tensor:
        """:meth:`AudioCodec.check_ids`, and the rows must be those of the first ``k`` levels."""
        ids = super().check_ids(ids, levels)
        if levels and ids.shape[1] not in self.quantizer.offsets[1:]:
            raise ValueError(f"ids have {ids.shape[1]} rows; the first k levels of this model have one of "
                             f"{self.quantizer.offsets[1:]} rows (k = 1..{self.num_levels})")
        return ids

    def ids_to_latent(self, ids: torch.Tensor) -> torch.Tensor:
        """ids ``(B, S_k, F)`` (no padding) -> the quantized latent ``(B, latent_dim, F * vq_strides[0])``."""
        ids = self.check_ids(ids)
        return self.quantizer.decode_indices(ids.transpose(1, 2)).transpose(1, 2)

    def decode(self, ids: torch.Tensor, generator=None) -> torch.Tensor:
        """ids ``(B, S_k, F)`` (the first ``k`` levels, any ``k``) -> waveform ``(B, F * hop_length)``
        at ``config.sample_rate``. An item with ``PAD_ID`` past its ``n`` positions is decoded as
        if alone from those ``n`` (zeros past ``n * hop_length``). ``generator``: where the noise
        blocks draw (None: torch's global generator; a ``torch.Generator``; or a sequence of one per
        item)."""
        ids = self.check_ids(ids)
        if generator is not None and not isinstance(generator, torch.Generator) and len(generator) != ids.shape[0]:
            raise ValueError(f"generator: {len(generator)} generators for a batch of {ids.shape[0]}")
        lengths = self.valid_lengths(ids).tolist()
        if all(n == ids.shape[-1] for n in lengths):
            return self.decoder(self.ids_to_latent(ids), generator)[:, 0]
        out = None
        for count, items in group_by_length(lengths).items():
            gen = generator if generator is None or isinstance(generator, torch.Generator) \
                else [generator[i] for i in items]
            wav = self.decoder(self.ids_to_latent(ids[items, :, :count]), gen)[:, 0]
            if out is None:
                out = wav.new_zeros(ids.shape[0], ids.shape[-1] * self.hop_length)
            out[items, : wav.shape[-1]] = wav
        return out

    # ----- training -----

    def forward(self, wav: torch.Tensor, sample_rate: Optional[int] = None,
                num_quantizers: Optional[int] = None, generator=None) -> ReconOut:
        """Encode, quantize and decode, as the official ``SNAC.forward``: ``recon`` ``(B, T)`` has the
        input's length; ``loss`` is ``commitment_weight`` x commitment + ``codebook_weight`` x
        codebook loss; ``indices`` ``(B, S, F)`` hold -1 for levels quantizer dropout skipped
        (training) or that ``num_quantizers`` leaves out; ``latent`` is the quantized latent the
        decoder read."""
        fixed = None if num_quantizers is None else self.levels_for(num_quantizers)
        x, _ = self.prepare_waveform(wav, sample_rate, None)
        z = self._latent(x)
        out = self.quantizer(z.transpose(1, 2), num_levels=fixed)
        latent = out.z_q.transpose(1, 2)
        recon = self.decoder(latent, generator)[:, 0, : x.shape[-1]]
        return ReconOut(recon=recon, indices=out.indices.transpose(1, 2), loss=out.loss, latent=latent,
                        stats=out.stats)
