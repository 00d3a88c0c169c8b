"""Per-item randomness that does not touch the global RNGs: a ``torch.Generator`` seeded from a
stable hash of (seed, epoch, index, ...), so any item's crop is the same in every run, every
process, every worker layout, and after a resume."""
from __future__ import annotations

import hashlib
from typing import Union

import torch

Part = Union[int, str]


def derive_seed(*parts: Part) -> int:
    """A 63-bit seed from ``parts`` (ints or strings), stable across processes and Python versions
    (blake2b of their ``repr``; unlike ``hash()`` it is not salted per process)."""
    if not parts:
        raise ValueError("derive_seed needs at least one part")
    for part in parts:
        if not isinstance(part, (int, str)) or isinstance(part, bool):
            raise TypeError(f"derive_seed takes ints and strings, got {type(part).__name__}")
    text = "\x1f".join(repr(part) for part in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") & (2**63 - 1)


def make_generator(*parts: Part) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``derive_seed(*parts)``."""
    generator = torch.Generator()
    generator.manual_seed(derive_seed(*parts))
    return generator
