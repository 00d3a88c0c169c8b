"""Reading checkpoint files safely: safetensors, or ``torch.load(weights_only=True)`` for legacy
pickles (no arbitrary code runs), with errors that name the file."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Union

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from vistok.errors import UnreadableFileError

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
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except (SafetensorError, RuntimeError, EOFError, ValueError, OSError) as err:
        raise UnreadableFileError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from None
    if isinstance(obj, dict):
        for key in _NESTING:
            if isinstance(obj.get(key), dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UnreadableFileError(f"{path}: expected a mapping of tensor names to tensors")
    return obj
