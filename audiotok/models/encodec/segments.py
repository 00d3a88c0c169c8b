"""How a segmented EnCodec (48 kHz: 1 s segments, 1 % overlap) cuts waveforms and ids into the
pieces it codes independently, batches them, scales them and cross-fades them back."""
from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch


class Chunk(NamedTuple):
    """One independently coded piece of one item of a batch."""

    item: int
    index: int  # segment number within the item
    start: int  # first sample
    end: int  # one past the last sample
    token: int  # first token in the item's ids
    tokens: int


def spans(samples: int, config) -> List[Tuple[int, int]]:
    """Sample spans ``[start, end)`` coded independently for an input of ``samples``."""
    length, stride = config.segment_length, config.segment_stride
    if length is None:
        return [(0, samples)]
    return [(start, min(start + length, samples)) for start in range(0, samples, stride)]


def chunks_from_samples(lengths: Sequence[int], config) -> List[Chunk]:
    """The pieces items of ``lengths`` samples are coded in (the encoder's segmentation)."""
    hop = config.hop_length
    chunks = []
    for item, n in enumerate(lengths):
        token = 0
        for index, (start, end) in enumerate(spans(int(n), config)):
            tokens = -(-(end - start) // hop)
            chunks.append(Chunk(item, index, start, end, token, tokens))
            token += tokens
    return chunks


def chunks_from_tokens(token_lengths: Sequence[int], config) -> List[Chunk]:
    """The regular split of ids: every ``segment_tokens`` (all at once when unsegmented)."""
    per = config.segment_tokens
    stride, hop = config.segment_stride or 0, config.hop_length
    chunks = []
    for item, n in enumerate(token_lengths):
        n = int(n)
        starts = [0] if per is None else list(range(0, n, per))
        for index, token in enumerate(starts):
            tokens = n - token if per is None else min(per, n - token)
            start = index * stride
            chunks.append(Chunk(item, index, start, start + tokens * hop, token, tokens))
    return chunks


def groups(chunks: Sequence[Chunk], key, size: int) -> List[List[Chunk]]:
    """Chunks with equal ``key`` batched together, at most ``size`` per batch, in order."""
    by_key: Dict[Any, List[Chunk]] = {}
    for chunk in chunks:
        by_key.setdefault(key(chunk), []).append(chunk)
    return [group[i: i + size] for group in by_key.values() for i in range(0, len(group), size)]


def loudness(x: torch.Tensor, lengths: Optional[torch.Tensor]) -> torch.Tensor:
    """``(G, C, T)`` -> ``(G,)``: RMS of the channel mean over the valid samples, plus 1e-8."""
    mix = x.mean(dim=1)
    power = mix.pow(2).mean(-1) if lengths is None else mix.pow(2).sum(-1) / lengths.to(x.dtype)
    return power.sqrt() + 1e-8


def cross_fade(pieces: List[torch.Tensor], stride: int) -> torch.Tensor:
    """Overlap-add of decoded ``(C, T)`` segments starting every ``stride`` samples, each weighted by
    a triangle peaking mid-segment (sized on the first segment), normalised by the summed weights."""
    first = pieces[0]
    n = first.shape[-1]
    t = torch.linspace(0, 1, n + 2, device=first.device, dtype=first.dtype)[1:-1]
    weight = torch.minimum(t, 1 - t)
    total = stride * (len(pieces) - 1) + pieces[-1].shape[-1]
    out = first.new_zeros(first.shape[0], total)
    norm = first.new_zeros(total)
    for i, piece in enumerate(pieces):
        start, size = i * stride, piece.shape[-1]
        out[:, start: start + size] += weight[:size] * piece
        norm[start: start + size] += weight[:size]
    return out / norm


def cross_fade_batch(pieces: List[torch.Tensor], stride: int) -> torch.Tensor:
    """:func:`cross_fade` on ``(B, C, T)`` pieces (channels and batch folded together)."""
    b, c = pieces[0].shape[:2]
    return cross_fade([p.reshape(b * c, -1) for p in pieces], stride).reshape(b, c, -1)
