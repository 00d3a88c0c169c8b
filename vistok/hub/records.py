"""The sha256 of each source file as first seen, recorded in the converted cache (trust on first use).

Every converted directory holds ``source.json``::

    {"name": ..., "source": "hf://org/repo/file@rev", "sha256": ...,       # the checkpoint
     "files": {"hf://org/repo/file@rev": sha256, ...},                   # every file read, sidecars too
     "checked": {"hf://org/repo/file@rev": "checked against ...", ...}}  # what each was compared with

A later copy of a file (a forced download, ``tokzoo zoo convert``, a new conversion after the card
or the converter changed) must have the sha256 recorded first, whichever converted directory holds
the record. Records written before ``files`` existed count with their ``source`` and ``sha256``.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping, Optional

from vistok.errors import TokzooError
from vistok.hub.download import cache_root
from vistok.hub.integrity import Reference
from vistok.fileio import atomic_write

RECORD_NAME = "source.json"
log = logging.getLogger(__name__)


class RecordError(TokzooError, ValueError):
    """A converted cache's ``source.json`` cannot be read; the message names it."""


def converted_root() -> Path:
    """``<cache>/converted``: one ``save_pretrained`` directory per converted card."""
    return cache_root() / "converted"


@dataclass(frozen=True)
class Record:
    """The sha256 a file had when first seen, and the ``source.json`` that says so."""

    sha256: str
    path: Path

    def reference(self) -> Reference:
        """This record as a reference to compare a later copy with (a mismatch is not a bad download:
        the file changed since)."""
        return Reference(f"the sha256 first seen (recorded in {self.path})", self.sha256, bad_download=False)


def read_record(path: Path) -> Dict[str, str]:
    """``describe -> sha256`` of every file a ``source.json`` records."""
    try:
        data = json.loads(Path(path).read_text())
        files = data.get("files") or {data["source"]: data["sha256"]}
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as err:
        raise RecordError(f"{path}: unreadable record of the converted cache ({type(err).__name__}: {err}); "
                          f"delete {Path(path).parent} to convert afresh") from None
    return {str(k): str(v) for k, v in files.items() if v}


def first_seen(describe: str) -> Optional[Record]:
    """The oldest record of the file ``describe`` (``Source.describe()``) in the converted cache. An
    unreadable record is skipped with a warning naming it (it must not block other models' loads)."""
    found = []
    for path in converted_root().glob(f"*/{RECORD_NAME}"):
        if path.parent.name.startswith("."):  # a conversion being staged
            continue
        try:
            sha = read_record(path).get(describe)
        except RecordError as err:
            log.warning("%s", err)
            continue
        if sha:
            found.append((path.stat().st_mtime, str(path), Record(sha, path)))
    return min(found)[2] if found else None


def write_record(directory: Path, name: str, source: str, files: Mapping[str, str],
                 checked: Mapping[str, str]) -> Path:
    """Write ``directory/source.json`` for card ``name`` whose checkpoint is ``source``."""
    record = {"name": name, "source": source, "sha256": files[source], "files": dict(files),
              "checked": dict(checked)}
    path = Path(directory) / RECORD_NAME
    text = json.dumps(record, indent=2) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return path
