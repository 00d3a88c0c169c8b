"""The zoo catalogue: every card under ``zoo/`` (shipped in the wheel as ``vistok.zoo_cards``),
plus any directories named in ``TOKZOO_ZOO_PATH`` (searched first, so a user can add or shadow cards)."""
from __future__ import annotations

import difflib
import fnmatch
import importlib.util
import os
from pathlib import Path
from typing import Dict, List, Optional

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


def all_cards() -> Dict[str, ZooCard]:
    """Name -> card. A name defined twice in one directory is an error; earlier directories win."""
    cards: Dict[str, ZooCard] = {}
    for directory in card_dirs():
        seen: Dict[str, Path] = {}
        for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
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
