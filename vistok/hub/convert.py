"""Shared helpers for converting official checkpoints onto tokzoo modules."""
from __future__ import annotations

from typing import Dict, Iterable, List, Tuple

import torch
from torch import nn

from vistok.errors import InputError, TokzooError


class CheckpointMismatch(TokzooError, ValueError):
    """A converted checkpoint does not fit the model: names the missing and unexpected keys."""

    def __init__(self, source: str, missing: List[str], unexpected: List[str]):
        self.missing, self.unexpected = missing, unexpected
        lines = [f"{source}: checkpoint does not match the model"]
        if missing:
            lines.append(f"  missing ({len(missing)}): " + ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else ""))
        if unexpected:
            lines.append(f"  unexpected ({len(unexpected)}): " + ", ".join(unexpected[:20])
                         + (" ..." if len(unexpected) > 20 else ""))
        super().__init__("\n".join(lines))


def load_strict(model: nn.Module, state: Dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict(strict=True)`` with shape checks and an error that lists key names."""
    check_fit(model, state, source)
    model.load_state_dict(state, strict=True)


def check_fit(model: nn.Module, state: Dict[str, torch.Tensor], source: str) -> None:
    """Refuse ``state`` unless it has exactly ``model``'s tensor names and shapes (``model`` may live
    on the meta device: nothing is copied)."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointMismatch(source, missing, unexpected)
    wrong = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
    if wrong:
        raise InputError(f"{source}: shape mismatch\n  " + "\n  ".join(wrong[:20]))


def rename_prefix(key: str, rules: Iterable[Tuple[str, str]]) -> str:
    """Apply the first ``(old_prefix, new_prefix)`` rule that matches ``key``; unmatched keys are kept."""
    for old, new in rules:
        if key.startswith(old):
            return new + key[len(old):]
    return key
