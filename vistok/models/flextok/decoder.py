"""FlexTok decoder: a rectified-flow transformer that predicts the velocity of noised VAE latents,
conditioned on the (possibly truncated) registers and on the timestep through adaLN.

Sequence: ``[noised latent patches, registers]`` with full attention. Registers from position
``keep_k`` on are replaced by a learned mask token (nested dropout; tokens stay in the sequence),
and for classifier-free guidance the whole register sequence is replaced by the null condition.
A batch can mix different ``keep_k``: the mask is per sample and nothing changes shape.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from vistok.models.flextok.blocks import AdaLNBlock, BlockSpec, fp32_norm
from vistok.models.flextok.config import FlexTokConfig
from vistok.models.flextok.embeddings import PositionalEmbedding, TimestepEmbedding, patchify, unpatchify
from vistok.models.flextok.repa import RepaHead


class FlexTokDecoder(nn.Module):
    """``forward(noised latents (B, C, h, w), t (B,), registers) -> velocity (B, C, h, w)``;
    ``condition(quantized tokens, keep_k, null)`` builds the registers."""

    def __init__(self, cfg: FlexTokConfig):
        super().__init__()
        self.cfg = cfg
        dim, p, channels = cfg.decoder_dim, cfg.patch_size, cfg.vae.latent_channels
        self.latent_proj = nn.Linear(cfg.token_dim, dim)
        self.register_pos_embed = (PositionalEmbedding(cfg.register_posemb, dim, (cfg.num_registers,))
                                   if cfg.register_posemb else None)
        self.mask_token = nn.Parameter(torch.empty(dim))
        self.null_cond = nn.Parameter(torch.empty(dim)) if cfg.null_cond == "learned" else None
        self.patch_embed = nn.Linear(channels * p * p, dim)
        self.pos_embed = PositionalEmbedding(cfg.patch_posemb, dim, (cfg.grid_size, cfg.grid_size), cfg.posemb_scaling)
        self.time_embed = TimestepEmbedding(dim, cfg.time_frequency_dim, cfg.time_max_timestep)
        spec = BlockSpec(dim, cfg.head_dim, cfg.mlp_ratio, cfg.gated_mlp, cfg.qkv_bias, cfg.proj_bias,
                         cfg.mlp_bias, cfg.qk_norm)
        self.blocks = nn.ModuleList(AdaLNBlock(spec, cfg.adaln_expansion) for _ in range(cfg.decoder_depth))
        self.head_adaln = nn.Linear(dim, 2 * dim)
        self.head = nn.Linear(dim, channels * p * p)
        self.repa_head = (RepaHead(dim, cfg.repa_dim, cfg.repa_head_layers, cfg.repa_head_ratio, cfg.repa_head_norm)
                          if cfg.repa_layer is not None else None)
        self._init_weights()

    def _init_weights(self) -> None:
        for layer in (self.latent_proj, self.patch_embed, *self.time_embed.mlp[::2]):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        for layer in (self.head_adaln, self.head):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        if self.null_cond is not None:
            nn.init.trunc_normal_(self.null_cond, std=0.02)

    def condition(self, quants: torch.Tensor, keep_k: Optional[torch.Tensor] = None,
                  null: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Quantized tokens ``(B, N, token_dim)`` -> registers ``(B, R, dim)`` and, only when some but
        not all samples get a one-token null condition, a ``(B, R)`` mask of the register positions
        that exist (the others are hidden from attention).

        keep_k: ``(B,)`` number of leading tokens kept per sample (None: all). null: ``(B,)`` bool,
        samples whose registers are replaced by the null condition (None: none).
        """
        x = self.latent_proj(quants)
        b, n, _ = x.shape
        present = None
        for op in self.cfg.register_ops:
            if op == "posemb" and self.register_pos_embed is not None:
                x = x + self.register_pos_embed((x.shape[1],)).to(x.dtype)
            elif op == "nested_dropout" and keep_k is not None:
                dropped = torch.arange(x.shape[1], device=x.device) >= keep_k.to(x.device)[:, None]
                x = torch.where(dropped[..., None], self.mask_token.to(x.dtype), x)
            # In training also when no sample is dropped: DDP must see the null parameter used.
            elif op == "null_cond" and null is not None and (self.training or bool(null.any())):
                x, present = self._apply_null(x, null.to(x.device))
        return x, present

    def _apply_null(self, x: torch.Tensor, null: torch.Tensor):
        value = self.null_cond.to(x.dtype) if self.null_cond is not None else x.new_zeros(x.shape[-1])
        if not self.cfg.null_cond_single_token:
            return torch.where(null[:, None, None], value, x), None
        if bool(null.all()):
            return value.expand(x.shape[0], 1, -1), None
        first = torch.zeros_like(null[:, None].expand(-1, x.shape[1]))
        first[:, 0] = True
        x = torch.where((null[:, None] & first)[..., None], value, x)
        return x, ~(null[:, None] & ~first)

    def forward(self, noised: torch.Tensor, t: torch.Tensor, registers: torch.Tensor,
                present: Optional[torch.Tensor] = None, features_at: Optional[int] = None):
        """Velocity ``(B, C, h, w)``; with ``features_at``, also the patch features after that block."""
        b, _, h, w = noised.shape
        p = self.cfg.patch_size
        grid = (h // p, w // p)
        patches = self.patch_embed(patchify(noised, p))
        patches = patches + self.pos_embed(grid).reshape(1, grid[0] * grid[1], -1).to(patches.dtype)
        num_patches = patches.shape[1]
        x = torch.cat([patches, registers.to(patches.dtype)], dim=1)
        lengths = (num_patches, registers.shape[1]) if self.cfg.adaln_expansion == 2 else (x.shape[1],)
        mask = None
        if present is not None:
            keys = torch.cat([present.new_ones(b, num_patches), present], dim=1)
            mask = keys[:, None, None, :]
        cond = self.time_embed(t)
        features = None
        for i, block in enumerate(self.blocks):
            x = block(x, cond, lengths, mask)
            if i == features_at:
                features = x[:, :num_patches]
        out = x[:, :num_patches]
        if self.cfg.decoder_head_norm:
            out = fp32_norm(out)
        shift, scale = self.head_adaln(F.silu(cond)).chunk(2, dim=-1)
        out = self.head(out * (1 + scale[:, None]) + shift[:, None])
        velocity = unpatchify(out, p, grid)
        return (velocity, features) if features_at is not None else velocity
