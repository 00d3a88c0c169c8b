"""Listing a dataset folder: every file under a root (recursively, following symlinked folders
once) whose extension is one of a set, in a sorted, machine-independent order."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, List, Union

from vistok.errors import InputError

PathLike = Union[str, Path]


def list_files(root: PathLike, extensions: Iterable[str], what: str = "files") -> List[Path]:
    """Files under ``root`` whose extension (case-insensitive, given without the dot) is in
    ``extensions``, sorted by their path relative to ``root``. Hidden files and folders (a name
    starting with ``.``, e.g. macOS ``._x.jpg`` resource forks) are skipped.

    Raises FileNotFoundError when ``root`` does not exist, NotADirectoryError when it is a file,
    and ValueError naming ``root`` and the extensions when nothing matches (``what`` names the
    kind of file in that message)."""
    root = Path(root)
    wanted = {ext.lower().lstrip(".") for ext in extensions}
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such directory")
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a directory (expected a folder of {what})")
    found = []
    seen = set()
    for folder, dirs, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a symlink loop or a folder linked twice
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if name.startswith("."):
                continue
            ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
            if ext in wanted:
                found.append(Path(folder) / name)
    if not found:
        listed = ", ".join(f".{ext}" for ext in sorted(wanted))
        raise InputError(f"{root}: no {what} found (searched recursively for {listed}, any case)")
    return sorted(found, key=lambda path: path.relative_to(root).as_posix())
