"""FlexTok encoder: VAE latents -> 2x2 patches + ordered registers -> transformer -> ``(B, N, token_dim)``.

The attention mask is block-causal: patches attend to all patches and never to registers;
register i attends to all patches and to registers 0..i. So the first k registers summarise the
image without knowing the later ones, which is what makes every prefix of the ids decodable.
"""
from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn

from vistok.models.flextok.blocks import Block, BlockSpec, fp32_norm
from vistok.models.flextok.config import FlexTokConfig
from vistok.models.flextok.embeddings import PositionalEmbedding, patchify


@lru_cache(maxsize=16)
def _block_causal_mask(num_patches: int, num_registers: int, device: torch.device) -> torch.Tensor:
    n = num_patches + num_registers
    mask = torch.zeros(n, n, dtype=torch.bool, device=device)
    mask[:, :num_patches] = True
    mask[:num_patches, num_patches:] = False
    mask[num_patches:, num_patches:] = torch.ones(num_registers, num_registers, dtype=torch.bool,
                                                  device=device).tril()
    return mask


def block_causal_mask(num_patches: int, num_registers: int, device: torch.device) -> torch.Tensor:
    """``(P+N, P+N)`` boolean SDPA mask (True = may attend) for ``[patches, registers]``."""
    return _block_causal_mask(num_patches, num_registers, torch.device(device))


class FlexTokEncoder(nn.Module):
    """Scaled VAE latents ``(B, C, h, w)`` -> continuous register latents ``(B, num_registers, token_dim)``."""

    def __init__(self, cfg: FlexTokConfig):
        super().__init__()
        self.cfg = cfg
        dim, p = cfg.encoder_dim, cfg.patch_size
        self.patch_embed = nn.Linear(cfg.vae.latent_channels * p * p, dim)
        self.pos_embed = PositionalEmbedding(cfg.patch_posemb, dim, (cfg.grid_size, cfg.grid_size), cfg.posemb_scaling)
        self.registers = nn.Parameter(torch.empty(cfg.num_registers, dim))
        spec = BlockSpec(dim, cfg.head_dim, cfg.mlp_ratio, cfg.gated_mlp, cfg.qkv_bias, cfg.proj_bias,
                         cfg.mlp_bias, cfg.qk_norm)
        self.blocks = nn.ModuleList(Block(spec) for _ in range(cfg.encoder_depth))
        self.head = nn.Linear(dim, cfg.token_dim)
        nn.init.xavier_uniform_(self.patch_embed.weight)
        nn.init.zeros_(self.patch_embed.bias)
        nn.init.trunc_normal_(self.registers, std=0.02)
        nn.init.zeros_(self.head.weight)  # the release zero-initialises its output heads
        nn.init.zeros_(self.head.bias)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        b, _, h, w = latents.shape
        p = self.cfg.patch_size
        grid = (h // p, w // p)
        patches = self.patch_embed(patchify(latents, p))
        patches = patches + self.pos_embed(grid).reshape(1, grid[0] * grid[1], -1).to(patches.dtype)
        x = torch.cat([patches, self.registers.to(patches.dtype).expand(b, -1, -1)], dim=1)
        mask = block_causal_mask(patches.shape[1], self.cfg.num_registers, x.device)
        for block in self.blocks:
            x = block(x, mask)
        registers = x[:, patches.shape[1]:]
        if self.cfg.encoder_head_norm:
            registers = fp32_norm(registers)
        return self.head(registers)
