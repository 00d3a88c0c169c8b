"""MaskGIT-VQGAN (f16): the convolutional decoder TiTok's two-stage decoder uses, and the full
image tokenizer (encoder + VQ + decoder) of the released ``maskgit-vqgan-imagenet-f16-256`` weights.

Reproduces what the released weights depend on: TensorFlow-style "same" padding, bias-free
residual convolutions, and the shortcut of a channel-changing residual block applied to the
block's *output* rather than its input (an oddity of the port the weights were trained with).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from vistok.models.base import ReconOut, Tokenizer
from vistok.nn.conv import SameConv2d
from vistok.quant import VectorQuantizer


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, plus a shortcut (see the module note on ``nin_shortcut``)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(32, in_channels, eps=1e-6)
        self.conv1 = SameConv2d(in_channels, out_channels, 3, bias=False)
        self.norm2 = nn.GroupNorm(32, out_channels, eps=1e-6)
        self.conv2 = SameConv2d(out_channels, out_channels, 3, bias=False)
        self.changes_channels = in_channels != out_channels
        if self.changes_channels:
            self.nin_shortcut = SameConv2d(out_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        shortcut = self.nin_shortcut(h) if self.changes_channels else x
        return h + shortcut


class UpLevel(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, num_blocks: int, upsample: bool):
        super().__init__()
        blocks = []
        for _ in range(num_blocks):
            blocks.append(ResBlock(in_channels, out_channels))
            in_channels = out_channels
        self.block = nn.ModuleList(blocks)
        self.upsample = upsample
        if upsample:
            self.upsample_conv = SameConv2d(out_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block:
            x = block(x)
        if self.upsample:
            x = self.upsample_conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return x


@dataclass(frozen=True)
class VQGANDecoderConfig:
    """Channel plan of the decoder; the defaults are MaskGIT-VQGAN ImageNet f16."""

    hidden_channels: int = 128
    channel_mult: Tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    z_channels: int = 256
    out_channels: int = 3


class VQGANDecoder(nn.Module):
    """Latent ``(B, z_channels, h, w)`` -> image ``(B, 3, h * 2^(levels-1), ...)``.

    ``up[i]`` is the level at resolution ``i`` (0 = full resolution); levels run from the last
    to the first, as in the checkpoint layout.
    """

    def __init__(self, config: VQGANDecoderConfig = VQGANDecoderConfig()):
        super().__init__()
        self.config = config
        mult: Sequence[int] = config.channel_mult
        ch = config.hidden_channels
        top = ch * mult[-1]
        self.conv_in = SameConv2d(config.z_channels, top, 3)
        self.mid = nn.ModuleList(ResBlock(top, top) for _ in range(config.num_res_blocks))
        levels = []
        for i in range(len(mult)):
            in_ch = ch * (mult[-1] if i == len(mult) - 1 else mult[i + 1])
            levels.append(UpLevel(in_ch, ch * mult[i], config.num_res_blocks, upsample=i != 0))
        self.up = nn.ModuleList(levels)
        self.norm_out = nn.GroupNorm(32, ch * mult[0], eps=1e-6)
        self.conv_out = SameConv2d(ch * mult[0], config.out_channels, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(z)
        for block in self.mid:
            x = block(x)
        for level in reversed(self.up):
            x = level(x)
        return self.conv_out(F.silu(self.norm_out(x)))


class DownLevel(nn.Module):
    """The residual blocks of one encoder resolution, then a 2x2 average pool (except the last)."""

    def __init__(self, in_channels: int, out_channels: int, num_blocks: int, downsample: bool):
        super().__init__()
        self.block = nn.ModuleList(
            ResBlock(in_channels if j == 0 else out_channels, out_channels) for j in range(num_blocks)
        )
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block:
            x = block(x)
        return F.avg_pool2d(x, 2) if self.downsample else x


class VQGANEncoder(nn.Module):
    """Image ``(B, C, H, W)`` -> latent ``(B, z_channels, H / 2^(levels-1), ...)``.

    Takes the decoder's channel plan; ``config.out_channels`` is the image channel count here.
    ``down[i]`` runs at resolution ``i`` (0 = full resolution), the checkpoint layout.
    """

    def __init__(self, config: VQGANDecoderConfig = VQGANDecoderConfig()):
        super().__init__()
        self.config = config
        mult: Sequence[int] = config.channel_mult
        ch = config.hidden_channels
        top = ch * mult[-1]
        self.conv_in = SameConv2d(config.out_channels, ch, 3, bias=False)
        widths = [ch] + [ch * m for m in mult]
        self.down = nn.ModuleList(
            DownLevel(widths[i], widths[i + 1], config.num_res_blocks, downsample=i != len(mult) - 1)
            for i in range(len(mult))
        )
        self.mid = nn.ModuleList(ResBlock(top, top) for _ in range(config.num_res_blocks))
        self.norm_out = nn.GroupNorm(32, top, eps=1e-6)
        self.conv_out = SameConv2d(top, config.z_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for level in self.down:
            x = level(x)
        for block in self.mid:
            x = block(x)
        return self.conv_out(F.silu(self.norm_out(x)))


@dataclass
class MaskGITVQGANConfig:
    """Architecture of a MaskGIT-VQGAN tokenizer; the defaults are the ImageNet f16-256 release."""

    image_size: int = 256
    hidden_channels: int = 128
    channel_mult: Tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    z_channels: int = 256
    codebook_size: int = 1024
    commitment_cost: float = 0.25

    def __post_init__(self):
        self.channel_mult = tuple(int(m) for m in self.channel_mult)
        if not self.channel_mult or min(self.channel_mult) < 1:
            raise ValueError(f"channel_mult must be a non-empty sequence of positive ints, got {self.channel_mult}")
        for name in ("image_size", "hidden_channels", "num_res_blocks", "z_channels", "codebook_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        widths = sorted({self.hidden_channels * m for m in (1,) + self.channel_mult})
        if any(w % 32 for w in widths):
            raise ValueError(f"GroupNorm(32) needs every channel width divisible by 32; hidden_channels="
                             f"{self.hidden_channels} with channel_mult={self.channel_mult} gives {widths}")
        if self.image_size % self.downsample_factor:
            raise ValueError(f"image_size {self.image_size} is not a multiple of the downsampling factor "
                             f"{self.downsample_factor} (2^(len(channel_mult) - 1))")
        if self.commitment_cost < 0:
            raise ValueError(f"commitment_cost must be >= 0, got {self.commitment_cost}")

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.channel_mult) - 1)

    @property
    def grid_size(self) -> int:
        return self.image_size // self.downsample_factor

    def conv_config(self) -> VQGANDecoderConfig:
        """The channel plan shared by encoder and decoder."""
        return VQGANDecoderConfig(self.hidden_channels, self.channel_mult, self.num_res_blocks, self.z_channels)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


class MaskGITVQGAN(Tokenizer):
    """MaskGIT-VQGAN image tokenizer: conv encoder, plain (squared-L2) VQ, conv decoder.

    Images are in [0, 1]; tokens are a row-major ``h x w`` grid (16x16 for 256px at f16);
    reconstructions are not clamped.
    """

    family = "maskgit_vqgan"
    config_class = MaskGITVQGANConfig

    def __init__(self, config: Union[MaskGITVQGANConfig, Dict[str, Any], None] = None):
        super().__init__()
        if config is None:
            config = MaskGITVQGANConfig()
        cfg = config if isinstance(config, MaskGITVQGANConfig) else MaskGITVQGANConfig(**config)
        self.config = cfg
        self.encoder = VQGANEncoder(cfg.conv_config())
        self.quantize = VectorQuantizer(cfg.codebook_size, cfg.z_channels, commitment=cfg.commitment_cost)
        self.decoder = VQGANDecoder(cfg.conv_config())

    @property
    def num_tokens(self) -> int:
        return self.config.grid_size**2

    def token_quantizer(self) -> nn.Module:
        return self.quantize

    def quantizer_input(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        return self.encoder(x).permute(0, 2, 3, 1)  # (B, h, w, C)

    def ids_from_quantizer(self, indices: torch.Tensor) -> torch.Tensor:
        return indices.flatten(1)

    @property
    def last_layer_weight(self) -> torch.Tensor:
        """The weight the adaptive (VQGAN) adversarial weight balances gradients at."""
        return self.decoder.conv_out.weight

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 3, H, W)`` in [0, 1] -> token ids ``(B, h * w)``, row-major."""
        return self.quantize.forward_channels_first(self.encoder(x)).indices.flatten(1)

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids ``(B, h * w)`` (a square grid) or ``(B, h, w)`` -> images ``(B, 3, H, W)``."""
        if ids.dtype not in (torch.int32, torch.int64):
            raise TypeError(f"decode expects integer token ids, got {ids.dtype}")
        if ids.dim() == 2:
            side = math.isqrt(ids.shape[1])
            if side * side != ids.shape[1]:
                raise ValueError(f"{ids.shape[1]} tokens do not form a square grid; pass ids as (B, h, w)")
            ids = ids.reshape(ids.shape[0], side, side)
        elif ids.dim() != 3:
            raise ValueError(f"expected ids of shape (B, h*w) or (B, h, w), got {tuple(ids.shape)}")
        z_q = self.quantize.decode_indices(ids.long()).permute(0, 3, 1, 2)
        return self.decode_latent(z_q.to(self.decoder.conv_in.weight.dtype))

    def decode_latent(self, z: torch.Tensor) -> torch.Tensor:
        """Latent ``(B, z_channels, h, w)`` -> images ``(B, 3, H, W)``."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> ReconOut:
        q = self.quantize.forward_channels_first(self.encoder(x))
        return ReconOut(recon=self.decoder(q.z_q), indices=q.indices.flatten(1), loss=q.loss, latent=q.z_q,
                        stats=q.stats)
