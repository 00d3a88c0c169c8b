"""FlexTok: images -> 256 ordered FSQ ids, any prefix of which decodes (Bachmann et al., 2025).

Images are in [0, 1] at the interface (the release works in [-1, 1]; the conversion happens
here). ``encode`` is deterministic when the VAE takes its posterior mode; with
``sample_posterior`` (the release's default) pass ``generator`` (one, or one per image: see
``vae.posterior_sample``) for repeatable ids. ``decode`` samples the rectified-flow decoder, so
pass ``generator`` (one ``randn((1, C, h, w))`` per image, in batch order, as the release draws) or
``noise`` for repeatable images.

Training: ``flow_matching_loss`` and ``forward``. ``forward(x)`` returns a :class:`ReconOut` whose
``loss`` is the flow-matching loss (plus ``repa_weight`` times the REPA loss) and whose
``recon`` is, in training mode, the VAE decoding of the one-step estimate
``x_0 = x_t - t * v`` at the sampled t (no gradient; for logging only), and in eval mode a full
decode with the config's sampling defaults (``eval_decode_steps`` steps when set, fixed noise).
The VAE is frozen and always in eval mode.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F

from vistok.models.base import ReconOut, Tokenizer
from vistok.models.flextok.config import FlexTokConfig
from vistok.models.flextok.decoder import FlexTokDecoder
from vistok.models.flextok.encoder import FlexTokEncoder
from vistok.models.flextok.repa import RepaTeacher, repa_loss
from vistok.models.flextok.sampling import Guidance, Scale, euler_sample
from vistok.models.flextok.training import fsq_noise, sample_keep_k, sample_timesteps
from vistok.models.flextok.vae import FlexTokVAE, Generators
from vistok.quant import FSQ, Stats


@dataclass
class FlowTerms:
    """One flow-matching evaluation: the loss and what produced it."""

    loss: torch.Tensor
    stats: Stats
    ids: torch.Tensor
    quants: torch.Tensor
    noised: torch.Tensor
    t: torch.Tensor
    velocity: torch.Tensor


class FlexTok(Tokenizer):
    """The FlexTok tokenizer family (frozen VAE, block-causal encoder, FSQ, rectified-flow decoder)."""

    family = "flextok"
    config_class = FlexTokConfig
    prefix_decoding = True
    accepts_perturbation = True

    def __init__(self, config: Union[FlexTokConfig, Dict[str, Any]]):
        super().__init__()
        cfg = config if isinstance(config, FlexTokConfig) else FlexTokConfig(**config)
        self.config = cfg
        self.vae = FlexTokVAE(cfg.vae).requires_grad_(False)
        self.encoder = FlexTokEncoder(cfg)
        self.quantize = FSQ(cfg.fsq_levels)
        self.decoder = FlexTokDecoder(cfg)
        # Training-time hooks, set by the engine; never saved.
        self.perturbation: Optional[torch.nn.Module] = None
        self._repa_teacher: Optional[RepaTeacher] = None

    @property
    def num_tokens(self) -> int:
        return self.config.num_registers

    @property
    def last_layer_weight(self) -> torch.Tensor:
        return self.decoder.head.weight

    def token_quantizer(self) -> torch.nn.Module:
        return self.quantize

    def quantizer_input(self, x: torch.Tensor, generator: Generators = None) -> torch.Tensor:
        return self.encoder(self.vae.encode(x, generator=generator))  # (B, N, len(fsq_levels))

    @property
    def samples_posterior(self) -> bool:
        return bool(self.config.vae.sample_posterior)

    def decode_noise_shape(self) -> Tuple[int, ...]:
        return (self.config.vae.latent_channels, self.config.latent_size, self.config.latent_size)

    def prepare_training(self) -> None:
        self.load_repa_teacher()

    def train(self, mode: bool = True) -> "FlexTok":
        super().train(mode)
        self.vae.eval()
        return self

    # ----- tokens -----

    def encode(self, x: torch.Tensor, num_tokens: Optional[int] = None, sample_posterior: Optional[bool] = None,
               generator: Generators = None) -> torch.Tensor:
        """Images ``(B, 3, H, W)`` in [0, 1] -> ids ``(B, k)`` (k = num_tokens, default all).

        sample_posterior: default ``config.vae.sample_posterior``. generator: the posterior noise,
        one generator or a sequence of one per image (``vae.posterior_sample``); else the global RNG."""
        latents = self.vae.encode(x, sample_posterior, generator)
        return self.encode_latents(latents, num_tokens)

    def encode_latents(self, latents: torch.Tensor, num_tokens: Optional[int] = None) -> torch.Tensor:
        """Scaled VAE latents -> ids ``(B, k)``."""
        k = self.num_tokens if num_tokens is None else int(num_tokens)
        if not 1 <= k <= self.num_tokens:
            raise ValueError(f"num_tokens must be in 1..{self.num_tokens}, got {k}")
        return self.quantize(self.encoder(latents)).indices[:, :k]

    def _prefix(self, ids: torch.Tensor, num_tokens) -> Tuple[torch.Tensor, torch.Tensor]:
        """Pad ids to the full length; the number of kept tokens per sample ``(B,)``."""
        if ids.dtype not in (torch.int32, torch.int64):
            raise TypeError(f"decode expects integer token ids, got {ids.dtype}")
        b, k = ids.shape
        if not 1 <= k <= self.num_tokens:
            raise ValueError(f"got {k} tokens per image; FlexTok decodes 1..{self.num_tokens}")
        if num_tokens is None:
            keep = torch.full((b,), k, dtype=torch.long, device=ids.device)
        else:
            keep = torch.as_tensor(num_tokens, dtype=torch.long, device=ids.device).expand(b).clone()
            if bool((keep < 1).any()) or bool((keep > k).any()):
                raise ValueError(f"num_tokens must be in 1..{k} (the ids given), got {keep.tolist()}")
        if k < self.num_tokens:
            ids = torch.cat([ids, ids.new_zeros(b, self.num_tokens - k)], dim=1)
        return ids.long(), keep

    def _initial_noise(self, b: int, latent_size, generator, noise, device) -> torch.Tensor:
        c = self.config.vae.latent_channels
        if noise is not None:
            if noise.shape[:2] != (b, c):
                raise ValueError(f"noise must be (B={b}, C={c}, h, w), got {tuple(noise.shape)}")
            return noise.to(device, torch.float32)
        h, w = (latent_size, latent_size) if isinstance(latent_size, int) else latent_size
        draw_on = generator.device if generator is not None else device
        # One draw per image, in batch order: the release's convention, so seeds match.
        return torch.cat([torch.randn((1, c, h, w), generator=generator, device=draw_on) for _ in range(b)]).to(device)

    @torch.no_grad()
    def sample_latents(self, ids: torch.Tensor, num_tokens=None, steps: Optional[int] = None,
                       guidance: Optional[Scale] = None, apg: Optional[bool] = None,
                       generator: Optional[torch.Generator] = None, noise: Optional[torch.Tensor] = None,
                       latent_size=None) -> torch.Tensor:
        """Ids ``(B, k)`` -> scaled VAE latents by flow sampling (see :meth:`decode`)."""
        cfg = self.config
        ids, keep = self._prefix(ids, num_tokens)
        quants = self.quantize.decode_indices(ids)
        cond, _ = self.decoder.condition(quants, keep)
        g = Guidance(cfg.decode_guidance if guidance is None else guidance, cfg.decode_apg if apg is None else apg)
        if g.active:
            uncond, _ = self.decoder.condition(quants, keep, torch.ones_like(keep, dtype=torch.bool))
        x = self._initial_noise(ids.shape[0], latent_size or cfg.latent_size, generator, noise, ids.device)

        def velocity(x_t, t, with_uncond):
            if not with_uncond:
                return self.decoder(x_t, t, cond)
            if uncond.shape[1] == cond.shape[1]:  # one batched pass for both predictions
                v = self.decoder(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([cond, uncond]))
                return v.chunk(2)
            return self.decoder(x_t, t, cond), self.decoder(x_t, t, uncond)

        return euler_sample(velocity, x, cfg.decode_steps if steps is None else steps, g)

    def decode(self, ids: torch.Tensor, num_tokens=None, steps: Optional[int] = None,
               guidance: Optional[Scale] = None, apg: Optional[bool] = None,
               generator: Optional[torch.Generator] = None, noise: Optional[torch.Tensor] = None,
               latent_size=None) -> torch.Tensor:
        """Ids ``(B, k)``, any k in 1..256 -> images ``(B, 3, H, W)`` in [0, 1] (not clamped).

        num_tokens: an int or a ``(B,)`` tensor of per-image token counts (<= k), to decode a batch
        of different lengths in one call. steps / guidance (a float or a function of t) / apg
        default to the config's ``decode_*``. noise: the initial latent noise ``(B, C, h, w)``;
        else drawn from ``generator``. latent_size: the VAE latent grid (default image_size / 8).
        """
        latents = self.sample_latents(ids, num_tokens, steps, guidance, apg, generator, noise, latent_size)
        with torch.no_grad():
            return self.vae.decode(latents)

    # ----- training -----

    def sample_keep_k(self, batch: int, generator: Optional[torch.Generator] = None,
                      device: Optional[torch.device] = None) -> torch.Tensor:
        """Nested-dropout token counts ``(batch,)`` drawn as ``config.nested_dropout`` says."""
        return sample_keep_k(batch, self.num_tokens, self.config.nested_dropout, generator,
                             device or self.decoder.mask_token.device)

    def _quantize(self, z: torch.Tensor):
        out = self.quantize(z)
        if self.training and self.perturbation is not None:
            out = self.perturbation(self.quantize, z, out)
        z_q, ids = out.z_q, out.indices
        cfg = self.config
        if self.training and (cfg.fsq_drop_quant_p > 0 or cfg.corrupt_tokens_p > 0):
            z_q, ids = fsq_noise(self.quantize, z, z_q, ids, cfg.fsq_drop_quant_p, cfg.corrupt_tokens_p,
                                 cfg.min_corrupt_tokens_p, cfg.apply_corrupt_tokens_p)
        return z_q, ids

    def load_repa_teacher(self) -> None:
        """Build the REPA teacher now, when REPA is on (else at the first training step), so that
        missing teacher weights stop a run before it starts."""
        if self.config.repa_weight > 0 and self._repa_teacher is None:
            self._repa_teacher = RepaTeacher(self.config.repa_encoder, self.config.repa_input_size,
                                             weights=self.config.repa_weights)

    def _repa(self, features: torch.Tensor, images: Optional[torch.Tensor]) -> torch.Tensor:
        if images is None:
            raise ValueError("REPA needs the images: call flow_matching_loss(x=...) rather than with latents only")
        self.load_repa_teacher()
        g = self.config.grid_size
        return repa_loss(self.decoder.repa_head(features), self._repa_teacher.features(images), (g, g))

    def flow_terms(self, x: Optional[torch.Tensor] = None, latents: Optional[torch.Tensor] = None,
                   keep_k: Optional[torch.Tensor] = None, t: Optional[torch.Tensor] = None,
                   noise: Optional[torch.Tensor] = None) -> FlowTerms:
        """The flow-matching loss with everything it was computed from (see :meth:`flow_matching_loss`)."""
        cfg = self.config
        if latents is None:
            if x is None:
                raise ValueError("flow_matching_loss needs images x or VAE latents")
            with torch.no_grad():
                latents = self.vae.encode(x)
        latents = latents.float()
        b, device = latents.shape[0], latents.device
        quants, ids = self._quantize(self.encoder(latents))
        if keep_k is None and self.training:
            keep_k = self.sample_keep_k(b, device=device)
        null = None
        if self.training and cfg.cfg_dropout > 0:
            null = torch.rand(b, device=device) < cfg.cfg_dropout
        registers, present = self.decoder.condition(quants, keep_k, null)
        t = sample_timesteps(b, cfg.timestep_sampling, cfg.timestep_mode_scale, device=device) if t is None else t
        noise = torch.randn_like(latents) if noise is None else noise
        tt = t.float().view(b, 1, 1, 1)
        noised = tt * noise + (1 - tt) * latents
        use_repa = cfg.repa_weight > 0 and self.decoder.repa_head is not None and self.training
        out = self.decoder(noised, t.float(), registers, present, cfg.repa_layer if use_repa else None)
        velocity, features = out if use_repa else (out, None)
        flow = F.mse_loss(velocity.float(), (noise - latents).float())
        stats = {"flow_loss": flow.detach(), "t": t.float().mean().detach()}
        loss = flow
        if use_repa:
            repa = self._repa(features, x)
            loss = loss + cfg.repa_weight * repa
            stats["repa_loss"] = repa.detach()
        if keep_k is not None:
            stats["keep_k"] = keep_k.float().mean().detach()
        return FlowTerms(loss, Stats(stats), ids, quants, noised, t.float(), velocity)

    def flow_matching_loss(self, x: Optional[torch.Tensor] = None, latents: Optional[torch.Tensor] = None,
                           keep_k: Optional[torch.Tensor] = None, t: Optional[torch.Tensor] = None,
                           noise: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Stats]:
        """Rectified-flow loss ``mean |v(x_t, t) - (noise - x_0)|^2`` on images ``x`` in [0, 1] (or
        precomputed scaled VAE ``latents``), t logit-normal by default, nested dropout and CFG
        dropout in training mode; plus ``repa_weight`` x the REPA loss when enabled.
        Returns ``(loss, stats)``; keep_k / t / noise may be given to fix the draws."""
        terms = self.flow_terms(x, latents, keep_k, t, noise)
        return terms.loss, terms.stats

    def forward(self, x: torch.Tensor, reconstruct: bool = True) -> ReconOut:
        """Flow-matching loss for a generic training loop; ``recon`` as described in the module
        docstring, or None with ``reconstruct=False`` (training then skips the VAE decoder)."""
        terms = self.flow_terms(x)
        with torch.no_grad():
            if not reconstruct:
                recon = None
            elif self.training:
                x0 = terms.noised - terms.t.view(-1, 1, 1, 1) * terms.velocity.float()
                recon = self.vae.decode(x0)
            else:
                # Fixed noise, so successive held-out checks differ only by the weights.
                recon = self.decode(terms.ids, steps=self.config.eval_decode_steps,
                                    generator=torch.Generator().manual_seed(0))
        return ReconOut(recon=recon, indices=terms.ids, loss=terms.loss, latent=terms.quants, stats=terms.stats)
