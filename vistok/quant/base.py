"""The interface every quantizer shares, and helpers for layouts and precision."""
from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Dict, Iterator, Optional, Union

import torch
from torch import nn


class Stats(Mapping):
    """Read-only mapping of statistic name -> float.

    Values are stored as detached 0-d tensors and turned into Python floats only when read,
    so a training step that never looks at them does not pay a device synchronisation.
    """

    def __init__(self, values: Optional[Dict[str, Union[float, torch.Tensor]]] = None):
        self._values: Dict[str, Union[float, torch.Tensor]] = {}
        for key, value in (values or {}).items():
            self._values[key] = value.detach() if isinstance(value, torch.Tensor) else float(value)

    def __getitem__(self, key: str) -> float:
        value = self._values[key]
        return float(value) if isinstance(value, torch.Tensor) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def merged(self, other: "Stats | Dict[str, float]", prefix: str = "") -> "Stats":
        """A new Stats holding these values and ``other``'s (keys prefixed)."""
        out = Stats()
        out._values = dict(self._values)
        raw = other._values if isinstance(other, Stats) else other
        for key, value in raw.items():
            out._values[prefix + key] = value
        return out

    def __repr__(self) -> str:
        return "Stats(" + ", ".join(f"{k}={self[k]:.4g}" for k in self) + ")"


@dataclass
class QuantOut:
    """What every quantizer returns.

    z_q: quantized latent, same shape and dtype as the input, carrying the gradient estimator.
    indices: integer codes, the input shape without the channel dim (plus a level/channel dim for
        quantizers that emit several codes per vector, e.g. residual VQ or dimension-wise).
    loss: scalar tensor with the quantizer's own training loss (0 when it has none).
    stats: named floats for logging (loss parts, batch perplexity, ...).
    """

    z_q: torch.Tensor
    indices: torch.Tensor
    loss: torch.Tensor
    stats: Stats = field(default_factory=Stats)


class Quantizer(nn.Module):
    """Base class: channels-last input ``(..., dim)``.

    Subclasses implement ``forward(z) -> QuantOut``, ``decode_indices(indices) -> z_q`` and
    ``codebook_size``. ``nearby_indices`` (used by latent perturbation) returns, for each vector,
    ``k`` candidate codes ordered from nearest to farther, with the vector's own code first.
    """

    #: Number of codes per index (per level / per channel where several are emitted).
    codebook_size: int

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def nearby_indices(self, z: torch.Tensor, indices: torch.Tensor, k: int) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not support latent perturbation")

    def forward_channels_first(self, z: torch.Tensor) -> QuantOut:
        """Quantize a ``(B, C, H, W)`` or ``(B, C, T)`` tensor; z_q comes back in the same layout
        and indices as ``(B, H, W[, levels])`` / ``(B, T[, levels])``."""
        out = self(channels_last(z))
        return QuantOut(channels_first(out.z_q), out.indices, out.loss, out.stats)


def channels_last(z: torch.Tensor) -> torch.Tensor:
    """``(B, C, *spatial)`` -> ``(B, *spatial, C)``."""
    if z.dim() < 3:
        raise ValueError(f"expected (B, C, H, W) or (B, C, T), got shape {tuple(z.shape)}")
    return z.movedim(1, -1)


def channels_first(z: torch.Tensor) -> torch.Tensor:
    """``(B, *spatial, C)`` -> ``(B, C, *spatial)``."""
    return z.movedim(-1, 1)


@contextlib.contextmanager
def fp32_region(device: torch.device):
    """Autocast off: distance search, code lookup and quantizer losses always run in fp32."""
    if device.type in ("cuda", "cpu", "xpu", "mps"):
        with torch.autocast(device_type=device.type, enabled=False):
            yield
    else:  # pragma: no cover - exotic backends
        yield


def zero_loss(like: torch.Tensor) -> torch.Tensor:
    return like.new_zeros((), dtype=torch.float32)


def check_last_dim(z: torch.Tensor, dim: int, who: str) -> None:
    if z.shape[-1] != dim:
        raise ValueError(
            f"{who}: expected channels-last input with last dim {dim}, got shape {tuple(z.shape)}"
            " (use forward_channels_first for (B, C, H, W) / (B, C, T) tensors)"
        )
