"""Streaming decode for causal codecs: ids in chunks of frames, waveform out as it is completed.

``decoder = codec.streaming_decoder()``; ``decoder.step(ids_chunk)`` for each chunk ``(B, k, n)``
(the same ``k`` levels every time, no ``PAD_ID``), then ``decoder.flush()``: the concatenated
outputs equal ``codec.decode(all_ids)`` within float rounding (see :mod:`audiotok.nn.streaming` for
why the first output can wait a few frames).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from audiotok.nn.streaming import Stream


class StreamingDecoder:
    """One stream of ids through a codec's causal decoder (make a new one per stream).

    ``ids_to_latent``: checked ids ``(B, k, n)`` -> latent ``(B, D, n)``; ``stream``: the decoder's
    :class:`~audiotok.nn.streaming.Stream`; ``output``: ``(B, C, n)`` -> what ``decode`` returns
    (``(B, n)`` for mono).
    """

    def __init__(self, codec, stream: Stream, ids_to_latent: Callable[[torch.Tensor], torch.Tensor],
                 output: Callable[[torch.Tensor], torch.Tensor]):
        self.codec, self.stream, self.ids_to_latent, self.output = codec, stream, ids_to_latent, output
        self.levels: Optional[int] = None
        self.batch: Optional[int] = None
        self.frames = 0
        self.samples = 0
        self.closed = False
        self._like: Optional[torch.Tensor] = None  # dtype and device of the outputs

    def _empty(self, like: torch.Tensor) -> torch.Tensor:
        return self.output(like.new_zeros(self.batch, self.codec.channels, 0))

    def step(self, ids: torch.Tensor) -> torch.Tensor:
        """The next ``n`` frames of ids -> the samples they complete (possibly none)."""
        if self.closed:
            raise RuntimeError("streaming decoder: step after flush (make a new one per stream)")
        ids = self.codec.check_ids(ids)
        if bool((ids < 0).any()):
            raise ValueError("streaming decoder: ids chunks cannot hold PAD_ID (-1); stream each item's own ids")
        if self.levels is None:
            self.levels, self.batch = ids.shape[1], ids.shape[0]
        elif ids.shape[:2] != (self.batch, self.levels):
            raise ValueError(f"streaming decoder: every chunk must be (B, k, n) = ({self.batch}, {self.levels}, n) "
                             f"as the first was, got {tuple(ids.shape)}")
        self.frames += ids.shape[-1]
        latent = self.ids_to_latent(ids)
        self._like = latent
        wav = self.stream.step(latent)
        if wav is None:
            return self._empty(latent)
        self.samples += wav.shape[-1]
        return self.output(wav)

    def flush(self) -> torch.Tensor:
        """The samples only the end of the stream completes; the stream is closed after it."""
        if self.closed:
            raise RuntimeError("streaming decoder: flushed twice")
        self.closed = True
        wav = self.stream.flush()
        if wav is None:
            if self._like is None:
                raise ValueError("streaming decoder: flush before any ids")
            return self._empty(self._like)
        self.samples += wav.shape[-1]
        return self.output(wav)
