"""Mimi (Défossez et al., 2024, the codec of Moshi): 24 kHz mono waveforms to 12.5 Hz split
residual-VQ token ids (up to 32 levels of 2048 codes) and back. Inference only (see below).

Encoder: the causal SEANet encoder (:mod:`audiotok.nn.seanet`: strides 4-5-6-8, zero left padding,
identity shortcuts, no LSTM, plain convolutions) to 512-d frames at 25 Hz, a causal transformer
(:mod:`audiotok.models.mimi.transformer`: 8 layers, RoPE, a 250-frame attention window), and a
learned causal strided convolution (kernel 4, stride 2, replicate left padding) to 12.5 Hz.
Bottleneck: :class:`~audiotok.models.mimi.quantizer.SplitRVQ`, one semantic level then 31 acoustic
ones. Decoder: a depthwise causal transposed convolution back to 25 Hz, the decoder transformer and
the mirror SEANet decoder (:mod:`audiotok.nn.seanet_decoder`).

Ids are ``(B, Q, L)`` int64, ``L = ceil(T / 1920)``: like moshi's ``MimiModel.encode``, the
waveform is zero-padded on the right to a multiple of the frame size (1920 samples) before the
encoder. Everything is causal, so a frame depends only on the samples up to its end; a shorter item
of a batch (``lengths``) is coded with the items of its own token count, cut to it, so its ids are
exactly the ones it gets alone, and ``PAD_ID`` (-1) past them. ``decode`` returns ``L * 1920``
samples per item (zeros past a shorter item's own).

transformers' ``MimiModel`` pads each convolution's input to complete its last frame instead of
padding the waveform once: for a length that is not a multiple of 1920 its last frame can differ
from moshi's (and ours); the other frames are the same.

**Inference only.** The released weights are supported for encoding, decoding and streaming
decoding; training (moshi's EMA codebook updates, the semantic distillation from WavLM and its
adversarial losses) is not implemented, and ``prepare_training`` (which ``tokzoo train`` calls)
refuses.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Union

import torch
import torch.nn.functional as F

from audiotok.models.codec import PAD_ID, AudioCodec, group_by_length
from audiotok.models.mimi.config import MimiConfig
from audiotok.models.mimi.quantizer import SplitRVQ
from audiotok.models.mimi.transformer import MimiTransformer
from audiotok.nn.seanet import PaddedConv1d, SEANetEncoder
from audiotok.nn.seanet_decoder import PaddedConvTranspose1d, SEANetDecoder
from vistok.errors import InputError
from vistok.models.base import ReconOut


class Mimi(AudioCodec):
    """The Mimi codec family: ``encode(wav) -> ids (B, Q, L)``, ``decode(ids) -> wav (B, L * 1920)``.

    Waveforms are mono, ``(T,)``, ``(B, T)`` or ``(B, 1, T)``, at ``config.sample_rate`` unless
    ``sample_rate`` says otherwise (then resampled). ``forward`` reconstructs in eval mode (no
    training: see the module docstring).
    """

    family = "mimi"
    config_class = MimiConfig

    def __init__(self, config: Union[MimiConfig, Dict[str, Any]]):
        super().__init__()
        cfg = config if isinstance(config, MimiConfig) else MimiConfig(**config)
        self.config = cfg
        seanet = dict(dim=cfg.dim, n_filters=cfg.n_filters, residual_layers=cfg.residual_layers, lstm_layers=0,
                      kernel_size=cfg.kernel_size, last_kernel_size=cfg.last_kernel_size,
                      residual_kernel_size=cfg.residual_kernel_size, dilation_base=cfg.dilation_base,
                      compress=cfg.compress, causal=True, norm="none", true_skip=True, pad_mode="constant")
        blocks = dict(dim=cfg.dim, num_layers=cfg.num_layers, num_heads=cfg.num_heads,
                      dim_feedforward=cfg.dim_feedforward, context=cfg.context, max_period=cfg.max_period,
                      layer_scale=cfg.layer_scale)
        s = cfg.downsample
        self.encoder = SEANetEncoder(cfg.strides, **seanet)
        self.encoder_transformer = MimiTransformer(**blocks)
        self.downsample = PaddedConv1d(cfg.dim, cfg.dim, 2 * s, stride=s, causal=True, norm="none",
                                       pad_mode="replicate", bias=False)
        self.quantizer = SplitRVQ(cfg.dim, cfg.codebook_dim, cfg.codebook_size, cfg.num_quantizers, cfg.num_semantic)
        self.upsample = PaddedConvTranspose1d(cfg.dim, cfg.dim, 2 * s, s, causal=True, norm="none",
                                              groups=cfg.dim, bias=False)
        self.decoder_transformer = MimiTransformer(**blocks)
        self.decoder = SEANetDecoder(cfg.strides, **seanet)

    # ----- what it is -----

    def num_levels(self, num_quantizers: Optional[int] = None) -> int:
        """Levels to use: ``num_quantizers`` (1..Q) or all."""
        if num_quantizers is None:
            return self.num_codebooks
        if isinstance(num_quantizers, bool) or int(num_quantizers) != num_quantizers \
                or not 1 <= int(num_quantizers) <= self.num_codebooks:
            raise ValueError(f"num_quantizers must be an integer in 1..{self.num_codebooks}, got {num_quantizers!r}")
        return int(num_quantizers)

    def token_quantizer(self) -> torch.nn.Module:
        return self.quantizer.semantic

    def prepare_training(self) -> None:
        raise InputError("mimi is inference-only in tokzoo: its training (EMA codebook updates, WavLM "
                         "distillation of the semantic level, adversarial losses) is not implemented; "
                         "use the released weights for encode/decode")

    def train(self, mode: bool = True):
        # the codebooks are released EMA statistics: no quantizer update may ever run
        super().train(mode)
        self.quantizer.eval()
        return self

    # ----- encode -----

    def _latent(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, T)``, ``T`` a multiple of the hop -> the unquantized latent ``(B, dim, T / hop)``."""
        z, _ = self.encoder(x)
        return self.downsample(self.encoder_transformer(z))

    def _pad_to_hop(self, x: torch.Tensor) -> torch.Tensor:
        hop = self.hop_length
        return F.pad(x, (0, -(-x.shape[-1] // hop) * hop - x.shape[-1]))

    def encode(self, wav: torch.Tensor, sample_rate: Optional[int] = None, num_quantizers: Optional[int] = None,
               lengths: Optional[torch.Tensor] = None, resample: bool = True) -> torch.Tensor:
        """Waveforms -> int64 ids ``(B, Q, L)``, ``L = ceil(T / 1920)``.

        ``sample_rate``: the rate of ``wav`` when it is not the model's (resampled here unless
        ``resample=False``, which makes it an error). ``num_quantizers``: how many levels ``Q``
        (default: all; the first ``Q`` of the full code, the semantic level first). ``lengths``:
        valid samples per item of a zero-padded batch; each item is then encoded exactly as if
        alone, and its ids past its own ``ceil(length / 1920)`` tokens are ``PAD_ID`` (-1).
        """
        levels = self.num_levels(num_quantizers)
        x, lengths = self.prepare_waveform(wav, sample_rate, lengths, 1, resample)
        if lengths is None:
            return self.quantizer.encode(self._latent(self._pad_to_hop(x)), levels)
        hop = self.hop_length
        tokens = [-(-int(n) // hop) for n in lengths.tolist()]
        ids = torch.full((x.shape[0], levels, max(tokens)), PAD_ID, dtype=torch.long, device=x.device)
        for count, items in group_by_length(tokens).items():
            part = self._pad_to_hop(x[items, :, : count * hop])
            keep = torch.arange(part.shape[-1], device=x.device)[None] < lengths[items][:, None]
            ids[items, :, :count] = self.quantizer.encode(self._latent(part * keep[:, None].to(part.dtype)), levels)
        return ids

    # ----- pFID hooks -----

    def quantizer_input(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        """The semantic level's input for waveforms ``x``, channels last ``(B, L, codebook_dim)``."""
        wav, _ = self.prepare_waveform(x, None, None)
        return self.quantizer.semantic_in(self._latent(self._pad_to_hop(wav))).transpose(1, 2)

    def ids_from_quantizer(self, indices: torch.Tensor) -> torch.Tensor:
        """The semantic quantizer's ``(B, L, 1)`` -> ``(B, 1, L)``."""
        return indices.transpose(1, 2)

    # ----- decode -----

    def ids_to_latent(self, ids: torch.Tensor) -> torch.Tensor:
        """ids ``(B, k, L)`` (no padding) -> the quantized latent ``(B, dim, L)`` at the token rate."""
        return self.quantizer.decode(self.check_ids(ids))

    def _decode_latent(self, latent: torch.Tensor) -> torch.Tensor:
        """``(B, dim, L)`` -> ``(B, L * hop)``."""
        return self.decoder(self.decoder_transformer(self.upsample(latent)))[:, 0]

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """ids ``(B, k, L)`` (the first ``k`` levels, any ``k``) -> waveform ``(B, L * 1920)`` at
        ``config.sample_rate``. An item with ``PAD_ID`` past its ``n`` tokens is decoded as if
        alone from those ``n`` (zeros past ``n * 1920``)."""
        return self.decode_each_length(self.check_ids(ids))

    def streaming_decoder(self):
        """A :class:`audiotok.models.streaming.StreamingDecoder`: ids chunk by chunk (any number of
        frames each), waveform out as soon as it is complete, equal to :meth:`decode` of all ids."""
        from audiotok.models.mimi.streaming import mimi_decoder_stream
        from audiotok.models.streaming import StreamingDecoder

        return StreamingDecoder(self, mimi_decoder_stream(self), self.ids_to_latent, lambda wav: wav[:, 0])

    # ----- reconstruction -----

    def forward(self, wav: torch.Tensor, sample_rate: Optional[int] = None,
                num_quantizers: Optional[int] = None) -> ReconOut:
        """Encode and decode (eval only): ``recon`` ``(B, T)`` has the input's length; ``indices``
        ``(B, Q, L)``; ``latent`` the quantized latent the decoder read; ``loss`` zero."""
        if self.training and torch.is_grad_enabled():
            self.prepare_training()
        levels = self.num_levels(num_quantizers)
        x, _ = self.prepare_waveform(wav, sample_rate, None)
        ids = self.quantizer.encode(self._latent(self._pad_to_hop(x)), levels)
        latent = self.quantizer.decode(ids)
        recon = self._decode_latent(latent)[:, : x.shape[-1]]
        return ReconOut(recon=recon, indices=ids, loss=recon.new_zeros(()), latent=latent)
