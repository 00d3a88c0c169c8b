"""TiTok: a ViT that compresses an image into a short 1D sequence of tokens (Yu et al., 2024).

Encoder: patches + learned latent tokens through a ViT; the latent positions become the tokens.
Bottleneck: cosine VQ (or a diagonal Gaussian for the KL variants). Decoder: a ViT that reads
the tokens and fills a grid of mask tokens, then either
- ``decoder="vqgan"`` (the original L-32 / B-64 / S-128 weights): predicts logits over the
  MaskGIT-VQGAN codebook at each grid cell; their softmax weights the codebook vectors, and the
  MaskGIT-VQGAN pixel decoder turns that latent into pixels; or
- ``decoder="pixels"`` (the later VQ-8k and VAE variants): regresses patches directly, then a
  3x3 convolution.

``legacy_reshape=True`` reproduces the original weights' token layout: before the output
projection, the ``(B, N, W)`` latent was reinterpreted in memory as ``(B, W, N)`` without a
transpose, so each token mixes features of several latent positions. Those weights only work with
it. Images are in [0, 1]; outputs are not clamped inside the model.
Flexible length (One-D-Piece): the decoder reads any prefix of the tokens, so
``decode(ids[:, :k])`` works, and training can drop tail tokens (``tail_drop``).
"""
from __future__ import annotations

import inspect

import random
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional, Union

import torch
from torch import nn

from vistok.models.base import ReconOut, Tokenizer
from vistok.models.maskgit_vqgan import VQGANDecoder, VQGANDecoderConfig
from vistok.nn.transformer import TransformerStack, ViTSize, resolve_size
from vistok.quant import Stats, VectorQuantizer


@dataclass
class TiTokConfig:
    """Everything that defines a TiTok tokenizer's architecture."""

    image_size: int = 256
    patch_size: int = 16
    encoder_size: Union[str, Dict[str, Any]] = "large"
    decoder_size: Union[str, Dict[str, Any]] = "large"
    num_latent_tokens: int = 32
    bottleneck: str = "vq"  # "vq" or "kl"
    codebook_size: int = 4096
    token_size: int = 12
    use_l2_norm: bool = True
    commitment_cost: float = 0.25
    decoder: str = "vqgan"  # "vqgan" (two-stage weights) or "pixels"
    legacy_reshape: bool = True
    pixel_codebook_size: int = 1024
    pixel_decoder: Dict[str, Any] = field(default_factory=dict)  # VQGANDecoderConfig overrides
    tail_drop: Optional[str] = None  # training only: None, "uniform" or "pow2"
    # Extra VectorQuantizer arguments for training your own (kmeans_init, dead_code_threshold,
    # ema_decay, gradient, ...); the released checkpoints use none of them.
    quantizer_options: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.bottleneck not in ("vq", "kl"):
            raise ValueError(f"bottleneck must be 'vq' or 'kl', got {self.bottleneck!r}")
        if self.decoder not in ("vqgan", "pixels"):
            raise ValueError(f"decoder must be 'vqgan' or 'pixels', got {self.decoder!r}")
        if self.image_size < 1 or self.patch_size < 1:
            raise ValueError(f"image_size and patch_size must be positive, got {self.image_size} and {self.patch_size}")
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.tail_drop not in (None, "uniform", "pow2"):
            raise ValueError(f"tail_drop must be None, 'uniform' or 'pow2', got {self.tail_drop!r}")
        allowed = set(inspect.signature(VectorQuantizer).parameters) - {"codebook_size", "dim", "l2_norm", "commitment"}
        unknown = sorted(set(self.quantizer_options) - allowed)
        if unknown:
            raise ValueError(f"quantizer_options: unknown {unknown}; VectorQuantizer takes {sorted(allowed)}")

    @property
    def grid_size(self) -> int:
        return self.image_size // self.patch_size

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _param(*shape: int, scale: float) -> nn.Parameter:
    return nn.Parameter(scale * torch.randn(*shape))


class _ViTTrunk(nn.Module):
    """What encoder and decoder share: a class token and a grid of positions, positions for the
    latent tokens, and the pre-norm / transformer / post-norm stack."""

    def __init__(self, cfg: TiTokConfig, size: ViTSize):
        super().__init__()
        self.cfg = cfg
        w = size.width
        self.cls_token = _param(1, w, scale=w**-0.5)
        self.pos_embed = _param(cfg.grid_size**2 + 1, w, scale=w**-0.5)
        self.latent_pos_embed = _param(cfg.num_latent_tokens, w, scale=w**-0.5)
        self.norm_pre = nn.LayerNorm(w)
        self.transformer = TransformerStack(size)
        self.norm_post = nn.LayerNorm(w)


