"""Random draws of FlexTok training: nested-dropout token counts, flow timesteps, FSQ noise.

All use torch generators (the release draws token counts with numpy's global RNG), so a training
step is reproducible from ``torch.manual_seed`` or an explicit generator.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch

from vistok.quant import FSQ


def _where(generator: Optional[torch.Generator], device) -> torch.device:
    """Draws happen on the generator's device (a CPU generator cannot fill a CUDA tensor)."""
    return generator.device if generator is not None else torch.device(device)


def _rand(shape, generator, device) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=_where(generator, device)).to(device)


def sample_keep_k(batch: int, num_tokens: int, mode: str, generator: Optional[torch.Generator] = None,
                  device: torch.device = torch.device("cpu")) -> torch.Tensor:
    """How many leading tokens each sample keeps, ``(batch,)`` int64 in 1..num_tokens.

    ``uniform``: k ~ U{1..N}; ``pow2``: k uniform over {1, 2, 4, ..., N}; ``uniform_pow2``:
    k ~ U{1..N} rounded up to the next power of two (so larger powers are likelier).
    """
    gen_device = _where(generator, device)
    if mode == "pow2":
        powers = 2 ** torch.arange(int(math.log2(num_tokens)) + 1, device=gen_device)
        pick = torch.randint(len(powers), (batch,), generator=generator, device=gen_device)
        return powers[pick].to(device)
    k = torch.randint(1, num_tokens + 1, (batch,), generator=generator, device=gen_device)
    if mode == "uniform_pow2":
        k = (2 ** torch.ceil(torch.log2(k.double()))).long()
    elif mode != "uniform":
        raise ValueError(f"unknown nested-dropout mode {mode!r}")
    return k.to(device)


def sample_timesteps(batch: int, mode: str = "logit_normal", mode_scale: float = 0.0,
                     generator: Optional[torch.Generator] = None,
                     device: torch.device = torch.device("cpu")) -> torch.Tensor:
    """Flow times t in (0, 1) (t = 1 is pure noise): logit-normal (sigmoid of N(0, 1)), its
    stratified variant (one draw per batch quantile), or uniform with SD3's mode scale."""
    gen_device = _where(generator, device)
    if mode == "logit_normal":
        t = torch.sigmoid(torch.randn(batch, generator=generator, device=gen_device))
    elif mode == "stratified_logit_normal":
        u = (torch.arange(batch, device=gen_device) + torch.rand(batch, generator=generator, device=gen_device)) / batch
        t = torch.sigmoid(torch.erfinv(2 * u - 1) * math.sqrt(2))
    elif mode == "uniform":
        u = torch.rand(batch, generator=generator, device=gen_device)
        t = 1 - u - mode_scale * (torch.cos(math.pi * u / 2) ** 2 - 1 + u) if mode_scale else u
    else:
        raise ValueError(f"unknown timestep sampling {mode!r}")
    return t.float().to(device)


def fsq_noise(fsq: FSQ, z: torch.Tensor, z_q: torch.Tensor, ids: torch.Tensor, drop_quant_p: float,
              corrupt_p: float, min_corrupt_p: Optional[float], apply_corrupt_p: float,
              generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """The release's FSQ training options, per sample.

    drop_quant_p: a sample passes the bounded, unrounded latent (its ids stay the rounded ones).
    corrupt_p: with probability ``apply_corrupt_p`` a sample has a fraction ~ U(min_corrupt_p,
    corrupt_p) of its tokens replaced by uniformly random codes (ids follow the corruption).
    """
    b, device = z.shape[0], z.device
    if drop_quant_p > 0:
        drop = _rand((b,), generator, device) < drop_quant_p
        z_q = torch.where(drop[:, None, None], fsq.continuous(z.float()).to(z_q.dtype), z_q)
    if corrupt_p > 0:
        low = corrupt_p if min_corrupt_p is None else min_corrupt_p
        fraction = low + (corrupt_p - low) * _rand((b,), generator, device)
        active = _rand((b,), generator, device) < apply_corrupt_p
        hit = (_rand(ids.shape, generator, device) < fraction[:, None]) & active[:, None]
        random_ids = torch.randint(fsq.codebook_size, ids.shape, generator=generator,
                                   device=_where(generator, device)).to(device)
        z_q = torch.where(hit[..., None], fsq.decode_indices(random_ids).to(z_q.dtype), z_q)
        ids = torch.where(hit, random_ids, ids)
    return z_q, ids
