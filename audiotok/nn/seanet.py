"""The SEANet convolutional encoder of EnCodec, as WavTokenizer and EnCodec configure it.

Every convolution is reflect-padded so that a signal of ``n`` samples gives ``ceil(n / stride)``
frames (the last frame is completed with extra right padding; ``pad_mode="constant"`` pads with zeros
instead, as Mimi does, and ``"replicate"`` repeats the end samples). By default (WavTokenizer)
convolutions are weight-normed and the padding is split between both ends; ``causal=True`` puts it
all on the left (EnCodec 24 kHz), and ``norm="time_group_norm"`` replaces weight norm by a
one-group ``GroupNorm`` after each convolution (EnCodec 48 kHz). Batched input of unequal lengths can
carry ``lengths``: each item is then padded as if it were alone, so its frames do not depend on what
it was batched with (the LSTM runs forward in time, so trailing padding never reaches earlier frames
either). A group norm's statistics span the whole padded signal, so ``lengths`` needs a model
without one.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


#: What follows each convolution: torch weight norm over the output channels (the default), a
#: ``GroupNorm(1, channels)`` on the convolution's output (statistics over channels and time), or nothing.
NORMS = ("weight_norm", "time_group_norm", "none")
#: How a convolution's input is padded: reflection (EnCodec's default), zeros, or the end samples repeated.
PAD_MODES = ("reflect", "constant", "replicate")


def _ceil_div(a, b):
    return -(-a // b)


def check_norm(norm: str, causal: bool = False) -> str:
    """``norm`` if it is one of :data:`NORMS` (a group norm over time cannot be causal)."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if causal and norm == "time_group_norm":
        raise ValueError("norm='time_group_norm' normalises over the whole signal, so it cannot be causal")
    return norm


def check_pad_mode(pad_mode: str) -> str:
    """``pad_mode`` if it is one of :data:`PAD_MODES`."""
    if pad_mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
    return pad_mode


class PaddedConv1d(nn.Module):
    """A ``Conv1d`` with EnCodec's padding: ``k_eff - stride`` samples split between the ends (the
    larger half on the left), or all on the left when ``causal``, plus what completes the last frame
    on the right; reflect mode, zero-extending inputs too short to reflect (the original behaviour),
    or ``pad_mode`` (:data:`PAD_MODES`). ``norm``: see :data:`NORMS` (weight norm by default)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1,
                 causal: bool = False, norm: str = "weight_norm", pad_mode: str = "reflect", bias: bool = True):
        super().__init__()
        check_norm(norm, causal)
        self.pad_mode = check_pad_mode(pad_mode)
        conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride, dilation=dilation, bias=bias)
        self.conv = weight_norm(conv) if norm == "weight_norm" else conv
        self.norm = nn.GroupNorm(1, out_channels) if norm == "time_group_norm" else None
        self.stride = stride
        total = (kernel_size - 1) * dilation + 1 - stride
        self.pad_right = 0 if causal else total // 2
        self.pad_left = total - self.pad_right

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return _ceil_div(lengths, self.stride)

    def _extra(self, n):
        return _ceil_div(n, self.stride) * self.stride - n

    def _pad_uniform(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        left, right = self.pad_left, self.pad_right + self._extra(n)
        if self.pad_mode != "reflect":
            return F.pad(x, (left, right), mode=self.pad_mode)
        widest = max(left, right)
        if n > widest:
            return F.pad(x, (left, right), mode="reflect")
        grow = widest - n + 1
        padded = F.pad(F.pad(x, (0, grow)), (left, right), mode="reflect")
        return padded[..., : padded.shape[-1] - grow]

    def _pad_per_item(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Reflect-pad every item at its own length (gather indices), zeros beyond; in constant mode,
        zeros past each item's length."""
        n = lengths.to(x.device).long()[:, None]
        if self.pad_mode == "constant":
            inside = torch.arange(x.shape[-1], device=x.device)[None] < n
            return self._pad_uniform(x * inside[:, None, :].to(x.dtype))
        right = self.pad_right + self._extra(n)
        widest = torch.clamp(right, min=self.pad_left)
        span = torch.where(n > widest, n, widest + 1)  # the zero-extended length of short items
        total = self.pad_left + x.shape[-1] + self.pad_right + self._extra(x.shape[-1])
        j = torch.arange(total, device=x.device)[None] - self.pad_left
        idx = torch.where(j < 0, -j, torch.where(j < span, j, 2 * (span - 1) - j))
        keep = (idx < n) & (j < n + right)
        idx = idx.clamp(0, x.shape[-1] - 1)
        out = x.gather(-1, idx[:, None, :].expand(-1, x.shape[1], -1))
        return out * keep[:, None, :].to(x.dtype)

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        if lengths is None or bool((lengths == x.shape[-1]).all()):
            y = self.conv(self._pad_uniform(x))
        elif self.norm is not None:
            raise ValueError("lengths: a convolution followed by a group norm over time cannot run items of "
                             "unequal lengths in one padded batch (the padding would enter the statistics)")
        elif self.pad_mode == "replicate":
            raise ValueError("lengths: a convolution with replicate padding cannot run items of unequal lengths "
                             "in one padded batch (each item's last sample would have to be repeated)")
        else:
            y = self.conv(self._pad_per_item(x, lengths))
        return y if self.norm is None else self.norm(y)