class TiTokEncoder(_ViTTrunk):
    """Image -> ``(B, N, token_size)`` (twice that for the KL bottleneck: mean and log-variance)."""

    def __init__(self, cfg: TiTokConfig, size: ViTSize):
        super().__init__(cfg, size)
        w = size.width
        self.patch_embed = nn.Conv2d(3, w, cfg.patch_size, cfg.patch_size)
        self.latent_tokens = _param(cfg.num_latent_tokens, w, scale=w**-0.5)
        out = cfg.token_size * (2 if cfg.bottleneck == "kl" else 1)
        self.proj_out = nn.Linear(w, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        patches = self.patch_embed(x).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(b, -1, -1).to(patches.dtype)
        seq = torch.cat([cls, patches], dim=1) + self.pos_embed.to(patches.dtype)
        latents = (self.latent_tokens + self.latent_pos_embed).to(seq.dtype).expand(b, -1, -1)
        seq = self.transformer(self.norm_pre(torch.cat([seq, latents], dim=1)))
        tokens = self.norm_post(seq[:, -self.cfg.num_latent_tokens :])
        if self.cfg.legacy_reshape:
            # (B, N, W) memory read as (B, W, N): see the module docstring.
            tokens = tokens.reshape(b, tokens.shape[2], tokens.shape[1]).transpose(1, 2)
        return self.proj_out(tokens)


class TiTokDecoder(_ViTTrunk):
    """``(B, k, token_size)`` tokens (any k <= N) -> pixels, or MaskGIT-VQGAN code logits."""

    def __init__(self, cfg: TiTokConfig, size: ViTSize):
        super().__init__(cfg, size)
        w = size.width
        self.embed = nn.Linear(cfg.token_size, w)
        self.mask_token = _param(1, 1, w, scale=w**-0.5)
        if cfg.decoder == "vqgan":
            self.head = nn.Sequential(nn.Linear(w, 2 * w), nn.Tanh(), nn.Linear(2 * w, cfg.pixel_codebook_size))
        else:
            self.head = nn.Linear(w, cfg.patch_size * cfg.patch_size * 3)
            self.conv_out = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, z_q: torch.Tensor) -> torch.Tensor:
        b, k, _ = z_q.shape
        if k > self.cfg.num_latent_tokens:
            raise ValueError(f"got {k} tokens, this decoder reads at most {self.cfg.num_latent_tokens}")
        g = self.cfg.grid_size
        tokens = self.embed(z_q) + self.latent_pos_embed[:k].to(z_q.dtype)
        grid = torch.cat([self.cls_token.unsqueeze(0), self.mask_token.expand(1, g * g, -1)], dim=1)
        grid = (grid + self.pos_embed).to(tokens.dtype).expand(b, -1, -1)
        seq = self.transformer(self.norm_pre(torch.cat([grid, tokens], dim=1)))
        cells = self.head(self.norm_post(seq[:, 1 : 1 + g * g]))  # (B, g*g, C)
        if self.cfg.decoder == "vqgan":
            return cells.transpose(1, 2).reshape(b, -1, g, g)  # code logits (B, 1024, g, g)
        p = self.cfg.patch_size
        pixels = cells.reshape(b, g, g, p, p, 3).permute(0, 5, 1, 3, 2, 4).reshape(b, 3, g * p, g * p)
        return self.conv_out(pixels)


