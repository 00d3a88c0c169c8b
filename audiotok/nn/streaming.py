"""Chunk-by-chunk inference through causal convolutional stacks, equal to running the stack once on
the whole signal.

A :class:`Stream` holds one layer's state: ``step(x)`` takes the next samples ``(B, C, n)`` and
returns the outputs they complete, ``flush()`` returns what only the end of the signal completes.
Concatenating every ``step`` output and the ``flush`` output gives the layer's one-shot output (within
float rounding: overlap-adds and recurrences are summed in another order).

Exactness has one cost at the start: a causal convolution whose left padding is a *reflection*
(SEANet's, as EnCodec 24 kHz has it) computes its first outputs from samples ``1..pad`` of the
input, so it emits nothing until it has seen more than ``pad`` samples; from then on each input
sample gives its output at once. Zero (``constant``) left padding starts at once.

:func:`stream_of` builds the stream of a module from builders registered per module class
(:func:`register_stream`); the SEANet layers of :mod:`audiotok.nn.seanet` and
:mod:`audiotok.nn.seanet_decoder` are registered here, and other families register their own layers.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from audiotok.nn.seanet import EncoderStage, PaddedConv1d, ResidualUnit, SEANetEncoder
from audiotok.nn.seanet_decoder import DecoderStage, PaddedConvTranspose1d, SEANetDecoder


class Stream:
    """One layer's streaming state (see the module docstring). Tensors are ``(B, C, n)``; a step
    may return ``n = 0`` samples."""

    def step(self, x: torch.Tensor) -> Optional[torch.Tensor]:
        raise NotImplementedError

    def flush(self) -> Optional[torch.Tensor]:
        """What the end of the signal completes (None: nothing)."""
        return None


def _cat(a: Optional[torch.Tensor], b: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    if a is None or a.shape[-1] == 0:
        return b
    if b is None or b.shape[-1] == 0:
        return a
    return torch.cat([a, b], -1)


def _has(x: Optional[torch.Tensor]) -> bool:
    return x is not None and x.shape[-1] > 0


class Pointwise(Stream):
    """A function of each sample alone (an activation): no state."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]):
        self.fn = fn

    def step(self, x):
        return self.fn(x) if _has(x) else None


class Chain(Stream):
    """Streams applied one after the other."""

    def __init__(self, streams: Sequence[Stream]):
        self.streams: List[Stream] = list(streams)

    def step(self, x):
        for s in self.streams:
            if not _has(x):
                return None
            x = s.step(x)
        return x

    def flush(self):
        x = None
        for s in self.streams:
            x = _cat(s.step(x) if _has(x) else None, s.flush())
        return x


class Sum(Stream):
    """The sum of two branches fed the same input; each branch's outputs wait for the other's."""

    def __init__(self, a: Stream, b: Stream):
        self.a, self.b = a, b
        self.pending_a: Optional[torch.Tensor] = None
        self.pending_b: Optional[torch.Tensor] = None

    def _emit(self, ya, yb):
        self.pending_a, self.pending_b = _cat(self.pending_a, ya), _cat(self.pending_b, yb)
        if not (_has(self.pending_a) and _has(self.pending_b)):
            return None
        m = min(self.pending_a.shape[-1], self.pending_b.shape[-1])
        out = self.pending_a[..., :m] + self.pending_b[..., :m]
        self.pending_a, self.pending_b = self.pending_a[..., m:], self.pending_b[..., m:]
        return out

    def step(self, x):
        return self._emit(self.a.step(x), self.b.step(x)) if _has(x) else None

    def flush(self):
        out = self._emit(self.a.flush(), self.b.flush())
        if _has(self.pending_a) or _has(self.pending_b):
            raise RuntimeError("streaming: the two branches of a sum ended with different lengths")
        return out


class Identity(Stream):
    def step(self, x):
        return x


