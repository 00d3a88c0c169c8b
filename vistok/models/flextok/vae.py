"""The FlexTok VAE: a diffusers ``AutoencoderKL`` (f8; 4, 8 or 16 latent channels), frozen inside FlexTok.

Latents are multiplied by ``scaling_factor`` after encoding and divided by it before decoding,
as the release does. The factor comes from the checkpoint's config; a VAE built without one
refuses to encode or decode rather than guess. The released wrapper samples the posterior by
default (``sample_posterior``); ``encode`` follows the config unless told otherwise.

A posterior sample is ``mean + std * noise``. Its noise comes from ``generator``: one
``torch.Generator`` for the whole batch (diffusers' draw, the release's), or a sequence of
generators, one per image, each drawing that image's ``(1, C, h, w)`` standard normal in fp32 on
its own device. Per-image generators make an image's sample independent of the batch it is in
(evaluation seeds them from ``(seed, 'posterior', image index)``); neither touches the global RNG.
Without a generator the draw comes from the global generator.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import torch
from torch import nn

from vistok.models.base import ReconOut, Tokenizer
from vistok.quant import Stats

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class FlexTokVAEConfig:
    """Architecture of the AutoencoderKL (the release's base config with its latent width)."""

    image_size: int = 256
    latent_channels: int = 16
    block_out_channels: List[int] = field(default_factory=lambda: [128, 256, 512, 512])
    layers_per_block: int = 2
    norm_num_groups: int = 32
    scaling_factor: Optional[float] = None
    sample_posterior: bool = True
    precision: str = "fp32"  # the VAE runs in this precision whatever the caller's autocast

    def __post_init__(self):
        self.block_out_channels = [int(c) for c in self.block_out_channels]
        if self.precision not in PRECISIONS:
            raise ValueError(f"VAE precision must be one of {sorted(PRECISIONS)}, got {self.precision!r}")

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)

    @property
    def bottleneck(self) -> str:  # continuous latents (read by `tokzoo encode`)
        return "kl"

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def build_autoencoder(cfg: FlexTokVAEConfig) -> nn.Module:
    try:
        from diffusers.models import AutoencoderKL
    except ImportError:  # pragma: no cover - a dependency of the package
        raise ImportError("FlexTok needs diffusers (pip install diffusers) for its AutoencoderKL") from None
    depth = len(cfg.block_out_channels)
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * depth,
                         up_block_types=["UpDecoderBlock2D"] * depth, block_out_channels=cfg.block_out_channels,
                         layers_per_block=cfg.layers_per_block, act_fn="silu", latent_channels=cfg.latent_channels,
                         norm_num_groups=cfg.norm_num_groups, sample_size=1024,
                         scaling_factor=cfg.scaling_factor if cfg.scaling_factor is not None else 1.0)


Generators = Union[torch.Generator, Sequence[torch.Generator], None]


def posterior_sample(dist, generator: Generators = None) -> torch.Tensor:
    """A sample of the diagonal Gaussian ``dist`` (diffusers' ``DiagonalGaussianDistribution``).

    ``generator``: None or one generator (``dist.sample``, as diffusers draws), or one generator per
    image in batch order: image ``b`` gets ``randn((1, C, h, w))`` in fp32 from ``generator[b]``
    (drawn on that generator's device, then moved), whatever the batch and the VAE's precision."""
    if generator is None or isinstance(generator, torch.Generator):
        return dist.sample(generator)
    generators = list(generator)
    mean = dist.mean
    if len(generators) != mean.shape[0]:
        raise ValueError(f"got {len(generators)} posterior generators for a batch of {mean.shape[0]} images")
    shape = (1, *mean.shape[1:])
    noise = torch.cat([torch.randn(shape, generator=g, device=g.device, dtype=torch.float32).to(mean.device)
                       for g in generators])
    return mean.float() + dist.std.float() * noise


