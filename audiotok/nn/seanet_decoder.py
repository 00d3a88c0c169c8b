"""The SEANet convolutional decoder of EnCodec: the mirror of :class:`audiotok.nn.seanet.SEANetEncoder`.

A latent of ``L`` frames becomes exactly ``L * prod(strides)`` samples: every transposed convolution
(kernel ``2 * stride``) is trimmed by ``kernel - stride`` samples, all on the right when causal,
otherwise split with the larger part on the left. Convolutions share the encoder's options
(:data:`audiotok.nn.seanet.NORMS`, ``causal``, ``pad_mode``); a group norm, when used, normalises the untrimmed
output of its transposed convolution, as the original does.
"""
from __future__ import annotations

import math
from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from audiotok.nn.seanet import PaddedConv1d, ResidualUnit, check_norm


class PaddedConvTranspose1d(nn.Module):
    """An upsampling ``ConvTranspose1d`` (kernel ``k``, stride ``s``) whose output is trimmed by
    ``k - s`` samples so that ``L`` frames give ``L * s`` samples. ``trim_right_ratio`` (causal only)
    is the share of the trim taken from the right end; ``groups`` / ``bias`` as for ``ConvTranspose1d``
    (Mimi's upsampling is depthwise, without bias)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, causal: bool = False,
                 norm: str = "weight_norm", trim_right_ratio: float = 1.0, groups: int = 1, bias: bool = True):
        super().__init__()
        check_norm(norm, causal)
        if not 0.0 <= trim_right_ratio <= 1.0 or (not causal and trim_right_ratio != 1.0):
            raise ValueError(f"trim_right_ratio must be in [0, 1], and 1 unless causal; got {trim_right_ratio}")
        conv = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride, groups=groups, bias=bias)
        self.conv = weight_norm(conv) if norm == "weight_norm" else conv
        self.norm = nn.GroupNorm(1, out_channels) if norm == "time_group_norm" else None
        total = kernel_size - stride
        self.trim_right = math.ceil(total * trim_right_ratio) if causal else total // 2
        self.trim_left = total - self.trim_right

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if self.norm is not None:
            y = self.norm(y)
        return y[..., self.trim_left: y.shape[-1] - self.trim_right]


class DecoderStage(nn.Module):
    """ELU and a transposed conv halving the width (upsampling by ``stride``), then residual units."""

    def __init__(self, dim: int, stride: int, residual_layers: int, kernel_size: int, dilation_base: int,
                 compress: int, causal: bool, norm: str, true_skip: bool, trim_right_ratio: float,
                 pad_mode: str = "reflect"):
        super().__init__()
        self.up = PaddedConvTranspose1d(dim, dim // 2, 2 * stride, stride, causal, norm, trim_right_ratio)
        self.res = nn.ModuleList(
            ResidualUnit(dim // 2, kernel_size, dilation_base ** j, compress, not true_skip, causal, norm, pad_mode)
            for j in range(residual_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.up(F.elu(x))
        for unit in self.res:
            x = unit(x)
        return x


class SEANetDecoder(nn.Module):
    """Latent ``(B, dim, L)`` -> waveform ``(B, channels, L * prod(strides))``.

    ``strides`` are given in *encoder* order, as for :class:`~audiotok.nn.seanet.SEANetEncoder`
    (the decoder applies them reversed). A conv from ``dim`` to ``n_filters * 2 ** len(strides)``
    channels, an LSTM with a skip connection, the upsampling stages (each halving the width), then
    ELU and a conv to ``channels``; no output activation.
    """

    def __init__(self, strides: Sequence[int], dim: int = 128, n_filters: int = 32, residual_layers: int = 1,
                 lstm_layers: int = 2, channels: int = 1, kernel_size: int = 7, last_kernel_size: int = 7,
                 residual_kernel_size: int = 3, dilation_base: int = 2, compress: int = 2, causal: bool = False,
                 norm: str = "weight_norm", true_skip: bool = False, trim_right_ratio: float = 1.0,
                 pad_mode: str = "reflect"):
        super().__init__()
        self.strides: List[int] = [int(s) for s in strides]
        width = n_filters * 2 ** len(self.strides)
        self.stem = PaddedConv1d(dim, width, kernel_size, causal=causal, norm=norm, pad_mode=pad_mode)
        self.lstm = nn.LSTM(width, width, lstm_layers, batch_first=True) if lstm_layers else None
        stages = []
        for stride in reversed(self.strides):
            stages.append(DecoderStage(width, stride, residual_layers, residual_kernel_size, dilation_base, compress,
                                       causal, norm, true_skip, trim_right_ratio, pad_mode))
            width //= 2
        self.stages = nn.ModuleList(stages)
        self.proj = PaddedConv1d(width, channels, last_kernel_size, causal=causal, norm=norm, pad_mode=pad_mode)

    @property
    def hop_length(self) -> int:
        return math.prod(self.strides)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.stem(z)
        if self.lstm is not None:
            y, _ = self.lstm(x.transpose(1, 2))
            x = x + y.transpose(1, 2)
        for stage in self.stages:
            x = stage(x)
        return self.proj(F.elu(x))
