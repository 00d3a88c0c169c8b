"""SNAC's encoder and decoder (Siuzdak et al., 2024): DAC's Snake / residual-unit blocks
(:mod:`audiotok.nn.dac_blocks`) with three additions the releases enable: depthwise dilated
convolutions, a noise block after every upsampling, and windowed self-attention at the latent rate
(:class:`~audiotok.nn.local_attention.LocalAttention`).

Encoder: a 7-tap stem to ``dim`` channels; per stride the channels double (DAC's encoder block);
attention (when ``window`` is set); a 7-tap convolution at the latent width (depthwise when
``depthwise``). There is no Snake before it and no separate latent width: the latent has
``dim * 2 ** len(strides)`` channels. Decoder: a 7-tap stem (depthwise, then a 1x1 convolution to
``channels``, when ``depthwise``; else one 7-tap convolution); attention; per rate a decoder block
whose transposed convolution returns exactly ``rate`` samples per step (``output_padding = rate %
2``); Snake, a 7-tap projection to the waveform and ``tanh``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from audiotok.nn.dac_blocks import DecoderBlock, EncoderBlock, wn_conv
from audiotok.nn.local_attention import LocalAttention
from audiotok.nn.snake import Snake1d


class SNACEncoder(nn.Module):
    """Waveform ``(B, 1, T)`` -> latent ``(B, dim * 2 ** len(strides), T / prod(strides))``; ``T``
    a multiple of ``prod(strides) * window`` when attention is on."""

    def __init__(self, dim: int, strides: Sequence[int], window: Optional[int] = None, depthwise: bool = True):
        super().__init__()
        self.stem = wn_conv(1, dim, 7, padding=3)
        blocks = []
        for stride in strides:
            dim *= 2
            blocks.append(EncoderBlock(dim, int(stride), depthwise))
        self.blocks = nn.ModuleList(blocks)
        self.attn = LocalAttention(dim, window) if window else None
        self.proj = wn_conv(dim, dim, 7, padding=3, groups=dim if depthwise else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        if self.attn is not None:
            x = self.attn(x)
        return self.proj(x)


class SNACDecoder(nn.Module):
    """Latent ``(B, latent_dim, L)`` -> waveform ``(B, 1, L * prod(rates))`` in (-1, 1); the channels
    start at ``channels`` and halve with every rate. ``generator`` (forward): where the noise blocks
    draw (see :class:`~audiotok.nn.dac_blocks.NoiseBlock`)."""

    def __init__(self, latent_dim: int, channels: int, rates: Sequence[int], window: Optional[int] = None,
                 noise: bool = True, depthwise: bool = True):
        super().__init__()
        if depthwise:
            self.stem = wn_conv(latent_dim, latent_dim, 7, padding=3, groups=latent_dim)
            self.mix = wn_conv(latent_dim, channels, 1)
        else:
            self.stem = wn_conv(latent_dim, channels, 7, padding=3)
            self.mix = None
        self.attn = LocalAttention(channels, window) if window else None
        blocks = []
        for i, rate in enumerate(rates):
            rate = int(rate)
            blocks.append(DecoderBlock(channels // 2 ** i, channels // 2 ** (i + 1), rate, output_padding=rate % 2,
                                       noise=noise, depthwise=depthwise))
        self.blocks = nn.ModuleList(blocks)
        out = channels // 2 ** len(rates)
        self.act = Snake1d(out)
        self.proj = wn_conv(out, 1, 7, padding=3)

    def forward(self, z: torch.Tensor, generator=None) -> torch.Tensor:
        x = self.stem(z)
        if self.mix is not None:
            x = self.mix(x)
        if self.attn is not None:
            x = self.attn(x)
        for block in self.blocks:
            x = block(x, generator)
        return torch.tanh(self.proj(self.act(x)))
