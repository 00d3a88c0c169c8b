"""LlamaGen VQ (FoundationVision/LlamaGen): a VQGAN image tokenizer with a 16384-entry codebook of
8-dimensional codes looked up after l2 normalisation (cosine VQ), f16 (VQ-16) or f8 (VQ-8).

What the released weights depend on, reproduced here: images enter the network in [-1, 1]
(tokzoo's contract is [0, 1]: ``encode`` maps them, ``decode`` maps back, unclamped); the encoder's
256 channels go through a 1x1 ``quant_conv`` to the code dimension and a 1x1 ``post_quant_conv``
back; the quantizer normalises both the latent and the codes, so the decoder receives unit vectors.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Union

import torch
from torch import nn

from vistok.models.base import ReconOut, Tokenizer
from vistok.models.llamagen.coders import Decoder, Encoder
from vistok.models.llamagen.config import LlamaGenVQConfig
from vistok.quant import VectorQuantizer


class LlamaGenVQ(Tokenizer):
    """LlamaGen VQ image tokenizer: images ``(B, 3, H, W)`` in [0, 1] -> a row-major ``h x w`` grid of ids
    (16x16 for 256 px with VQ-16, 32x32 with VQ-8); any side that is a multiple of the downsampling
    factor is accepted (the authors also evaluate VQ-16 at 384 and 512 px)."""

    family = "llamagen"
    config_class = LlamaGenVQConfig

    def __init__(self, config: Union[LlamaGenVQConfig, Dict[str, Any], None] = None):
        super().__init__()
        cfg = config if isinstance(config, LlamaGenVQConfig) else LlamaGenVQConfig(**(config or {}))
        self.config = cfg
        self.encoder = Encoder(cfg.base_channels, cfg.encoder_ch_mult, cfg.num_res_blocks, cfg.z_channels, cfg.dropout)
        self.decoder = Decoder(cfg.base_channels, cfg.decoder_ch_mult, cfg.num_res_blocks, cfg.z_channels, cfg.dropout)
        self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.codebook_dim, 1)
        self.post_quant_conv = nn.Conv2d(cfg.codebook_dim, cfg.z_channels, 1)
        self.quantize = VectorQuantizer(cfg.codebook_size, cfg.codebook_dim, l2_norm=cfg.l2_norm,
                                        commitment=cfg.commitment)

    # ----- what it is -----

    @property
    def num_tokens(self) -> int:
        return self.config.grid_size ** 2

    def token_quantizer(self) -> nn.Module:
        return self.quantize

    @property
    def last_layer_weight(self) -> torch.Tensor:
        """The decoder's last conv weight (where VQGAN's adaptive GAN weight balances gradients)."""
        return self.decoder.conv_out.weight

    # ----- the pieces -----

    def _check_images(self, x: torch.Tensor) -> None:
        f = self.config.downsample_factor
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(x.shape)}")
        if x.shape[2] % f or x.shape[3] % f:
            raise ValueError(f"image side {tuple(x.shape[2:])} is not a multiple of the downsampling factor {f}")

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> the pre-quantization latent ``(B, codebook_dim, h, w)``."""
        self._check_images(x)
        return self.quant_conv(self.encoder(x * 2 - 1))

    def quantizer_input(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        return self.latent(x).permute(0, 2, 3, 1)  # (B, h, w, d)

    def ids_from_quantizer(self, indices: torch.Tensor) -> torch.Tensor:
        return indices.flatten(1)

    def decode_latent(self, z_q: torch.Tensor) -> torch.Tensor:
        """Quantized latent ``(B, codebook_dim, h, w)`` -> images in about [0, 1] (unclamped)."""
        return (self.decoder(self.post_quant_conv(z_q)) + 1) / 2

    # ----- the contract -----

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 3, H, W)`` in [0, 1] -> token ids ``(B, h * w)``, row-major."""
        return self.quantize.forward_channels_first(self.latent(x)).indices.flatten(1)

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
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.config.codebook_size):
            raise ValueError(f"token ids must be in [0, {self.config.codebook_size}), got "
                             f"[{int(ids.min())}, {int(ids.max())}]")
        z_q = self.quantize.decode_indices(ids.long()).permute(0, 3, 1, 2)
        return self.decode_latent(z_q.to(self.post_quant_conv.weight.dtype))

    def forward(self, x: torch.Tensor) -> ReconOut:
        q = self.quantize.forward_channels_first(self.latent(x))
        return ReconOut(recon=self.decode_latent(q.z_q), indices=q.indices.flatten(1), loss=q.loss,
                        latent=q.z_q, stats=q.stats)
