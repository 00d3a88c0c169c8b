"""WavTokenizer (Ji et al., ICLR 2025): 24 kHz speech/audio as one token stream of 40 or 75 tokens/s.

Encoder: EnCodec's SEANet (weight-normed, reflect-padded convs, strides 4-5-5-6 for 40 tokens/s
or 2-4-5-8 for 75, a 2-layer LSTM). Bottleneck: one EMA vector quantizer (4096 x 512, k-means
initialised, dead codes respawned) from :mod:`vistok.quant`, or a residual VQ when
``num_quantizers > 1``. Decoder: the Vocos backbone with an attention "pos_net", then an iSTFT head
(``n_fft = 4 x hop``, "same" padding), so ``L`` tokens decode to exactly ``L x hop`` samples.

Behaviour the released weights depend on (kept): AdaLN condition id 0 at inference (training draws
one of ``num_conditions`` ids per step, as the original did); magnitudes capped at ``exp(x) <= 100``.
Where this differs from the original code: k-means runs only in training mode (the original also ran
it on the first inference call of an untrained model), and a respawned dead code's EMA statistics
are reset (see ``docs/architecture.md``). Neither matters for inference with released weights.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import torch

from audiotok.nn.heads import ISTFTHead
from audiotok.nn.seanet import SEANetEncoder
from audiotok.nn.vocos import VocosBackbone
from audiotok.models.codec import PAD_ID, AudioCodec
from vistok.models.base import ReconOut
from vistok.quant import ResidualVQ, VectorQuantizer


#: Encoder strides (first applied first) of the two published token rates at 24 kHz.
TOKEN_RATE_STRIDES = {40: (4, 5, 5, 6), 75: (2, 4, 5, 8)}


@dataclass
class WavTokenizerConfig:
    """Everything that defines a WavTokenizer's architecture (defaults: the published 40 tokens/s model).

    ``strides`` are in encoder order; their product is the hop (samples per token). ``n_fft``
    defaults to ``4 * hop``. ``num_quantizers > 1`` gives a residual VQ (ids ``(B, Q, L)``) with
    optional ``quantizer_dropout``. ``commitment`` weights the quantizer's own loss (the published
    recipe multiplies it by a further 1000 in the generator loss).
    """

    sample_rate: int = 24000
    strides: List[int] = field(default_factory=lambda: list(TOKEN_RATE_STRIDES[40]))
    n_filters: int = 32
    residual_layers: int = 1
    lstm_layers: int = 2
    dim: int = 512
    codebook_size: int = 4096
    num_quantizers: int = 1
    quantizer_dropout: bool = False
    commitment: float = 1.0
    ema_decay: Optional[float] = 0.99
    kmeans_init: bool = True
    kmeans_iters: int = 200
    dead_code_threshold: float = 2.0
    decoder_dim: int = 768
    decoder_intermediate_dim: int = 2304
    decoder_layers: int = 12
    num_conditions: int = 4
    attention: bool = True
    norm_groups: int = 32
    dropout: float = 0.1
    n_fft: Optional[int] = None

    def __post_init__(self):
        self.strides = [int(s) for s in self.strides]
        if not self.strides or min(self.strides) < 1:
            raise ValueError(f"strides must be positive integers, got {self.strides}")
        if self.num_quantizers < 1:
            raise ValueError(f"num_quantizers must be >= 1, got {self.num_quantizers}")
        if self.sample_rate < 1:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        if self.n_fft is None:
            self.n_fft = 4 * self.hop_length
        if self.n_fft < self.hop_length:
            raise ValueError(f"n_fft ({self.n_fft}) must be at least the hop length ({self.hop_length})")
        if self.decoder_dim % self.norm_groups:
            raise ValueError(f"decoder_dim ({self.decoder_dim}) must be divisible by norm_groups ({self.norm_groups})")

    @classmethod
    def for_token_rate(cls, token_rate: int, **overrides: Any) -> "WavTokenizerConfig":
        """The published architecture at 40 or 75 tokens/s (24 kHz), with optional overrides."""
        if token_rate not in TOKEN_RATE_STRIDES:
            raise ValueError(f"token_rate must be one of {sorted(TOKEN_RATE_STRIDES)}, got {token_rate}")
        return cls(strides=list(TOKEN_RATE_STRIDES[token_rate]), **overrides)

    @property
    def hop_length(self) -> int:
        return math.prod(self.strides)

    @property
    def token_rate(self) -> float:
        """Tokens per second (per quantizer level)."""
        return self.sample_rate / self.hop_length

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


class WavTokenizer(AudioCodec):
    """The WavTokenizer codec family: waveforms to token ids and back.

    ``encode(wav) -> ids (B, L)`` (``(B, Q, L)`` with a residual VQ), ``L = ceil(T / hop)``;
    ``decode(ids) -> wav (B, L * hop)``; ``forward(wav) -> ReconOut`` for training. Waveforms are
    mono, ``(B, T)`` or ``(B, 1, T)``, at ``config.sample_rate`` unless ``sample_rate`` is given.
    """

    family = "wavtokenizer"
    config_class = WavTokenizerConfig

    def __init__(self, config: Union[WavTokenizerConfig, Dict[str, Any]]):
        super().__init__()
        cfg = config if isinstance(config, WavTokenizerConfig) else WavTokenizerConfig(**config)
        self.config = cfg
        self.encoder = SEANetEncoder(cfg.strides, cfg.dim, cfg.n_filters, cfg.residual_layers, cfg.lstm_layers)
        vq_kwargs = dict(ema_decay=cfg.ema_decay, kmeans_init=cfg.kmeans_init, kmeans_iters=cfg.kmeans_iters,
                         dead_code_threshold=cfg.dead_code_threshold, commitment=cfg.commitment)
        if cfg.num_quantizers == 1:
            self.quantizer = VectorQuantizer(cfg.codebook_size, cfg.dim, **vq_kwargs)
        else:
            self.quantizer = ResidualVQ(cfg.num_quantizers, cfg.codebook_size, cfg.dim,
                                        dropout=cfg.quantizer_dropout, **vq_kwargs)
        self.backbone = VocosBackbone(cfg.dim, cfg.decoder_dim, cfg.decoder_intermediate_dim, cfg.decoder_layers,
                                      cfg.num_conditions, cfg.norm_groups, cfg.dropout, cfg.attention)
        self.head = ISTFTHead(cfg.decoder_dim, cfg.n_fft, cfg.hop_length)

    @property
    def multi_level(self) -> bool:
        return self.config.num_quantizers > 1

    # ----- input handling -----

    def _prepare(self, wav: torch.Tensor, sample_rate: Optional[int],
                 lengths: Optional[torch.Tensor]) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """-> ``(B, 1, T)`` float at the model rate, and per-item lengths (None when all are full)."""
        return self.prepare_waveform(wav, sample_rate, lengths)

    def _ids_from_indices(self, indices: torch.Tensor) -> torch.Tensor:
        return indices.transpose(1, 2) if self.multi_level else indices  # RVQ: (B, L, Q) -> (B, Q, L)

    # ----- public API -----

    def encode(self, wav: torch.Tensor, sample_rate: Optional[int] = None,
               lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Waveforms -> int64 ids ``(B, L)`` (``(B, Q, L)`` for a residual VQ), ``L = ceil(T / hop)``.

        ``sample_rate``: the rate of ``wav`` when it is not the model's (resampled here).
        ``lengths``: valid samples per item of a zero-padded batch; each item is then encoded
        exactly as if alone, and its ids past ``ceil(length / hop)`` are ``PAD_ID`` (-1).
        """
        x, lengths = self._prepare(wav, sample_rate, lengths)
        z, frames = self.encoder(x, lengths)
        with self.frozen_quantizer():
            ids = self._ids_from_indices(self.quantizer(z.transpose(1, 2)).indices)
        if frames is not None:
            past = torch.arange(ids.shape[-1], device=ids.device) >= frames[:, None]
            ids = ids.masked_fill(past[:, None] if self.multi_level else past, PAD_ID)
        return ids

    def _check_ids(self, ids: torch.Tensor) -> torch.Tensor:
        if isinstance(ids, torch.Tensor) and not self.multi_level and ids.dim() == 3 and ids.shape[1] == 1:
            ids = ids[:, 0]
        return self.check_ids(ids, levels=self.multi_level)

    def token_lengths(self, ids: torch.Tensor) -> torch.Tensor:
        """Valid tokens per item (trailing ``PAD_ID`` positions are padding)."""
        return self.valid_lengths(self._check_ids(ids))

    def ids_to_latent(self, ids: torch.Tensor) -> torch.Tensor:
        """ids -> the quantized latent ``(B, dim, L)`` the decoder reads."""
        return self._latent(self._check_ids(ids))

    def _latent(self, ids: torch.Tensor) -> torch.Tensor:
        if self.multi_level:
            latent = self.quantizer.decode_indices(ids.transpose(1, 2))
        else:
            latent = self.quantizer.decode_indices(ids.clamp_min(0))
        return latent.transpose(1, 2)

    def decode_latent(self, latent: torch.Tensor, cond: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Quantized latent ``(B, dim, L)`` -> waveform ``(B, L * hop)``."""
        return self.head(self.backbone(latent, cond))

    def decode(self, ids: torch.Tensor, chunk_size: Optional[int] = None, context: int = 8) -> torch.Tensor:
        """ids -> waveform ``(B, L * hop)`` at ``config.sample_rate``.

        Items with trailing ``PAD_ID`` are decoded at their own length (the decoder's attention and
        group norms see the whole sequence, so padding would change them) and zero-filled after.
        Memory grows linearly with ``L`` (the attention runs on a fused SDPA kernel, no ``L x L``
        map). ``chunk_size``: decode in windows of that many tokens when even that is too much
        (see :meth:`decode_stream`).
        """
        ids = self._check_ids(ids)
        lengths = self.valid_lengths(ids)
        if bool((lengths == ids.shape[-1]).all()):
            return self._decode_full(ids, chunk_size, context)
        hop = self.hop_length
        out = torch.zeros(ids.shape[0], ids.shape[-1] * hop, device=ids.device)
        for i, n in enumerate(lengths.tolist()):
            if n:
                out[i, : n * hop] = self._decode_full(ids[i: i + 1, ..., :n], chunk_size, context)[0]
        return out

    def _decode_full(self, ids: torch.Tensor, chunk_size: Optional[int], context: int) -> torch.Tensor:
        """Checked ids without padding -> waveform."""
        if chunk_size is None:
            return self.decode_latent(self._latent(ids))
        return torch.cat(list(self._stream(ids, chunk_size, context)), dim=-1)

    def decode_stream(self, ids: torch.Tensor, chunk_size: int, context: int = 8) -> Iterator[torch.Tensor]:
        """Yield the waveform of ``chunk_size`` tokens at a time, each decoded with up to
        ``context`` tokens on either side; the pieces concatenate to ``L * hop`` samples. Memory is
        bounded by the window, but the decoder's global attention then sees only the window, so
        the result approximates :meth:`decode` (identical when ``chunk_size >= L``)."""
        return self._stream(self._check_ids(ids), chunk_size, context)

    def _stream(self, ids: torch.Tensor, chunk_size: int, context: int) -> Iterator[torch.Tensor]:
        if chunk_size < 1 or context < 0:
            raise ValueError(f"chunk_size must be >= 1 and context >= 0, got {chunk_size}, {context}")
        hop, total = self.hop_length, ids.shape[-1]
        for start in range(0, total, chunk_size):
            end = min(total, start + chunk_size)
            lo, hi = max(0, start - context), min(total, end + context)
            wav = self.decode_latent(self._latent(ids[..., lo:hi]))
            yield wav[:, (start - lo) * hop: (end - lo) * hop]

    def forward(self, wav: torch.Tensor, sample_rate: Optional[int] = None,
                cond: Optional[torch.Tensor] = None) -> ReconOut:
        """Encode, quantize (training updates the codebook) and decode. ``recon`` is ``(B, T)``,
        cut to the input length. The AdaLN condition is drawn at random in training (as the
        published recipe does) and 0 in eval mode unless ``cond`` is given."""
        x, _ = self._prepare(wav, sample_rate, None)
        z, _ = self.encoder(x)
        out = self.quantizer(z.transpose(1, 2))
        if cond is None:
            draw = self.training and self.config.num_conditions > 1
            cond = (torch.randint(self.config.num_conditions, (1,)) if draw else torch.zeros(1, dtype=torch.long))
        cond = torch.as_tensor(cond, device=x.device).long().reshape(-1)
        latent = out.z_q.transpose(1, 2)
        recon = self.decode_latent(latent, cond)[:, : x.shape[-1]]
        stats = out.stats.merged({"condition": float(cond[0])})
        return ReconOut(recon=recon, indices=self._ids_from_indices(out.indices), loss=out.loss, latent=latent,
                        stats=stats)
