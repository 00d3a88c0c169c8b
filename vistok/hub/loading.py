"""``load_tokenizer``: one entry point for zoo names, local directories and Hugging Face repos.

A zoo model is downloaded (or found in the cache), checked against its card's sha256, converted
from the authors' layout once, and kept as a ``save_pretrained`` directory under
``<cache>/converted/``; later loads read that directory and touch neither the network nor the
original file.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Optional, Union

from vistok.errors import InputError, UnknownNameError
from vistok.hub.card import ZooCard
from vistok.hub.catalogue import find_card, get_card
from vistok.hub.checkpoint_io import read_state_dict
from vistok.hub.convert import load_strict
from vistok.hub.download import (ChecksumError, DownloadError, cache_root, fetch, fetch_sidecar, is_offline,
                                 sha256_of)
from vistok.hub.families import get_family
from vistok.hub.pretrained import CONFIG_NAME, WEIGHTS_NAME, load_pretrained_dir, save_pretrained

CONVERSION_VERSION = 2  # bump when a converter changes what it writes, to invalidate converted caches
_LICENSES_SHOWN: set = set()  # cards whose non-commercial licence this process has already warned about


class NonCommercialLicenseWarning(UserWarning):
    """A zoo model whose weights are licensed for non-commercial use only was downloaded or converted."""


def warn_license(card: ZooCard) -> None:
    """Warn once per process and card when the card's licence restricts use to non-commercial."""
    if "non-commercial" in card.license.lower() and card.name not in _LICENSES_SHOWN:
        _LICENSES_SHOWN.add(card.name)
        warnings.warn(f"{card.name}: the weights' license restricts their use: {card.license}",
                      NonCommercialLicenseWarning, stacklevel=3)


def converted_dir(card: ZooCard) -> Path:
    """Where the converted copy of ``card`` lives; the name changes whenever the card's source,
    config or converter does."""
    ident = json.dumps([card.family, card.converter, card.source.describe(), card.source.sha256, card.config,
                        CONVERSION_VERSION], sort_keys=True, default=str)
    return cache_root() / "converted" / f"{card.name}-{hashlib.sha256(ident.encode()).hexdigest()[:12]}"


def convert_card(card: ZooCard, force_download: bool = False, checkpoint: Optional[Path] = None) -> Path:
    """Download (if needed), verify and convert ``card``'s checkpoint; returns the converted directory.
    ``checkpoint``: a copy of the card's file obtained some other way (checked against the card's sha256)."""
    target = converted_dir(card)
    if (target / CONFIG_NAME).is_file() and not force_download and checkpoint is None:
        return target
    warn_license(card)
    family = get_family(card.family)
    if checkpoint is not None:
        path, sha = Path(checkpoint), verify_file(Path(checkpoint), card)
    else:
        path, sha = fetch(card.source, card.name, force=force_download)
        if card.converter == "official":
            for name in family.sidecars:  # lands beside the checkpoint in the hub cache's snapshot
                fetch_sidecar(card.source, name, card.name, force=force_download)
    model = family.build(family.resolve_config(card.converter, card.config, path))
    state = family.convert(card.converter, read_state_dict(path), model.config)
    load_strict(model, state, f"{card.name} ({path})")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        save_pretrained(model, staging)
        (staging / "source.json").write_text(json.dumps(
            {"name": card.name, "source": card.source.describe(), "sha256": sha}, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def verify_file(path: Path, card: ZooCard) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint file not found")
    sha = sha256_of(path)
    if card.source.sha256 and sha != card.source.sha256:
        raise ChecksumError(f"{path}: sha256 {sha} differs from the {card.name} card's {card.source.sha256}")
    return sha


def _load_hf_repo(repo: str, revision: Optional[str]) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        paths = [hf_hub_download(repo, name, revision=revision, local_files_only=is_offline())
                 for name in (CONFIG_NAME, WEIGHTS_NAME)]
    except LocalEntryNotFoundError:
        raise DownloadError(f"{repo}: not in the Hugging Face cache and downloads are off (HF_HUB_OFFLINE); "
                            "download it where the network is reachable, or pass a local directory") from None
    except RepositoryNotFoundError:
        raise DownloadError(f"{repo}: no such Hugging Face repo (or it is private)") from None
    return Path(paths[0]).parent


def load_tokenizer(name_or_path: Union[str, Path], *, revision: Optional[str] = None, device: str = "cpu",
                   force_download: bool = False):
    """Load a tokenizer from

    - a local directory in the ``save_pretrained`` layout,
    - a zoo name (``tokzoo zoo list``), downloaded, verified and converted on first use, or
    - a Hugging Face repo ``org/name`` holding the ``save_pretrained`` layout.

    The model is returned in eval mode on ``device``.
    """
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return load_pretrained_dir(path, device)
    if path.exists():
        raise InputError(f"{path}: is a file; load_tokenizer takes a directory with {CONFIG_NAME} + "
                         f"{WEIGHTS_NAME}, a zoo name or an org/name repo (convert an official file with a zoo card)")
    card = find_card(text)
    if card is not None:
        return load_pretrained_dir(convert_card(card, force_download), device)
    if text.count("/") == 1 and not text.startswith((".", "/", "~")):
        return load_pretrained_dir(_load_hf_repo(text, revision), device)
    try:
        get_card(text)
    except KeyError as err:
        raise UnknownNameError(f"{err.args[0]}; it is not a local directory or an org/name repo either") from None
    raise AssertionError("unreachable")
