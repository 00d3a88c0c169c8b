"""State dicts: reading checkpoint files safely (safetensors, or ``torch.load(weights_only=True)`` for
legacy pickles, so no arbitrary code runs), loading them strictly with errors that name the keys, and
the renaming helpers that converters from the authors' layouts share."""
from __future__ import annotations

import argparse
import pickle
from pathlib import Path
from typing import Dict, Iterable, List, Tuple, Union

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from vistok.errors import InputError, TokzooError, UnreadableFileError


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

_NESTING = ("state_dict", "model", "module")


def read_state_dict(path: Union[str, Path]) -> Dict[str, torch.Tensor]:
    """The tensors of a checkpoint file. A single top-level ``state_dict`` / ``model`` / ``module``
    entry holding the weights (Lightning and trainer checkpoints) is unwrapped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint file not found")
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        # Training scripts (LlamaGen's among them) save their argparse.Namespace beside the weights: a plain
        # attribute bag, so it is allowed; everything else weights_only refuses stays refused.
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except (SafetensorError, RuntimeError, EOFError, ValueError, OSError, pickle.UnpicklingError) as err:
        # UnpicklingError: weights_only refused a pickled object (code it would have run)
        raise UnreadableFileError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from None
    if isinstance(obj, dict):
        for key in _NESTING:
            if isinstance(obj.get(key), dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UnreadableFileError(f"{path}: expected a mapping of tensor names to tensors")
    return obj
