"""What the audio codec families share: the contract's audio members read from the config, the
checks on waveforms and ids, and inference through a training-time quantizer.

A codec's config carries ``sample_rate``, ``hop_length`` (samples per token position),
``token_rate``, ``num_quantizers`` and ``codebook_size``; its quantizer is ``self.quantizer``. Ids
are int64 with ``PAD_ID`` (-1) after the last token of a shorter item of a batch.
"""
from __future__ import annotations

import contextlib
from typing import Dict, List, Optional, Tuple

import torch

from audiotok.dsp import resample as resample_audio
from vistok.models.base import Tokenizer

PAD_ID = -1  # token id past the end of a shorter item in a batch



def group_by_length(lengths: List[int]) -> Dict[int, List[int]]:
    """Item indices grouped by length, in first-seen order."""
    out: Dict[int, List[int]] = {}
    for item, n in enumerate(lengths):
        out.setdefault(int(n), []).append(item)
    return out

class AudioCodec(Tokenizer):
    """Base of the audio codec families (``modality = "audio"``)."""

    modality = "audio"

    @property
    def sample_rate(self) -> int:
        return int(self.config.sample_rate)

    @property
    def hop_length(self) -> int:
        """Waveform samples per token position."""
        return int(self.config.hop_length)

    @property
    def token_rate(self) -> float:
        return float(self.config.token_rate)

    @property
    def num_codebooks(self) -> int:
        return int(self.config.num_quantizers)

    @property
    def channels(self) -> int:
        """Audio channels of the waveforms it codes (1: mono)."""
        return 1

    @property
    def needs_scales(self) -> bool:
        """Whether decoding the ids alone loses the input's loudness (a codec that normalises
        segments before coding, such as EnCodec 48 kHz, returns the scales separately)."""
        return False

    def streaming_decoder(self):
        """A :class:`audiotok.models.streaming.StreamingDecoder` for this codec; an error for a codec
        whose decoder is not causal."""
        raise ValueError(f"{type(self).__name__} does not decode in streaming mode (its decoder is not causal)")

    def token_quantizer(self) -> torch.nn.Module:
        return self.quantizer

    @contextlib.contextmanager
    def frozen_quantizer(self):
        """Inference through the quantizer: no EMA, k-means or dead-code updates, no dropout."""
        was = self.quantizer.training
        self.quantizer.eval()
        try:
            yield
        finally:
            self.quantizer.train(was)

    def prepare_waveform(self, wav: torch.Tensor, sample_rate: Optional[int], lengths, channels: int = 1,
                         resample: bool = True) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``wav`` -> ``(B, channels, T)`` float at the model rate, and valid samples per item (None
        when all are full). Mono takes ``(T,)``, ``(B, T)`` or ``(B, 1, T)``; more channels
        ``(B, C, T)``. ``sample_rate``: the input's rate, resampled to the model's (an error
        instead when ``resample`` is False); ``lengths`` follow the resampling."""
        if not isinstance(wav, torch.Tensor) or not torch.is_floating_point(wav):
            raise TypeError(f"wav must be a floating-point tensor, got {getattr(wav, 'dtype', type(wav))}")
        if channels == 1:
            if wav.dim() == 1:
                wav = wav[None]
            elif wav.dim() == 3:
                if wav.shape[1] != 1:
                    raise ValueError(f"wav must be mono (B, 1, T) for this model; got {wav.shape[1]} channels")
                wav = wav[:, 0]
            elif wav.dim() != 2:
                raise ValueError(f"wav must be (T,), (B, T) or (B, 1, T), got shape {tuple(wav.shape)}")
            wav = wav[:, None]
        elif wav.dim() != 3 or wav.shape[1] != channels:
            raise ValueError(f"wav must be (B, {channels}, T) for this {channels}-channel model, "
                             f"got shape {tuple(wav.shape)}")
        if wav.shape[-1] == 0:
            raise ValueError("wav has no samples")
        if not bool(torch.isfinite(wav).all()):
            raise ValueError("wav contains NaN or infinite samples")
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=wav.device).long().reshape(-1)
            if lengths.shape[0] != wav.shape[0]:
                raise ValueError(f"lengths has {lengths.shape[0]} entries for a batch of {wav.shape[0]}")
            if bool((lengths < 1).any()) or bool((lengths > wav.shape[-1]).any()):
                raise ValueError(f"lengths must be in 1..{wav.shape[-1]}, got {lengths.tolist()}")
        if sample_rate is not None and int(sample_rate) != self.sample_rate:
            if not resample:
                raise ValueError(f"sample_rate {sample_rate} differs from the model's {self.sample_rate} Hz "
                                 "and resampling is off (resample=False)")
            orig = int(sample_rate)
            wav = resample_audio(wav, orig, self.sample_rate)
            if lengths is not None:
                lengths = torch.clamp(-(-lengths * self.sample_rate // orig), max=wav.shape[-1])
        if lengths is not None and bool((lengths == wav.shape[-1]).all()):
            lengths = None
        return wav, lengths

    def check_ids(self, ids: torch.Tensor, levels: bool = True) -> torch.Tensor:
        """``ids`` as int64 after checking them: ``(B, Q, L)`` with 1 <= Q <= ``num_codebooks``
        (``(B, L)`` when ``levels`` is False), values in ``0..codebook_size - 1`` or ``PAD_ID``."""
        if not isinstance(ids, torch.Tensor) or ids.dtype not in (torch.int32, torch.int64):
            raise TypeError(f"ids must be integer token ids, got {getattr(ids, 'dtype', type(ids))}")
        if ids.dim() != (3 if levels else 2):
            raise ValueError(f"ids must be {'(B, Q, L)' if levels else '(B, L)'} for this model, "
                             f"got shape {tuple(ids.shape)}")
        if levels and not 1 <= ids.shape[1] <= self.num_codebooks:
            raise ValueError(f"ids have {ids.shape[1]} levels, this model has 1..{self.num_codebooks}")
        if ids.shape[-1] == 0:
            raise ValueError("ids hold no tokens")
        size = int(self.config.codebook_size)
        if bool((ids >= size).any()) or bool((ids < PAD_ID).any()):
            raise ValueError(f"ids must be in 0..{size - 1} (or {PAD_ID} for padding)")
        return ids.long()

    def decode_each_length(self, ids: torch.Tensor) -> torch.Tensor:
        """Checked ids -> waveform ``(B, L * hop_length)``: items padded with ``PAD_ID`` past their
        ``n`` tokens are decoded as if alone from those ``n`` (zeros past ``n * hop_length``), items of
        one length together. Needs the codec's ``ids_to_latent`` and ``_decode_latent``."""
        lengths = self.valid_lengths(ids).tolist()
        if all(n == ids.shape[-1] for n in lengths):
            return self._decode_latent(self.ids_to_latent(ids))
        out = None
        for count, items in group_by_length(lengths).items():
            wav = self._decode_latent(self.ids_to_latent(ids[items, :, :count]))
            if out is None:
                out = wav.new_zeros(ids.shape[0], ids.shape[-1] * self.hop_length)
            out[items, : wav.shape[-1]] = wav
        return out

    @staticmethod
    def valid_lengths(ids: torch.Tensor) -> torch.Tensor:
        """Valid tokens per item of checked ids: ``PAD_ID`` only as trailing padding, the same on
        every level; every item has at least one token."""
        valid = ids >= 0
        first = valid[:, 0] if ids.dim() == 3 else valid
        lengths = first.sum(-1)
        trailing = torch.arange(ids.shape[-1], device=ids.device) < lengths[:, None]
        if not bool((valid == (trailing[:, None] if ids.dim() == 3 else trailing)).all()):
            raise ValueError("ids: PAD_ID (-1) is only allowed as trailing padding, the same on every level")
        if bool((lengths == 0).any()):
            raise ValueError("ids: an item has no tokens")
        return lengths

    def token_lengths(self, ids: torch.Tensor) -> torch.Tensor:
        """Valid tokens per item (trailing ``PAD_ID`` positions are padding)."""
        return self.valid_lengths(self.check_ids(ids))


def require_plain_codec(model, where: str) -> "AudioCodec":
    """``model`` if it is a mono :class:`AudioCodec` whose ids alone decode (what files of ids and
    the file-based evaluation carry); else an error naming ``where`` and the way out."""
    from vistok.errors import InputError

    if not isinstance(model, AudioCodec):
        raise InputError(f"{where}: {type(model).__name__} is not an audiotok.models.codec.AudioCodec")
    if model.channels != 1 or model.needs_scales:
        raise InputError(f"{where}: this handles mono codecs whose ids alone decode; this one has "
                         f"{model.channels} channel(s){' and per-segment scales' if model.needs_scales else ''} "
                         "(use the Python API: encode_with_scales / decode(*codes))")
    return model
