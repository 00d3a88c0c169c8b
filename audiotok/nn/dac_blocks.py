"""DAC's convolutional encoder and decoder (Kumar et al., 2023): weight-normed convolutions with
Snake activations, each resolution change surrounded by three residual units dilated 1, 3 and 9.

Encoder: a 7-tap stem from the waveform to ``dim`` channels; per stride ``s`` the channels double
and a ``2s``-tap convolution of stride ``s`` (padding ``ceil(s / 2)``) downsamples; a 3-tap
projection to the latent. Decoder: a 7-tap stem from the latent to ``channels``; per rate ``s`` a
``2s``-tap transposed convolution of stride ``s`` (padding ``ceil(s / 2)``) upsamples and halves the
channels; a 7-tap projection to the waveform and ``tanh``. Every convolution zero-pads as the
official model does with padding on; an input whose length is a multiple of the hop gives exactly
``length / hop`` frames, and a transposed convolution of an odd stride returns one sample less than
``stride`` times its input (so the 16 and 24 kHz releases decode ``hop * frames - 8`` samples).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from audiotok.nn.snake import Snake1d

#: Dilations of the three residual units around every up- or downsampling.
DILATIONS = (1, 3, 9)


def wn_conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1,
            padding: int = 0, groups: int = 1, bias: bool = True) -> nn.Conv1d:
    """A zero-padded ``Conv1d`` under torch weight norm over its output channels."""
    return weight_norm(nn.Conv1d(in_channels, out_channels, kernel_size, stride, padding=padding, dilation=dilation,
                                 groups=groups, bias=bias))


def wn_conv_transpose(in_channels: int, out_channels: int, kernel_size: int, stride: int,
                      padding: int, output_padding: int = 0) -> nn.ConvTranspose1d:
    """A ``ConvTranspose1d`` under torch weight norm (over its first weight dimension, the input
    channels, as ``torch.nn.utils.weight_norm`` does by default)."""
    return weight_norm(nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride, padding=padding,
                                          output_padding=output_padding))


class ResidualUnit(nn.Module):
    """``x + conv2(snake(conv1(snake(x))))``: a 7-tap convolution dilated ``dilation`` (length
    kept; ``groups=channels`` makes it depthwise, as SNAC's), then a 1-tap one, both at ``channels``."""

    def __init__(self, channels: int, dilation: int = 1, groups: int = 1):
        super().__init__()
        self.act1 = Snake1d(channels)
        self.conv1 = wn_conv(channels, channels, 7, dilation=dilation, padding=3 * dilation, groups=groups)
        self.act2 = Snake1d(channels)
        self.conv2 = wn_conv(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act2(self.conv1(self.act1(x))))


class EncoderBlock(nn.Module):
    """Residual units at ``channels // 2`` (their dilated convolutions depthwise when ``depthwise``),
    then a strided convolution to ``channels``."""

    def __init__(self, channels: int, stride: int, depthwise: bool = False):
        super().__init__()
        half = channels // 2
        self.res = nn.ModuleList(ResidualUnit(half, d, half if depthwise else 1) for d in DILATIONS)
        self.act = Snake1d(half)
        self.down = wn_conv(half, channels, 2 * stride, stride=stride, padding=math.ceil(stride / 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for unit in self.res:
            x = unit(x)
        return self.down(self.act(x))


class NoiseBlock(nn.Module):
    """SNAC's noise injection, ``x + n * linear(x)`` with ``n ~ N(0, 1)`` of shape ``(B, 1, T)``
    (one draw per time step, shared by the channels) and ``linear`` a bias-free weight-normed 1x1
    convolution. It draws at inference too, as the released model does; ``generator`` is a
    ``torch.Generator`` for the whole batch, or one per item (each item's noise then depends on its
    own generator only, whatever the batch holds)."""

    def __init__(self, channels: int):
        super().__init__()
        self.linear = wn_conv(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        batch, _, steps = x.shape
        if generator is None or isinstance(generator, torch.Generator):
            noise = torch.randn((batch, 1, steps), device=x.device, dtype=x.dtype, generator=generator)
        else:
            noise = torch.cat([torch.randn((1, 1, steps), device=x.device, dtype=x.dtype, generator=g)
                               for g in generator])
        return x + noise * self.linear(x)


class DecoderBlock(nn.Module):
    """A transposed convolution of stride ``stride`` from ``in_channels`` to ``out_channels``, then
    residual units. SNAC's variant: ``output_padding = stride % 2`` (exactly ``stride`` samples per
    input step), a :class:`NoiseBlock` after the upsampling (``noise``) and depthwise dilated
    convolutions (``depthwise``)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, output_padding: int = 0,
                 noise: bool = False, depthwise: bool = False):
        super().__init__()
        self.act = Snake1d(in_channels)
        self.up = wn_conv_transpose(in_channels, out_channels, 2 * stride, stride, padding=math.ceil(stride / 2),
                                    output_padding=output_padding)
        self.noise = NoiseBlock(out_channels) if noise else None
        groups = out_channels if depthwise else 1
        self.res = nn.ModuleList(ResidualUnit(out_channels, d, groups) for d in DILATIONS)

    def forward(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        x = self.up(self.act(x))
        if self.noise is not None:
            x = self.noise(x, generator)
        for unit in self.res:
            x = unit(x)
        return x


class DACEncoder(nn.Module):
    """Waveform ``(B, 1, T)`` -> latent ``(B, latent_dim, T / prod(strides))``; ``dim`` channels
    after the stem, doubled by every stride."""

    def __init__(self, dim: int, strides: Sequence[int], latent_dim: int):
        super().__init__()
        self.stem = wn_conv(1, dim, 7, padding=3)
        blocks = []
        for stride in strides:
            dim *= 2
            blocks.append(EncoderBlock(dim, int(stride)))
        self.blocks = nn.ModuleList(blocks)
        self.act = Snake1d(dim)
        self.proj = wn_conv(dim, latent_dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.proj(self.act(x))


class DACDecoder(nn.Module):
    """Latent ``(B, latent_dim, L)`` -> waveform ``(B, 1, ~L * prod(rates))`` in (-1, 1); the
    channels start at ``channels`` and halve with every rate."""

    def __init__(self, latent_dim: int, channels: int, rates: Sequence[int]):
        super().__init__()
        self.stem = wn_conv(latent_dim, channels, 7, padding=3)
        blocks = []
        for i, rate in enumerate(rates):
            blocks.append(DecoderBlock(channels // 2 ** i, channels // 2 ** (i + 1), int(rate)))
        self.blocks = nn.ModuleList(blocks)
        out = channels // 2 ** len(rates)
        self.act = Snake1d(out)
        self.proj = wn_conv(out, 1, 7, padding=3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.stem(z)
        for block in self.blocks:
            x = block(x)
        return torch.tanh(self.proj(self.act(x)))

    def output_length(self, frames: int) -> int:
        """Samples decoded from ``frames`` latent frames."""
        n = frames
        for block in self.blocks:
            conv = block.up
            n = (n - 1) * conv.stride[0] - 2 * conv.padding[0] + conv.kernel_size[0]
        return n
