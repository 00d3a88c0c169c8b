"""The architecture of an :class:`ARGenerator`, as a dataclass that round-trips through config.json."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Union

from vistok.nn.transformer import ViTSize, resolve_size


@dataclass
class ARGeneratorConfig:
    """A class-conditional autoregressive model over ``num_tokens`` ids in ``[0, codebook_size)``.

    ``size`` is a preset of :mod:`vistok.nn.transformer` (``"small"``, ``"base"`` = GPT-B 768x12,
    ``"large"`` = GPT-L 1024x24) or a dict ``{width, depth, heads[, mlp_ratio]}``. Class
    ``num_classes`` is the "null" class that classifier-free guidance conditions on; in training a
    label is replaced by it with probability ``class_dropout``."""

    codebook_size: int = 4096
    num_tokens: int = 32
    num_classes: int = 1000
    size: Union[str, Dict[str, Any]] = "base"
    norm: str = "rmsnorm"  # "rmsnorm" or "layernorm"
    class_dropout: float = 0.1

    def __post_init__(self):
        if self.norm not in ("rmsnorm", "layernorm"):
            raise ValueError(f"norm must be 'rmsnorm' or 'layernorm', got {self.norm!r}")
        for name in ("codebook_size", "num_tokens", "num_classes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.class_dropout < 1.0:
            raise ValueError(f"class_dropout must be in [0, 1), got {self.class_dropout}")
        shape = self.shape
        if shape.width % shape.heads:
            raise ValueError(f"width {shape.width} is not a multiple of heads {shape.heads}")

    @property
    def shape(self) -> ViTSize:
        return resolve_size(self.size)

    @property
    def null_class(self) -> int:
        return self.num_classes

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)