class ResidualUnit(nn.Module):
    """ELU -> conv (k, dilation) to ``dim // compress`` -> ELU -> 1x1 conv back, plus a 1x1-conv shortcut."""

    def __init__(self, dim: int, kernel_size: int = 3, dilation: int = 1, compress: int = 2,
                 conv_shortcut: bool = True, causal: bool = False, norm: str = "weight_norm", pad_mode: str = "reflect"):
        super().__init__()
        hidden = dim // compress
        pads = dict(causal=causal, norm=norm, pad_mode=pad_mode)
        self.conv1 = PaddedConv1d(dim, hidden, kernel_size, dilation=dilation, **pads)
        self.conv2 = PaddedConv1d(hidden, dim, 1, **pads)
        self.shortcut = PaddedConv1d(dim, dim, 1, **pads) if conv_shortcut else None

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.conv2(F.elu(self.conv1(F.elu(x), lengths)), lengths)
        return (x if self.shortcut is None else self.shortcut(x, lengths)) + h


class EncoderStage(nn.Module):
    """Residual units at one width, then ELU and a strided conv (kernel ``2 * stride``) doubling the width."""

    def __init__(self, dim: int, stride: int, residual_layers: int, kernel_size: int, dilation_base: int,
                 compress: int, causal: bool = False, norm: str = "weight_norm", true_skip: bool = False,
                 pad_mode: str = "reflect"):
        super().__init__()
        self.res = nn.ModuleList(
            ResidualUnit(dim, kernel_size, dilation_base ** j, compress, not true_skip, causal, norm, pad_mode)
            for j in range(residual_layers))
        self.down = PaddedConv1d(dim, 2 * dim, 2 * stride, stride=stride, causal=causal, norm=norm, pad_mode=pad_mode)

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None):
        for unit in self.res:
            x = unit(x, lengths)
        x = self.down(F.elu(x), lengths)
        return x, (None if lengths is None else self.down.output_lengths(lengths))


class SEANetEncoder(nn.Module):
    """Waveform ``(B, 1, T)`` -> latent ``(B, dim, ceil(T / prod(strides)))``.

    ``strides`` are in encoder order (first applied first); widths start at ``n_filters`` and
    double at each stage; an LSTM with a skip connection and a final conv to ``dim`` follow.
    ``channels``: input channels (2 for stereo); ``causal`` / ``norm``: see :class:`PaddedConv1d`;
    ``true_skip``: identity shortcuts in the residual units instead of 1x1 convolutions;
    ``pad_mode``: see :data:`PAD_MODES` (``lstm_layers=0``, ``"constant"``: Mimi's encoder).
    """

    def __init__(self, strides: Sequence[int], dim: int = 512, n_filters: int = 32, residual_layers: int = 1,
                 lstm_layers: int = 2, kernel_size: int = 7, last_kernel_size: int = 7, residual_kernel_size: int = 3,
                 dilation_base: int = 2, compress: int = 2, channels: int = 1, causal: bool = False,
                 norm: str = "weight_norm", true_skip: bool = False, pad_mode: str = "reflect"):
        super().__init__()
        self.strides: List[int] = [int(s) for s in strides]
        self.stem = PaddedConv1d(channels, n_filters, kernel_size, causal=causal, norm=norm, pad_mode=pad_mode)
        width = n_filters
        stages = []
        for stride in self.strides:
            stages.append(EncoderStage(width, stride, residual_layers, residual_kernel_size, dilation_base, compress,
                                       causal, norm, true_skip, pad_mode))
            width *= 2
        self.stages = nn.ModuleList(stages)
        self.lstm = nn.LSTM(width, width, lstm_layers, batch_first=True) if lstm_layers else None
        self.proj = PaddedConv1d(width, dim, last_kernel_size, causal=causal, norm=norm, pad_mode=pad_mode)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for stride in self.strides:
            lengths = _ceil_div(lengths, stride)
        return lengths

    def forward(self, wav: torch.Tensor,
                lengths: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Returns the latent and the number of valid frames per item (None without ``lengths``)."""
        x = self.stem(wav, lengths)
        for stage in self.stages:
            x, lengths = stage(x, lengths)
        if self.lstm is not None:
            y, _ = self.lstm(x.transpose(1, 2))
            x = x + y.transpose(1, 2)
        return self.proj(F.elu(x), lengths), lengths
