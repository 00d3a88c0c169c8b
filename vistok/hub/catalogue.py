"""The zoo catalogue: every card under ``zoo/`` (shipped in the wheel as ``vistok.zoo_cards``),
plus any directories named in ``TOKZOO_ZOO_PATH`` (searched first, so a user can add or shadow cards)."""
from __future__ import annotations

import copy
import difflib
import fnmatch
import importlib.util
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from vistok.errors import UnknownNameError
from vistok.hub.card import CardError, ZooCard

ENV_EXTRA_DIRS = "TOKZOO_ZOO_PATH"


def card_dirs() -> List[Path]:
    """Directories searched for ``*.yaml`` cards, in priority order."""
    dirs = [Path(p) for p in os.environ.get(ENV_EXTRA_DIRS, "").split(os.pathsep) if p]
    spec = importlib.util.find_spec("vistok.zoo_cards")
    if spec is not None and spec.submodule_search_locations:  # an installed wheel: a resource package
        dirs.extend(Path(p) for p in spec.submodule_search_locations)
    else:  # a checkout (or an editable install): the repository's zoo/ folder
        dirs.append(Path(__file__).resolve().parents[2] / "zoo")
    return dirs


def _card_files() -> Tuple[Tuple[Path, ...], ...]:
    return tuple(tuple(sorted(d.glob("*.yaml"))) if d.is_dir() else () for d in card_dirs())


def _stamp(files: Tuple[Tuple[Path, ...], ...]) -> tuple:
    """What the catalogue was read from: the files and their sizes and modification times."""
    out = []
    for group in files:
        for path in group:
            try:
                st = path.stat()
            except OSError:
                continue
            out.append((str(path), st.st_mtime_ns, st.st_size))
        out.append(None)  # directory boundary (priority order matters)
    return tuple(out)


_CACHE: Dict[str, Any] = {"stamp": None, "cards": None}


def all_cards() -> Dict[str, ZooCard]:
    """Name -> card. A name defined twice in one directory is an error; earlier directories win.

    Read once per process and read again only when ``TOKZOO_ZOO_PATH`` or a card file changes
    (one ``stat`` per card instead of parsing every YAML file on each lookup)."""
    files = _card_files()
    stamp = (os.environ.get(ENV_EXTRA_DIRS, ""), _stamp(files))
    if _CACHE["stamp"] != stamp:
        _CACHE["cards"], _CACHE["stamp"] = _read_cards(files), stamp
    return copy.deepcopy(_CACHE["cards"])  # callers may change a card's config dict


def _read_cards(files: Tuple[Tuple[Path, ...], ...]) -> Dict[str, ZooCard]:
    cards: Dict[str, ZooCard] = {}
    for group in files:
        seen: Dict[str, Path] = {}
        for path in group:
            card = ZooCard.from_yaml(path)
            if card.name in seen:
                raise CardError(f"{path}: zoo name {card.name!r} is already defined in {seen[card.name]}")
            seen[card.name] = path
            cards.setdefault(card.name, card)
    return cards


def find_card(name: str) -> Optional[ZooCard]:
    return all_cards().get(name)


def get_card(name: str) -> ZooCard:
    cards = all_cards()
    if name in cards:
        return cards[name]
    near = difflib.get_close_matches(name, list(cards), n=3)
    hint = f"; did you mean {', '.join(near)}?" if near else "; `tokzoo zoo list` shows them"
    raise UnknownNameError(f"no zoo model named {name!r}{hint}")


def list_cards(pattern: Optional[str] = None) -> List[ZooCard]:
    """Cards sorted by name; ``pattern`` is a shell wildcard (``titok-*``) or a substring."""
    cards = sorted(all_cards().values(), key=lambda c: c.name)
    if not pattern:
        return cards
    if not any(ch in pattern for ch in "*?["):
        pattern = f"*{pattern}*"
    return [c for c in cards if fnmatch.fnmatch(c.name, pattern)]