class CausalConvStream(Stream):
    """A causal ``PaddedConv1d``-like layer: ``conv`` (kernel ``k_eff`` after dilation, stride ``s``)
    over the input left-padded by ``k_eff - s`` samples (``pad_mode`` ``reflect`` or ``constant``)
    and right-padded at the end (by reflection, or zeros in ``constant`` mode) to complete the last frame."""

    def __init__(self, conv: Callable[[torch.Tensor], torch.Tensor], kernel: int, stride: int, pad_mode: str,
                 one_shot: Callable[[torch.Tensor], torch.Tensor]):
        if pad_mode not in ("reflect", "constant"):
            raise ValueError(f"pad_mode must be 'reflect' or 'constant', got {pad_mode!r}")
        if stride > 1 and kernel < 2 * stride:
            # the reflected right padding must come from samples still held in the buffer
            raise ValueError(f"streaming needs kernel >= 2 * stride for stride > 1, got kernel {kernel}, stride {stride}")
        self.conv, self.kernel, self.stride, self.pad_mode, self.one_shot = conv, kernel, stride, pad_mode, one_shot
        self.pad = kernel - stride
        self.seen = 0
        self.pending: Optional[torch.Tensor] = None  # input before the left padding could be formed
        self.buffer: Optional[torch.Tensor] = None

    def _emit(self):
        length = self.buffer.shape[-1]
        if length < self.kernel:
            return None
        frames = (length - self.kernel) // self.stride + 1
        y = self.conv(self.buffer[..., : (frames - 1) * self.stride + self.kernel])
        self.buffer = self.buffer[..., frames * self.stride:]
        return y

    def step(self, x):
        if not _has(x):
            return None
        self.seen += x.shape[-1]
        if self.buffer is None:
            self.pending = _cat(self.pending, x)
            if self.pad_mode == "reflect" and self.pending.shape[-1] <= self.pad:
                return None
            self.buffer = F.pad(self.pending, (self.pad, 0), mode=self.pad_mode)
            self.pending = None
        else:
            self.buffer = torch.cat([self.buffer, x], -1)
        return self._emit()

    def flush(self):
        if self.buffer is None:  # too short to start: the one-shot layer's own handling of short inputs
            return None if self.pending is None else self.one_shot(self.pending)
        extra = -(-self.seen // self.stride) * self.stride - self.seen
        if extra:
            self.buffer = F.pad(self.buffer, (0, extra), mode="reflect" if self.pad_mode == "reflect" else "constant")
        return self._emit()


class ConvTransposeStream(Stream):
    """A ``PaddedConvTranspose1d``: each chunk's output overlap-adds its last ``k - s`` samples onto
    the next chunk's first; ``trim_left`` samples are dropped at the start and ``trim_right`` at the end."""

    def __init__(self, layer: PaddedConvTranspose1d):
        if layer.norm is not None:
            raise ValueError("streaming: a transposed convolution followed by a group norm over time cannot stream")
        self.layer = layer
        conv = layer.conv
        self.overlap = conv.kernel_size[0] - conv.stride[0]
        self.to_drop = layer.trim_left
        self.tail: Optional[torch.Tensor] = None

    def _drop(self, y):
        if self.to_drop and _has(y):
            cut = min(self.to_drop, y.shape[-1])
            y, self.to_drop = y[..., cut:], self.to_drop - cut
        return y

    def step(self, x):
        if not _has(x):
            return None
        y = self.layer.conv(x)
        if self.tail is not None:
            bias = self.layer.conv.bias
            head = y[..., : self.overlap] + self.tail
            if bias is not None:  # both chunks added the bias over the overlap
                head = head - bias[:, None]
            y = torch.cat([head, y[..., self.overlap:]], -1)
        out, self.tail = y[..., : y.shape[-1] - self.overlap], y[..., y.shape[-1] - self.overlap:]
        return self._drop(out)

    def flush(self):
        if self.tail is None:
            return None
        return self._drop(self.tail[..., : self.overlap - self.layer.trim_right])


class LSTMSkipStream(Stream):
    """``x + LSTM(x)`` over channels-first input, carrying the LSTM's state between chunks."""

    def __init__(self, lstm: nn.LSTM):
        self.lstm = lstm
        self.state = None

    def step(self, x):
        if not _has(x):
            return None
        y, self.state = self.lstm(x.transpose(1, 2), self.state)
        return x + y.transpose(1, 2)


_BUILDERS: Dict[type, Callable[[nn.Module], Stream]] = {}


def register_stream(cls: type, builder: Callable[[nn.Module], Stream]) -> None:
    """Make :func:`stream_of` build ``builder(module)`` for modules of class ``cls``."""
    _BUILDERS[cls] = builder


def stream_of(module: nn.Module) -> Stream:
    """The :class:`Stream` of ``module`` (a registered class, or a subclass of one); an error for a
    module that cannot stream."""
    for cls in type(module).__mro__:
        if cls in _BUILDERS:
            return _BUILDERS[cls](module)
    raise TypeError(f"streaming: no stream for {type(module).__name__} (register one with register_stream)")


def _padded_conv(layer: PaddedConv1d) -> Stream:
    if layer.pad_right or layer.norm is not None:
        raise ValueError("streaming needs causal convolutions without a group norm "
                         "(this one pads on the right or normalises over time)")
    conv = layer.conv
    kernel = (conv.kernel_size[0] - 1) * conv.dilation[0] + 1
    return CausalConvStream(conv, kernel, conv.stride[0], layer.pad_mode, layer)


def _residual_unit(unit: ResidualUnit) -> Stream:
    main = Chain([Pointwise(F.elu), stream_of(unit.conv1), Pointwise(F.elu), stream_of(unit.conv2)])
    return Sum(Identity() if unit.shortcut is None else stream_of(unit.shortcut), main)


def _encoder_stage(stage: EncoderStage) -> Stream:
    return Chain([stream_of(u) for u in stage.res] + [Pointwise(F.elu), stream_of(stage.down)])


def _decoder_stage(stage: DecoderStage) -> Stream:
    return Chain([Pointwise(F.elu), stream_of(stage.up)] + [stream_of(u) for u in stage.res])


def _seanet(model) -> Stream:
    parts = [stream_of(model.stem)]
    lstm = [] if model.lstm is None else [LSTMSkipStream(model.lstm)]
    if isinstance(model, SEANetEncoder):
        parts += [stream_of(s) for s in model.stages] + lstm
    else:
        parts += lstm + [stream_of(s) for s in model.stages]
    return Chain(parts + [Pointwise(F.elu), stream_of(model.proj)])


register_stream(PaddedConv1d, _padded_conv)
register_stream(PaddedConvTranspose1d, ConvTransposeStream)
register_stream(ResidualUnit, _residual_unit)
register_stream(EncoderStage, _encoder_stage)
register_stream(DecoderStage, _decoder_stage)
register_stream(SEANetEncoder, _seanet)
register_stream(SEANetDecoder, _seanet)
