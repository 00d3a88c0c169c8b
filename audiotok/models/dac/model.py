"""DAC, the Descript Audio Codec (Kumar et al., 2023): mono waveforms to residual-VQ token ids and
back, released at 16 kHz (12 levels), 24 kHz (32 levels) and 44.1 kHz (9 levels).

Encoder and decoder: :mod:`audiotok.nn.dac_blocks` (Snake activations, weight-normed convolutions,
residual units dilated 1, 3, 9; hop 320 at 16 and 24 kHz, 512 at 44.1 kHz). Bottleneck:
:class:`~audiotok.models.dac.quantizer.DACQuantizer`, 1024-entry codebooks of dimension 8 searched
by cosine similarity, with per-level projections.

Ids are ``(B, Q, L)`` int64, ``L = ceil(T / hop)``: like the official ``DAC.preprocess`` +
``DAC.encode`` (and ``forward``), the waveform is zero-padded on the right to a multiple of the hop
and every convolution zero-pads. A shorter item of a batch (``lengths``) is padded to its own
multiple of the hop and coded with the items of its token count only, so its ids are the ones it
gets alone; past its tokens they are ``PAD_ID`` (-1). ``decode`` returns ``L * hop`` samples per
item: the official decoder's output followed by zeros where it produces fewer samples (8 fewer for
the 16 and 24 kHz releases, whose stride-5 transposed convolution loses one sample).

Not reproduced: the official ``compress`` / ``decompress`` conveniences around the model, which
normalise the loudness to -16 dB LUFS (and restore it), and for inputs longer than their window
(1 s by default) code overlapping windows with the convolutions' padding removed. ``encode`` is the
model's own path, which ``forward`` and the transformers port use too.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Union

import torch
import torch.nn.functional as F

from audiotok.models.codec import PAD_ID, AudioCodec, group_by_length
from audiotok.models.dac.config import DACConfig
from audiotok.models.dac.quantizer import DACQuantizer
from audiotok.nn.dac_blocks import DACDecoder, DACEncoder
from vistok.models.base import ReconOut


class DAC(AudioCodec):
    """The DAC codec family: ``encode(wav) -> ids (B, Q, L)``, ``decode(ids) -> wav (B, L * hop)``,
    ``forward(wav) -> ReconOut`` for training.

    Waveforms are mono, ``(T,)``, ``(B, T)`` or ``(B, 1, T)``, at ``config.sample_rate`` unless
    ``sample_rate`` says otherwise (then resampled).
    """

    family = "dac"
    config_class = DACConfig

    def __init__(self, config: Union[DACConfig, Dict[str, Any]]):
        super().__init__()
        cfg = config if isinstance(config, DACConfig) else DACConfig(**config)
        self.config = cfg
        self.encoder = DACEncoder(cfg.encoder_dim, cfg.encoder_rates, cfg.latent_dim)
        self.quantizer = DACQuantizer(cfg.num_quantizers, cfg.codebook_size, cfg.latent_dim, cfg.codebook_dim,
                                      dropout=cfg.quantizer_dropout, commitment_weight=cfg.commitment_weight,
                                      codebook_weight=cfg.codebook_weight)
        self.decoder = DACDecoder(cfg.latent_dim, cfg.decoder_dim, cfg.decoder_rates)
        for module in self.modules():  # as the official initialisation leaves them
            if isinstance(module, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)) and module.bias is not None:
                torch.nn.init.zeros_(module.bias)

    # ----- what it is -----

    def num_levels(self, num_quantizers: Optional[int] = None) -> int:
        """Levels to use: ``num_quantizers`` (1..Q) or all."""
        if num_quantizers is None:
            return self.num_codebooks
        if isinstance(num_quantizers, bool) or int(num_quantizers) != num_quantizers \
                or not 1 <= int(num_quantizers) <= self.num_codebooks:
            raise ValueError(f"num_quantizers must be an integer in 1..{self.num_codebooks}, got {num_quantizers!r}")
        return int(num_quantizers)

    def last_layer_weight(self) -> torch.Tensor:
        """The decoder's last convolution weight (the adaptive GAN weight's reference)."""
        return self.decoder.proj.weight

    # ----- encode -----

    def _pad_to_hop(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, T)`` zero-padded on the right to a multiple of the hop (``DAC.preprocess``)."""
        hop = self.hop_length
        return F.pad(x, (0, -(-x.shape[-1] // hop) * hop - x.shape[-1]))

    def _latent(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, T)`` -> encoder output ``(B, latent_dim, ceil(T / hop))``."""
        return self.encoder(self._pad_to_hop(x))

    def _codes(self, z: torch.Tensor, levels: int) -> torch.Tensor:
        """Encoder output ``(B, D, L)`` -> ids ``(B, levels, L)`` (quantizer in inference mode)."""
        with self.frozen_quantizer():
            return self.quantizer(z.transpose(1, 2), num_levels=levels).indices[..., :levels].transpose(1, 2)

    def encode(self, wav: torch.Tensor, sample_rate: Optional[int] = None, num_quantizers: Optional[int] = None,
               lengths: Optional[torch.Tensor] = None, resample: bool = True) -> torch.Tensor:
        """Waveforms -> int64 ids ``(B, Q, L)``, ``L = ceil(T / hop)``.

        ``sample_rate``: the rate of ``wav`` when it is not the model's (resampled here unless
        ``resample=False``, which makes it an error). ``num_quantizers``: how many residual levels
        ``Q`` (default: all; the first ``Q`` of the full code). ``lengths``: valid samples per item
        of a zero-padded batch; each item is then encoded exactly as if alone, and its ids past
        its own ``ceil(length / hop)`` tokens are ``PAD_ID`` (-1).
        """
        levels = self.num_levels(num_quantizers)
        x, lengths = self.prepare_waveform(wav, sample_rate, lengths, 1, resample)
        if lengths is None:
            return self._codes(self._latent(x), levels)
        hop = self.hop_length
        tokens = [-(-int(n) // hop) for n in lengths.tolist()]
        ids = torch.full((x.shape[0], levels, max(tokens)), PAD_ID, dtype=torch.long, device=x.device)
        for count, items in group_by_length(tokens).items():
            part = x[items, :, : count * hop].clone()
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
        """The quantizer's ``(B, L, Q)`` -> ``(B, Q, L)``."""
        return indices.transpose(1, 2)

    # ----- decode -----

    def ids_to_latent(self, ids: torch.Tensor) -> torch.Tensor:
        """ids ``(B, k, L)`` (no padding) -> the quantized latent ``(B, latent_dim, L)``."""
        ids = self.check_ids(ids)
        return self.quantizer.decode_indices(ids.transpose(1, 2)).transpose(1, 2)

    def _decode_latent(self, latent: torch.Tensor) -> torch.Tensor:
        """``(B, D, L)`` -> ``(B, L * hop)``: the decoder's output, zero-filled to ``L * hop``."""
        wav = self.decoder(latent)[:, 0]
        full = latent.shape[-1] * self.hop_length
        return F.pad(wav, (0, full - wav.shape[-1])) if wav.shape[-1] < full else wav[:, :full]

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """ids ``(B, k, L)`` (the first ``k`` levels, any ``k``) -> waveform ``(B, L * hop)`` at
        ``config.sample_rate``. An item with ``PAD_ID`` past its ``n`` tokens is decoded as if
        alone from those ``n`` (zeros past ``n * hop``)."""
        return self.decode_each_length(self.check_ids(ids))

    # ----- training -----

    def forward(self, wav: torch.Tensor, sample_rate: Optional[int] = None,
                num_quantizers: Optional[int] = None) -> ReconOut:
        """Encode, quantize and decode, as the official ``DAC.forward``: ``recon`` ``(B, T)`` has the
        input's length (zeros where the decoder returns fewer samples); ``loss`` is
        ``commitment_weight`` x commitment + ``codebook_weight`` x codebook loss; ``indices``
        ``(B, Q, L)`` hold -1 for the levels quantizer dropout skipped (training) or that
        ``num_quantizers`` leaves out; ``latent`` is the quantized latent the decoder read. In
        training, quantizer dropout applies unless ``num_quantizers`` fixes the levels (the
        official model ignores a level count in training)."""
        fixed = None if num_quantizers is None else self.num_levels(num_quantizers)
        x, _ = self.prepare_waveform(wav, sample_rate, None)
        z = self._latent(x)
        out = self.quantizer(z.transpose(1, 2), num_levels=fixed)
        latent = out.z_q.transpose(1, 2)
        recon = self._decode_latent(latent)[:, : x.shape[-1]]
        return ReconOut(recon=recon, indices=out.indices.transpose(1, 2), loss=out.loss, latent=latent,
                        stats=out.stats)
