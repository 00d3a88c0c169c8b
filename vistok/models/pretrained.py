"""tokzoo's own checkpoint layout (the Hugging Face one): ``config.json`` + ``model.safetensors``.

``config.json`` = ``{"family": ..., "config": {...}, "tokzoo_version": ...}``. Files are
written under a temporary name and renamed, so an interrupted save never leaves a file that
looks complete.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Union

import torch
from safetensors.torch import save_model

from vistok._version import __version__
from vistok.errors import UnknownNameError, UnreadableFileError
from vistok.fileio import atomic_write
from vistok.models.state_dict import read_state_dict
from vistok.models.config_check import build_checked
from vistok.models.state_dict import load_strict
from vistok.registry import get_family, name_resolver

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def config_record(model: torch.nn.Module) -> Dict[str, Any]:
    return {"family": model.family, "config": model.config.to_dict(), "tokzoo_version": __version__}


def save_pretrained(model: torch.nn.Module, directory: Union[str, Path]) -> Path:
    """Write ``model`` as ``directory/config.json`` + ``directory/model.safetensors``."""
    if not getattr(model, "family", ""):
        raise TypeError(f"{type(model).__name__} has no zoo family; only tokzoo tokenizers can be saved this way")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # weights first: a directory whose config.json exists always has its weights
    atomic_write(directory / WEIGHTS_NAME,
                  lambda tmp: save_model(model, tmp, metadata={"family": model.family, "format": "pt"}))
    text = json.dumps(config_record(model), indent=2)
    atomic_write(directory / CONFIG_NAME, lambda tmp: Path(tmp).write_text(text + "\n"))
    return directory


def read_config(path: Union[str, Path]) -> Dict[str, Any]:
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:  # ValueError: JSONDecodeError, UnicodeDecodeError
        raise UnreadableFileError(f"{path}: cannot read tokenizer config ({err})") from None
    except RecursionError:
        raise UnreadableFileError(f"{path}: cannot read tokenizer config (nested too deeply)") from None
    if not isinstance(record, dict) or "family" not in record or "config" not in record:
        raise UnreadableFileError(f"{path}: not a tokzoo config (expected 'family' and 'config' fields; a config.json "
                         "written by the authors' code is converted through a zoo card instead)")
    return record


def check_finite(state: Dict[str, torch.Tensor], source: str) -> None:
    """Refuse weights holding NaN or infinite values (a corrupted or diverged checkpoint)."""
    bad = next((k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)
    if bad is not None:
        raise UnreadableFileError(f"{source}: tensor {bad!r} holds NaN or infinite values")


def load_pretrained_dir(directory: Union[str, Path], map_location: str = "cpu"):
    """Build the model named by ``directory/config.json`` and load its weights strictly."""
    directory = Path(directory)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory}: missing {name} (expected the save_pretrained layout: "
                                    f"{CONFIG_NAME} + {WEIGHTS_NAME})")
    record = read_config(directory / CONFIG_NAME)
    if not isinstance(record["family"], str):
        raise UnreadableFileError(f"{directory / CONFIG_NAME}: 'family' must be a name, got {record['family']!r}")
    try:
        family = get_family(record["family"])
    except UnknownNameError as err:
        raise UnreadableFileError(f"{directory / CONFIG_NAME}: {err}") from None
    weights = directory / WEIGHTS_NAME
    state = read_state_dict(weights)
    check_finite(state, str(weights))
    model = build_checked(family, record["config"], f"{directory / CONFIG_NAME}: config", state, str(weights))
    load_strict(model, state, str(weights))
    return model.to(map_location).eval()


def load_pretrained(name_or_path: Union[str, Path], device: str = "cpu", **options: Any):
    """A local directory in this layout, or else whatever the registered name resolver makes of the
    name (tokzoo's hub: zoo names, Hugging Face repos), with ``options`` passed on to it."""
    path = Path(str(name_or_path)).expanduser()
    if path.is_dir():
        return load_pretrained_dir(path, device)
    return name_resolver()(name_or_path, device=device, **options)
