"""The SEANet convolutional encoder of EnCodec, as WavTokenizer configures it.

Every convolution is weight-normed and reflect-padded so that a signal of ``n`` samples gives
``ceil(n / stride)`` frames (the last frame is completed with extra right padding). Batched input of
unequal lengths can carry ``lengths``: each item is then padded as if it were alone, so its frames
do not depend on what it was batched with (the LSTM runs forward in time, so trailing padding
never reaches earlier frames either).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


def _ceil_div(a, b):
    return -(-a // b)


class PaddedConv1d(nn.Module):
    """A weight-normed ``Conv1d`` with EnCodec's non-causal padding: ``k_eff - stride`` samples split
    between the ends (the larger half on the left), plus what completes the last frame on the right;
    reflect mode, zero-extending inputs too short to reflect (the original behaviour)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv = weight_norm(nn.Conv1d(in_channels, out_channels, kernel_size, stride, dilation=dilation))
        self.stride = stride
        total = (kernel_size - 1) * dilation + 1 - stride
        self.pad_right = total // 2
        self.pad_left = total - self.pad_right

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return _ceil_div(lengths, self.stride)

    def _extra(self, n):
        return _ceil_div(n, self.stride) * self.stride - n

    def _pad_uniform(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        left, right = self.pad_left, self.pad_right + self._extra(n)
        widest = max(left, right)
        if n > widest:
            return F.pad(x, (left, right), mode="reflect")
        grow = widest - n + 1
        padded = F.pad(F.pad(x, (0, grow)), (left, right), mode="reflect")
        return padded[..., : padded.shape[-1] - grow]

    def _pad_per_item(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Reflect-pad every item at its own length (gather indices), zeros beyond."""
        n = lengths.to(x.device).long()[:, None]
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
            return self.conv(self._pad_uniform(x))
        return self.conv(self._pad_per_item(x, lengths))


class ResidualUnit(nn.Module):
    """ELU -> conv (k, dilation) to ``dim // compress`` -> ELU -> 1x1 conv back, plus a 1x1-conv shortcut."""

    def __init__(self, dim: int, kernel_size: int = 3, dilation: int = 1, compress: int = 2,
                 conv_shortcut: bool = True):
        super().__init__()
        hidden = dim // compress
        self.conv1 = PaddedConv1d(dim, hidden, kernel_size, dilation=dilation)
        self.conv2 = PaddedConv1d(hidden, dim, 1)
        self.shortcut = PaddedConv1d(dim, dim, 1) if conv_shortcut else None

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.conv2(F.elu(self.conv1(F.elu(x), lengths)), lengths)
        return (x if self.shortcut is None else self.shortcut(x, lengths)) + h


class EncoderStage(nn.Module):
    """Residual units at one width, then ELU and a strided conv (kernel ``2 * stride``) doubling the width."""

    def __init__(self, dim: int, stride: int, residual_layers: int, kernel_size: int, dilation_base: int,
                 compress: int):
        super().__init__()
        self.res = nn.ModuleList(
            ResidualUnit(dim, kernel_size, dilation_base ** j, compress) for j in range(residual_layers))
        self.down = PaddedConv1d(dim, 2 * dim, 2 * stride, stride=stride)

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None):
        for unit in self.res:
            x = unit(x, lengths)
        x = self.down(F.elu(x), lengths)
        return x, (None if lengths is None else self.down.output_lengths(lengths))


class SEANetEncoder(nn.Module):
    """Waveform ``(B, 1, T)`` -> latent ``(B, dim, ceil(T / prod(strides)))``.

    ``strides`` are in encoder order (first applied first); widths start at ``n_filters`` and
    double at each stage; an LSTM with a skip connection and a final conv to ``dim`` follow.
    """

    def __init__(self, strides: Sequence[int], dim: int = 512, n_filters: int = 32, residual_layers: int = 1,
                 lstm_layers: int = 2, kernel_size: int = 7, last_kernel_size: int = 7, residual_kernel_size: int = 3,
                 dilation_base: int = 2, compress: int = 2, channels: int = 1):
        super().__init__()
        self.strides: List[int] = [int(s) for s in strides]
        self.stem = PaddedConv1d(channels, n_filters, kernel_size)
        width = n_filters
        stages = []
        for stride in self.strides:
            stages.append(EncoderStage(width, stride, residual_layers, residual_kernel_size, dilation_base, compress))
            width *= 2
        self.stages = nn.ModuleList(stages)
        self.lstm = nn.LSTM(width, width, lstm_layers, batch_first=True) if lstm_layers else None
        self.proj = PaddedConv1d(width, dim, last_kernel_size)

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
