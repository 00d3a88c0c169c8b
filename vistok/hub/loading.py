"""``load_tokenizer``: one entry point for zoo names, local directories and Hugging Face repos.

A zoo model is downloaded (or found in the cache), checked against its card's sha256, the hub's
sha256 and the sha256 first seen (``vistok.hub.sources``), converted from the authors' layout once
(once across processes too: ``vistok.hub.locks``), and kept as a ``save_pretrained`` directory under
``<cache>/converted/``; later loads read that directory and touch neither the network nor the
original file.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Optional, Union

from vistok.errors import InputError, UnknownNameError
from vistok.fileio import replace_directory
from vistok.hub.card import ZooCard
from vistok.hub.catalogue import find_card, get_card
from vistok.models.state_dict import read_state_dict
from vistok.models.state_dict import load_strict
from vistok.hub.download import DownloadError, cache_root, is_offline
from vistok.hub.locks import conversion_lock
from vistok.models.pretrained import CONFIG_NAME, WEIGHTS_NAME, check_finite, load_pretrained_dir, save_pretrained
from vistok.hub.records import write_record
from vistok.hub.sources import fetch_card_files
from vistok.registry import get_family

CONVERSION_VERSION = 2  # bump when a converter changes what it writes, to invalidate converted caches
_LICENSES_SHOWN: set = set()  # cards whose non-commercial licence this process has already warned about
log = logging.getLogger(__name__)


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
    ``checkpoint``: a copy of the card's file obtained some other way (verified like a download).

    Processes sharing the cache convert once: the conversion and the write run under a file lock
    (``vistok.hub.locks``), and a process that waited on it reads the other's result."""
    return _convert_card(card, force_download, checkpoint)[0]


def _convert_card(card: ZooCard, force_download: bool, checkpoint: Optional[Path]):
    """``(directory, model)``: the model this call converted (so a first load builds it once), or
    None when the directory was already there."""
    target = converted_dir(card)
    if _ready(target) and not force_download and checkpoint is None:
        return target, None
    warn_license(card)
    verdicts = fetch_card_files(card, force=force_download, checkpoint=checkpoint)
    with conversion_lock(target, card.name):
        if _ready(target) and not force_download and checkpoint is None:
            return target, None  # converted by another process while this one fetched or waited
        return target, _convert_into(target, card, verdicts)


def _ready(target: Path) -> bool:
    return (target / CONFIG_NAME).is_file()


def _convert_into(target: Path, card: ZooCard, verdicts):
    family = get_family(card.family)
    path = verdicts[0].path
    log.info("%s: converting %s into %s", card.name, card.source.describe(), target)
    model = family.build(family.resolve_config(card.converter, card.config, path))
    state = family.convert(card.converter, read_state_dict(path), model.config)
    check_finite(state, f"{card.name} ({path})")
    load_strict(model, state, f"{card.name} ({path})")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        save_pretrained(model, staging)
        write_record(staging, card.name, card.source.describe(), {v.describe: v.sha256 for v in verdicts},
                     {v.describe: v.summary() for v in verdicts})
        replace_directory(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return model


def verify_file(path: Path, card: ZooCard) -> str:
    """The sha256 of a copy of ``card``'s checkpoint obtained by hand, verified like a download (the
    card's pin, the hub's sha256, the sha256 first seen); the file is kept whatever the outcome."""
    return fetch_card_files(card, checkpoint=Path(path))[0].sha256


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
        target, model = _convert_card(card, force_download, None)
        return load_pretrained_dir(target, device) if model is None else model.to(device).eval()
    if text.count("/") == 1 and not text.startswith((".", "/", "~")):
        return load_pretrained_dir(_load_hf_repo(text, revision), device)
    try:
        get_card(text)
    except KeyError as err:
        raise UnknownNameError(f"{err.args[0]}; it is not a local directory or an org/name repo either") from None
    raise AssertionError("unreachable")