class TiTok(Tokenizer):
    """The TiTok tokenizer family (VQ or KL bottleneck, two-stage or pixel decoder)."""

    family = "titok"
    config_class = TiTokConfig
    prefix_decoding = True
    accepts_perturbation = True

    def __init__(self, config: Union[TiTokConfig, Dict[str, Any]]):
        super().__init__()
        cfg = config if isinstance(config, TiTokConfig) else TiTokConfig(**config)
        self.config = cfg
        self.encoder = TiTokEncoder(cfg, resolve_size(cfg.encoder_size))
        self.decoder = TiTokDecoder(cfg, resolve_size(cfg.decoder_size))
        if cfg.bottleneck == "vq":
            self.quantize = VectorQuantizer(cfg.codebook_size, cfg.token_size, l2_norm=cfg.use_l2_norm,
                                            commitment=cfg.commitment_cost, **cfg.quantizer_options)
        # Training-time latent perturbation (RobusTok), set by the engine; never saved.
        self.perturbation: Optional[nn.Module] = None
        if cfg.decoder == "vqgan":
            pixel_cfg = VQGANDecoderConfig(**_tuple_mult(cfg.pixel_decoder))
            self.pixel_codebook = nn.Parameter(torch.randn(cfg.pixel_codebook_size, pixel_cfg.z_channels) * 0.02)
            self.pixel_decoder = VQGANDecoder(pixel_cfg)

    @property
    def num_tokens(self) -> int:
        return self.config.num_latent_tokens

    def token_quantizer(self) -> Optional[nn.Module]:
        return self.quantize if self.config.bottleneck == "vq" else None

    def quantizer_input(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        return self.encoder(x)  # (B, N, token_size)

    @property
    def last_layer_weight(self) -> torch.Tensor:
        """The weight the adaptive (VQGAN) adversarial weight balances gradients at."""
        if self.config.decoder == "vqgan":
            return self.pixel_decoder.conv_out.weight
        return self.decoder.conv_out.weight

    # ----- bottleneck -----

    def _bottleneck(self, z: torch.Tensor, sample: bool):
        if self.config.bottleneck == "vq":
            out = self.quantize(z)
            if self.training and self.perturbation is not None:
                out = self.perturbation(self.quantize, z, out)
            return out.z_q, out.indices, out.loss, out.stats
        mean, logvar = z.float().chunk(2, dim=-1)
        logvar = logvar.clamp(-30.0, 20.0)
        latent = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean) if sample else mean
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1).mean()
        return latent.to(z.dtype), None, kl, Stats({"kl": kl.detach()})

    def _keep_tokens(self) -> int:
        n = self.num_tokens
        if not self.training or self.config.tail_drop is None:
            return n
        if self.config.tail_drop == "uniform":
            return random.randint(1, n)
        powers = [2**i for i in range(n.bit_length()) if 2**i <= n]
        return random.choice(powers)

    # ----- public API -----

    def encode(self, x: torch.Tensor, num_tokens: Optional[int] = None, sample: bool = False) -> torch.Tensor:
        """Images ``(B, 3, H, W)`` in [0, 1] -> token ids ``(B, k)`` (VQ) or continuous tokens
        ``(B, k, token_size)`` (KL; the posterior mean unless ``sample``)."""
        k = self.num_tokens if num_tokens is None else num_tokens
        if not 1 <= k <= self.num_tokens:
            raise ValueError(f"num_tokens must be in 1..{self.num_tokens}, got {k}")
        z_q, indices, _, _ = self._bottleneck(self.encoder(x), sample)
        return indices[:, :k] if indices is not None else z_q[:, :k]

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids ``(B, k)`` (or continuous tokens ``(B, k, d)``) -> images ``(B, 3, H, W)``."""
        if self.config.bottleneck == "vq":
            if tokens.dtype not in (torch.int32, torch.int64):
                raise TypeError(f"decode expects integer token ids, got {tokens.dtype}")
            latent = self.quantize.decode_indices(tokens.long())
        else:
            latent = tokens
        return self.decode_latent(latent)

    def decode_latent(self, z_q: torch.Tensor) -> torch.Tensor:
        out = self.decoder(z_q)
        if self.config.decoder == "vqgan":
            weights = out.softmax(dim=1)  # soft mixture of MaskGIT-VQGAN codes, not an argmax
            latent = torch.einsum("bkhw,kc->bchw", weights, self.pixel_codebook.to(weights.dtype))
            out = self.pixel_decoder(latent)
        return out

    def forward(self, x: torch.Tensor, output: str = "pixels") -> ReconOut:
        """Reconstruct ``x``. ``output="code_logits"`` (two-stage decoder only) stops before the
        pixel decoder: ``recon`` is then the ``(B, 1024, g, g)`` MaskGIT-VQGAN code logits that
        stage-1 training fits to the proxy codes."""
        if output not in ("pixels", "code_logits"):
            raise ValueError(f"output must be 'pixels' or 'code_logits', got {output!r}")
        if output == "code_logits" and self.config.decoder != "vqgan":
            raise ValueError("output='code_logits' needs the two-stage decoder (decoder: vqgan)")
        z_q, indices, loss, stats = self._bottleneck(self.encoder(x), sample=self.training)
        keep = self._keep_tokens()
        recon = self.decoder(z_q[:, :keep]) if output == "code_logits" else self.decode_latent(z_q[:, :keep])
        stats = stats.merged({"kept_tokens": float(keep)})
        return ReconOut(recon=recon, indices=indices, loss=loss, latent=z_q, stats=stats)


def _tuple_mult(overrides: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(overrides)
    if "channel_mult" in out:
        out["channel_mult"] = tuple(out["channel_mult"])
    return out