class FlexTokVAE(Tokenizer):
    """Images in [0, 1] <-> scaled latents ``(B, C, H/8, W/8)``; a zoo model of its own and FlexTok's stage 0."""

    family = "flextok_vae"
    config_class = FlexTokVAEConfig

    def __init__(self, config: Union[FlexTokVAEConfig, Dict[str, Any]]):
        super().__init__()
        self.config = config if isinstance(config, FlexTokVAEConfig) else FlexTokVAEConfig(**config)
        self.autoencoder = build_autoencoder(self.config)

    @property
    def samples_posterior(self) -> bool:
        return bool(self.config.sample_posterior)

    @property
    def scaling_factor(self) -> float:
        if self.config.scaling_factor is None:
            raise ValueError(
                "this FlexTok VAE has no latent scaling_factor: it is part of the checkpoint's config. Load the "
                "official checkpoint with vistok.models.flextok.convert.load_official / load_official_vae (which read it), or "
                "set config.scaling_factor (a VAE trained with tokzoo train gets 1 / std of its latents at export)")
        return float(self.config.scaling_factor)

    def _precision(self, device: torch.device):
        dtype = PRECISIONS[self.config.precision]
        return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)

    def encode_signed(self, x: torch.Tensor, sample: Optional[bool] = None,
                      generator: Generators = None) -> torch.Tensor:
        """Images in [-1, 1] -> scaled latents (posterior sample or mode; ``sample`` defaults to
        ``config.sample_posterior``). ``generator``: one, or one per image (see
        :func:`posterior_sample`); unused for the mode."""
        sample = self.config.sample_posterior if sample is None else sample
        with self._precision(x.device):
            dist = self.autoencoder.encode(x.float()).latent_dist
            latents = posterior_sample(dist, generator) if sample else dist.mode()
        return latents.float() * self.scaling_factor

    def decode_signed(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents -> images in [-1, 1] (not clamped)."""
        with self._precision(latents.device):
            return self.autoencoder.decode(latents.float() / self.scaling_factor).sample.float()

    def encode(self, x: torch.Tensor, sample: Optional[bool] = None,
               generator: Generators = None) -> torch.Tensor:
        """Images ``(B, 3, H, W)`` in [0, 1] -> scaled latents (``sample``, ``generator``: as
        :meth:`encode_signed`)."""
        return self.encode_signed(x * 2 - 1, sample, generator)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents -> images in [0, 1] (not clamped)."""
        return (self.decode_signed(latents) + 1) / 2

    def forward(self, x: torch.Tensor) -> ReconOut:
        """Autoencode with a posterior sample in training, the mode in eval; ``loss`` is the KL
        (mean over the batch of the sum over latent elements)."""
        with self._precision(x.device):
            dist = self.autoencoder.encode((x * 2 - 1).float()).latent_dist
            z = dist.sample() if self.training else dist.mode()
            recon = self.autoencoder.decode(z).sample.float()
        kl = dist.kl().float().mean()
        return ReconOut(recon=(recon + 1) / 2, indices=None, loss=kl, latent=z.float(), stats=Stats({"kl": kl.detach()}))

    @property
    def last_layer_weight(self) -> torch.Tensor:
        return self.autoencoder.decoder.conv_out.weight

    @torch.no_grad()
    def prepare_export(self, batches: Iterable[torch.Tensor]) -> None:
        """Called by the training engine before export: a VAE trained without a ``scaling_factor``
        gets ``1 / std`` of its posterior samples over ``batches`` (images in [0, 1]), the Stable
        Diffusion convention, so that FlexTok sees latents of unit variance. A set factor is kept."""
        if self.config.scaling_factor is not None:
            return
        was_training = self.training
        self.eval()
        total, total_sq, count = 0.0, 0.0, 0
        for x in batches:
            x = x.to(self.last_layer_weight.device)
            with self._precision(x.device):
                z = self.autoencoder.encode((x * 2 - 1).float()).latent_dist.sample().double()
            total, total_sq, count = total + z.sum().item(), total_sq + z.pow(2).sum().item(), count + z.numel()
        self.train(was_training)
        if count < 2:
            raise ValueError("prepare_export: no images to measure the latent scaling factor on")
        std = math.sqrt(max(total_sq / count - (total / count) ** 2, 1e-12))
        self.config.scaling_factor = float(f"{1.0 / std:.5g}")
