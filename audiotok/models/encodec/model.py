"""EnCodec (Défossez et al., 2022): waveforms to residual-VQ token ids and back, at 24 kHz mono
(causal) or 48 kHz stereo (non-causal, 1 s segments).

Encoder: the SEANet encoder (:mod:`audiotok.nn.seanet`, strides 2-4-5-8, 2-layer LSTM) to 128-d
frames at 75 (24 kHz) or 150 (48 kHz) per second. Bottleneck: a residual VQ of 1024-entry EMA
codebooks (:class:`vistok.quant.ResidualVQ`: k-means initialisation, decay 0.99, dead codes below a
count of 2 replaced), 32 or 16 levels, of which a target bandwidth selects the first ``n``.
Decoder: the mirror SEANet decoder (:mod:`audiotok.nn.seanet_decoder`).

Ids are ``(B, Q, L)`` int64 (``Q`` the levels used); a shorter item of a batch has ``PAD_ID`` (-1)
after its last token. Segmented models (48 kHz) code each segment of ``segment_length`` samples,
starting every ``segment_stride`` samples, on its own; the ids of consecutive segments are
concatenated along ``L`` (``segment_tokens`` per full segment) and decoding cross-fades the segments.

**Scales (48 kHz).** That model divides each segment by its loudness (RMS of the channel mean,
plus 1e-8) before encoding, and the decoder's output must be multiplied back: ids alone do not
carry the loudness. :meth:`EnCodec.encode_with_scales` returns :class:`EnCodecCodes` ``(ids,
scales, lengths)``: ``scales`` ``(B, S)`` float32, one per segment (1 past an item's last
segment), and ``lengths`` the samples per item, which fix where segments start in the ids;
``decode(*codes)`` (``decode(ids, scales, lengths)``) reproduces the official decoder's output.
Plain ``decode(ids)`` works for every model; for one that normalises, each segment then comes back
at unit RMS (a scale of 1), and the ids are split every ``segment_tokens`` (the encoder's
segmentation except for inputs just past a multiple of ``segment_stride``, where the official one has
a short last-but-one segment: pass ``lengths`` to follow it exactly).

Kept from the official code because the codes depend on it: :meth:`EnCodec.encode` finds each
level's nearest code with the official fp32 arithmetic (:func:`nearest_code_as_official`), and runs
the segments at one position across the batch together, as the official model does (batch
composition moves latents by rounding, which can decide a near-tie deep in the residual levels).
``forward`` in training quantizes with :class:`~vistok.quant.ResidualVQ`'s own search.

Where this differs from the official code, in training only: k-means runs in training mode only,
k-means-initialised codes get EMA statistics consistent with their counts, and a respawned dead code's
statistics are reset (see ``docs/architecture.md``); the quantizer loss is the mean over levels of
the commitment loss, as the official penalty is. Inference with released weights is unaffected.
"""
from __future__ import annotations

from typing import Any, Dict, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from audiotok.models.codec import PAD_ID, AudioCodec
from audiotok.models.encodec.config import EnCodecConfig
from audiotok.models.encodec.search import nearest_code_as_official
from audiotok.models.encodec.segments import (Chunk, chunks_from_samples, chunks_from_tokens, cross_fade,
                                              cross_fade_batch, groups, loudness, spans)
from audiotok.models.streaming import StreamingDecoder
from audiotok.nn.seanet import SEANetEncoder
from audiotok.nn.streaming import stream_of
from audiotok.nn.seanet_decoder import SEANetDecoder
from vistok.models.base import ReconOut
from vistok.quant import ResidualVQ
from vistok.quant.base import fp32_region


class EnCodecCodes(NamedTuple):
    """What :meth:`EnCodec.encode_with_scales` returns; ``decode(*codes)`` decodes it.

    ids: ``(B, Q, L)`` int64, ``PAD_ID`` past each item's end. scales: ``(B, S)`` float32, each
    segment's loudness (1 past an item's last segment), or None for a model that does not
    normalise. lengths: ``(B,)`` int64, samples per item at the model rate.
    """

    ids: torch.Tensor
    scales: Optional[torch.Tensor]
    lengths: torch.Tensor


