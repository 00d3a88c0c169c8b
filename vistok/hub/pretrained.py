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
from vistok.errors import UnreadableFileError
from vistok.fileio import atomic_write
from vistok.hub.checkpoint_io import read_state_dict
from vistok.hub.convert import load_strict
from vistok.hub.families import get_family

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
    except (OSError, json.JSONDecodeError) as err:
        raise UnreadableFileError(f"{path}: cannot read tokenizer config ({err})") from None
    if not isinstance(record, dict) or "family" not in record or "config" not in record:
        raise UnreadableFileError(f"{path}: not a tokzoo config (expected 'family' and 'config' fields; a config.json "
                         "written by the authors' code is converted through a zoo card instead)")
    return record


def load_pretrained_dir(directory: Union[str, Path], map_location: str = "cpu"):
    """Build the model named by ``directory/config.json`` and load its weights strictly."""
    directory = Path(directory)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory}: missing {name} (expected the save_pretrained layout: "
                                    f"{CONFIG_NAME} + {WEIGHTS_NAME})")
    record = read_config(directory / CONFIG_NAME)
    model = get_family(record["family"]).build(record["config"])
    load_strict(model, read_state_dict(directory / WEIGHTS_NAME), str(directory / WEIGHTS_NAME))
    return model.to(map_location).eval()