class EnCodec(AudioCodec):
    """The EnCodec codec family: ``encode(wav) -> ids (B, Q, L)``, ``decode(ids) -> wav``,
    ``forward(wav) -> ReconOut`` for training.

    Waveforms: a mono model takes ``(T,)``, ``(B, T)`` or ``(B, 1, T)`` and returns ``(B, T)``; a
    model with ``C > 1`` channels takes and returns ``(B, C, T)``. Input is at ``config.sample_rate``
    unless ``sample_rate`` says otherwise (then resampled). Unsegmented models give
    ``L = ceil(T / hop)`` tokens and decode ``L * hop`` samples.
    """

    family = "encodec"
    config_class = EnCodecConfig

    def __init__(self, config: Union[EnCodecConfig, Dict[str, Any]]):
        super().__init__()
        cfg = config if isinstance(config, EnCodecConfig) else EnCodecConfig(**config)
        self.config = cfg
        layers = dict(dim=cfg.dim, n_filters=cfg.n_filters, residual_layers=cfg.residual_layers,
                      lstm_layers=cfg.lstm_layers, kernel_size=cfg.kernel_size, last_kernel_size=cfg.last_kernel_size,
                      residual_kernel_size=cfg.residual_kernel_size, dilation_base=cfg.dilation_base,
                      compress=cfg.compress, channels=cfg.channels, causal=cfg.causal, norm=cfg.norm,
                      true_skip=cfg.true_skip)
        self.encoder = SEANetEncoder(cfg.strides, **layers)
        self.quantizer = ResidualVQ(cfg.num_quantizers, cfg.codebook_size, cfg.dim, dropout=cfg.quantizer_dropout,
                                    ema_decay=cfg.ema_decay, kmeans_init=cfg.kmeans_init,
                                    kmeans_iters=cfg.kmeans_iters, dead_code_threshold=cfg.dead_code_threshold,
                                    commitment=cfg.commitment)
        self.decoder = SEANetDecoder(cfg.strides, trim_right_ratio=cfg.trim_right_ratio, **layers)

    # ----- what it is -----

    @property
    def channels(self) -> int:
        return int(self.config.channels)

    @property
    def needs_scales(self) -> bool:
        return bool(self.config.normalize)

    @property
    def bandwidths(self) -> Dict[float, int]:
        """Target bandwidth (kbps) -> residual levels it uses."""
        return {bw: self.config.levels_for_bandwidth(bw) for bw in self.config.target_bandwidths}

    def num_levels(self, num_quantizers: Optional[int] = None, bandwidth: Optional[float] = None) -> int:
        """Levels to use: ``num_quantizers`` (1..Q), the levels of a target ``bandwidth`` (kbps), or all."""
        if num_quantizers is not None and bandwidth is not None:
            raise ValueError("give num_quantizers or bandwidth, not both")
        if bandwidth is not None:
            if float(bandwidth) not in self.config.target_bandwidths:
                raise ValueError(f"bandwidth must be one of {self.config.target_bandwidths} kbps for this model, "
                                 f"got {bandwidth!r}")
            return self.config.levels_for_bandwidth(float(bandwidth))
        if num_quantizers is None:
            return self.num_codebooks
        if isinstance(num_quantizers, bool) or int(num_quantizers) != num_quantizers \
                or not 1 <= int(num_quantizers) <= self.num_codebooks:
            raise ValueError(f"num_quantizers must be an integer in 1..{self.num_codebooks}, got {num_quantizers!r}")
        return int(num_quantizers)

    # ----- input handling -----

    def _output(self, wav: torch.Tensor) -> torch.Tensor:
        return wav[:, 0] if self.config.channels == 1 else wav

    # ----- encode -----

    def encode(self, wav: torch.Tensor, sample_rate: Optional[int] = None, num_quantizers: Optional[int] = None,
               bandwidth: Optional[float] = None, lengths: Optional[torch.Tensor] = None,
               resample: bool = True) -> torch.Tensor:
        """Waveforms -> int64 ids ``(B, Q, L)``.

        ``sample_rate``: the rate of ``wav`` when it is not the model's (resampled here unless
        ``resample=False``, which makes it an error). ``num_quantizers`` or ``bandwidth`` (one of
        ``config.target_bandwidths``, kbps): how many residual levels ``Q`` (default: all).
        ``lengths``: valid samples per item of a zero-padded batch; each item is then encoded
        exactly as if alone, and its ids past its own tokens are ``PAD_ID`` (-1).
        """
        return self.encode_with_scales(wav, sample_rate, num_quantizers, bandwidth, lengths, resample).ids

    def encode_with_scales(self, wav: torch.Tensor, sample_rate: Optional[int] = None,
                           num_quantizers: Optional[int] = None, bandwidth: Optional[float] = None,
                           lengths: Optional[torch.Tensor] = None, resample: bool = True) -> EnCodecCodes:
        """:meth:`encode`, with each segment's scale and the item lengths (:class:`EnCodecCodes`):
        what ``decode`` needs to reproduce the official output of a model that normalises."""
        levels = self.num_levels(num_quantizers, bandwidth)
        x, lengths = self.prepare_waveform(wav, sample_rate, lengths, self.config.channels, resample)
        batch, samples = x.shape[0], x.shape[-1]
        item_lengths = [samples] * batch if lengths is None else lengths.tolist()
        chunks = chunks_from_samples(item_lengths, self.config)
        totals = [0] * batch
        segments = [0] * batch
        for c in chunks:
            totals[c.item] = max(totals[c.item], c.token + c.tokens)
            segments[c.item] = max(segments[c.item], c.index + 1)
        ids = torch.full((batch, levels, max(totals)), PAD_ID, dtype=torch.long, device=x.device)
        scales = (torch.ones(batch, max(segments), dtype=torch.float32, device=x.device)
                  if self.config.normalize else None)
        # One batch per segment position, as the official model runs (batch composition moves results by
        # rounding); a group norm's statistics span the whole segment, so only equal lengths share it then.
        same_length = self.config.norm == "time_group_norm"
        batches = groups(chunks, (lambda c: (c.index, c.end - c.start)) if same_length else (lambda c: c.index),
                         batch)
        with self.frozen_quantizer():
            for group in batches:
                codes, scale = self._encode_group(x, group, levels)
                for g, c in enumerate(group):
                    ids[c.item, :, c.token: c.token + c.tokens] = codes[g, :, : c.tokens]
                    if scales is not None:
                        scales[c.item, c.index] = scale[g].float()
        return EnCodecCodes(ids, scales, torch.tensor(item_lengths, dtype=torch.long, device=x.device))

    def _encode_group(self, x: torch.Tensor, group: Sequence[Chunk],
                      levels: int) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Segments of ``x`` -> ids ``(G, levels, L)`` and their scales ``(G,)`` (None without normalisation)."""
        width = max(c.end - c.start for c in group)
        if all(c.end - c.start == width for c in group):
            seg = torch.stack([x[c.item, :, c.start: c.end] for c in group])
            lengths = None
        else:
            seg = x.new_zeros(len(group), x.shape[1], width)
            for g, c in enumerate(group):
                seg[g, :, : c.end - c.start] = x[c.item, :, c.start: c.end]
            lengths = torch.tensor([c.end - c.start for c in group], device=x.device)
        scale = None
        if self.config.normalize:
            scale = loudness(seg, lengths)
            seg = seg / scale[:, None, None]
        z, _ = self.encoder(seg, lengths)
        return self._quantize(z.transpose(1, 2), levels), scale

    def _quantize(self, z: torch.Tensor, levels: int) -> torch.Tensor:
        """Channels-last latent ``(G, L, dim)`` -> ids ``(G, levels, L)``. Each level quantizes what the
        previous ones left, the residual taking away the exact code vector (the straight-through value
        of ``ResidualVQ.forward`` differs from it by rounding), and the nearest code is found with
        the official fp32 arithmetic (:func:`nearest_code_as_official`)."""
        with fp32_region(z.device):
            residual = z.reshape(-1, z.shape[-1]).float()
            codes = []
            for i in range(levels):
                codebook = self.quantizer.level(i).codebook()
                idx = nearest_code_as_official(residual, codebook)
                residual = residual - F.embedding(idx, codebook)
                codes.append(idx.reshape(z.shape[:-1]))
        return torch.stack(codes, dim=1)

    # ----- ids -----

    def ids_to_latent(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (no padding) -> the quantized latent ``(B, dim, L)``: the sum of the levels' codes."""
        ids = self.check_ids(ids)
        return self.quantizer.decode_indices(ids.transpose(1, 2)).transpose(1, 2)

    # ----- decode -----

    def decode(self, ids: torch.Tensor, scales: Optional[torch.Tensor] = None,
               lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """ids ``(B, k, L)`` (the first ``k`` levels, any ``k``) -> waveform at ``config.sample_rate``.

        Unsegmented models return ``L * hop`` samples per item. Segmented ones cross-fade their
        segments: ``segment_stride * (S - 1) + hop * tokens_of_the_last`` samples. Shorter items
        are zero-filled past their end. ``scales`` / ``lengths``: from :meth:`encode_with_scales`
        (``decode(*codes)``); without ``scales`` every segment is decoded at scale 1.
        """
        ids = self.check_ids(ids)
        token_lengths = self.valid_lengths(ids).tolist()
        if lengths is None:
            chunks = chunks_from_tokens(token_lengths, self.config)
        else:
            lengths = torch.as_tensor(lengths).long().reshape(-1)
            if lengths.shape[0] != ids.shape[0] or bool((lengths < 1).any()):
                raise ValueError(f"lengths must hold one positive sample count per item ({ids.shape[0]}), "
                                 f"got {lengths.tolist()}")
            chunks = chunks_from_samples(lengths.tolist(), self.config)
            made = [0] * ids.shape[0]
            for c in chunks:
                made[c.item] = c.token + c.tokens
            if made != token_lengths:
                raise ValueError(f"lengths {lengths.tolist()} give {made} tokens per item, the ids hold {token_lengths}")
        segments = 1 + max(c.index for c in chunks)
        if scales is not None:
            scales = torch.as_tensor(scales, device=ids.device)
            if scales.dim() != 2 or scales.shape[0] != ids.shape[0] or scales.shape[1] < segments:
                raise ValueError(f"scales must be (B, segments) = ({ids.shape[0]}, {segments}) for these ids, "
                                 f"got shape {tuple(scales.shape)}")
        frames: Dict[Tuple[int, int], torch.Tensor] = {}
        for group in groups(chunks, lambda c: c.tokens, ids.shape[0]):
            part = torch.stack([ids[c.item, :, c.token: c.token + c.tokens] for c in group])
            latent = self.quantizer.decode_indices(part.transpose(1, 2)).transpose(1, 2)
            wav = self.decoder(latent)
            for g, c in enumerate(group):
                frame = wav[g]
                if scales is not None:
                    frame = frame * scales[c.item, c.index].to(frame.dtype)
                frames[c.item, c.index] = frame
        per_item = []
        for item in range(ids.shape[0]):
            pieces = [frames[item, i] for i in range(1 + max(c.index for c in chunks if c.item == item))]
            per_item.append(pieces[0] if self.config.segment is None else cross_fade(pieces, self.config.segment_stride))
        longest = max(p.shape[-1] for p in per_item)
        out = per_item[0].new_zeros(ids.shape[0], self.config.channels, longest)
        for item, wav in enumerate(per_item):
            out[item, :, : wav.shape[-1]] = wav
        return self._output(out)

    def streaming_decoder(self):
        """Decode ids chunk by chunk (:class:`~audiotok.models.streaming.StreamingDecoder`), equal to
        :meth:`decode` of all of them within float rounding; causal unsegmented models only (24 kHz).
        The stem's reflect padding delays the first output until 7 frames have come (93 ms at
        24 kHz); after that every frame gives its ``hop_length`` samples at once."""
        if not self.config.causal or self.config.segment is not None:
            raise ValueError("streaming decode needs a causal, unsegmented EnCodec (the 24 kHz model); "
                             "this one is " + ("segmented" if self.config.segment is not None else "non-causal"))
        return StreamingDecoder(self, stream_of(self.decoder), self.ids_to_latent, self._output)

    # ----- training -----

    def forward(self, wav: torch.Tensor, sample_rate: Optional[int] = None, num_quantizers: Optional[int] = None,
                bandwidth: Optional[float] = None) -> ReconOut:
        """Encode, quantize (training updates the codebooks) and decode, segment by segment as
        :meth:`encode` does. ``recon`` has the input's length (``(B, T)`` mono, ``(B, C, T)``
        otherwise); ``loss`` is the commitment loss averaged over the levels used and the segments;
        ``indices`` are the ids ``(B, Q, L)`` (-1 for levels that quantizer dropout skipped or that
        ``num_quantizers`` / ``bandwidth`` leave out). With the quantizer in eval mode the ids and
        the code vectors decoded are :meth:`encode`'s (the official search), so the output is the
        official ``forward``'s."""
        fixed = None if num_quantizers is None and bandwidth is None else self.num_levels(num_quantizers, bandwidth)
        x, _ = self.prepare_waveform(wav, sample_rate, None, self.config.channels)
        pieces, ids, latents, losses = [], [], [], []
        stats = None
        for start, end in spans(x.shape[-1], self.config):
            seg = x[..., start:end]
            scale = loudness(seg, None) if self.config.normalize else None
            if scale is not None:
                seg = seg / scale[:, None, None]
            z, _ = self.encoder(seg)
            out = self.quantizer(z.transpose(1, 2), num_levels=fixed)
            levels = (out.indices.reshape(-1, self.num_codebooks)[0] >= 0).sum()
            losses.append(out.loss / levels)
            latent, codes = out.z_q.transpose(1, 2), out.indices.transpose(1, 2)
            if not self.quantizer.training:  # evaluation: the ids and code vectors encode gives
                codes = codes.clone()
                codes[:, : codes.shape[1] if fixed is None else fixed] = self._quantize(
                    z.transpose(1, 2), self.num_codebooks if fixed is None else fixed)
                latent = self.quantizer.decode_indices(codes.transpose(1, 2)).transpose(1, 2).to(latent.dtype)
            y = self.decoder(latent)
            pieces.append(y if scale is None else y * scale[:, None, None])
            ids.append(codes)
            latents.append(latent)
            stats = out.stats if stats is None else stats
        recon = pieces[0] if self.config.segment is None else cross_fade_batch(pieces, self.config.segment_stride)
        recon = self._output(recon[..., : x.shape[-1]])
        loss = torch.stack(losses).mean()
        return ReconOut(recon=recon, indices=torch.cat(ids, -1), loss=loss, latent=torch.cat(latents, -1),
                        stats=stats.merged({"segments": float(len(pieces))}))
