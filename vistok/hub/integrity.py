"""What a downloaded file's sha256 is compared with, and the comparison.

A file can be checked against three references, strongest first:

1. the zoo card's pin (``source.sha256``);
2. the hub's own sha256 of a Hugging Face file: the LFS metadata ``HfApi.get_paths_info`` reports
   for the commit the file was downloaded at, or, offline (no metadata call is possible), the name
   of the blob in the Hugging Face cache, which huggingface_hub names after the ETag the hub sent
   with the file (an LFS file's ETag is its sha256);
3. the sha256 recorded in the converted cache when the file was first seen (trust on first use,
   ``vistok.hub.records``).

This module only compares: callers compute the sha256, decide what a mismatch does, and raise.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from vistok.hub.card import Source

SHA256 = re.compile(r"[0-9a-f]{64}")
COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class Reference:
    """An expected sha256 and where it comes from. ``label`` reads in a sentence ("the zoo card's
    pin"); ``bad_download``: a mismatch means the download is bad (the cached copy may be removed
    and fetched again), as opposed to a file that changed since it was first seen."""

    label: str
    sha256: str
    bad_download: bool = True


@dataclass
class Verdict:
    """One file compared with its references: what it matched, what it did not, what was not checked."""

    describe: str
    path: Path
    sha256: str
    matched: List[Reference] = field(default_factory=list)
    mismatched: List[Reference] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no reference disagrees (also when there was none to compare with)."""
        return not self.mismatched

    def message(self, what: str) -> str:
        """One line naming the file and both hashes of the first disagreeing reference."""
        ref = self.mismatched[0]
        return f"{what}: {self.describe} has sha256 {self.sha256}, but {ref.label} is {ref.sha256} (file {self.path})"

    def summary(self) -> str:
        """What the file was checked against, for a log line (or that nothing could be checked)."""
        if not self.matched and not self.mismatched:
            return "checked against nothing (" + "; ".join(self.notes or ["no reference"]) + ")"
        return "checked against " + ", ".join(r.label for r in self.matched + self.mismatched)


def judge(describe: str, path: Path, sha256: str, references: Sequence[Reference],
          notes: Sequence[str] = ()) -> Verdict:
    """Compare ``sha256`` (the file's) with every reference."""
    verdict = Verdict(describe, Path(path), sha256, notes=list(notes))
    for ref in references:
        (verdict.matched if ref.sha256 == sha256 else verdict.mismatched).append(ref)
    return verdict


def pin_reference(source: Source, card_path: Optional[Path] = None) -> Optional[Reference]:
    """The card's pinned sha256, if it has one."""
    if not source.sha256:
        return None
    where = f" ({card_path})" if card_path else ""
    return Reference(f"the zoo card's pin{where}", source.sha256)


def snapshot_commit(path: Path) -> Optional[str]:
    """The commit of a file inside a Hugging Face cache snapshot (``.../snapshots/<commit>/<file>``)."""
    parts = Path(path).parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "snapshots" and COMMIT.fullmatch(parts[i + 1]):
            return parts[i + 1]
    return None


def cache_etag_reference(path: Path) -> Optional[Reference]:
    """The hub's sha256 as the Hugging Face cache kept it: a snapshot file links to ``blobs/<etag>``,
    and an LFS file's ETag is its sha256 (a plain git file's is a 40-digit sha1: no reference)."""
    blob = Path(path).resolve()
    if blob.parent.name != "blobs" or not SHA256.fullmatch(blob.name):
        return None
    return Reference("the hub's sha256 kept by the Hugging Face cache (the blob's name, the hub's ETag)", blob.name)


def hub_reference(source: Source, path: Path, offline: bool) -> Tuple[Optional[Reference], List[str]]:
    """The hub's own sha256 of ``source``'s file (a ``hf`` source), with notes on what could not be
    asked. Online: the LFS metadata of the file at the commit ``path`` was downloaded at (the card's
    revision when unknown). Offline, or when the hub cannot be asked: the cache's blob name."""
    if source.kind != "hf":
        return None, []
    notes: List[str] = []
    if offline:
        notes.append("offline (HF_HUB_OFFLINE/TOKZOO_OFFLINE): the hub's metadata was not asked")
    else:
        revision = snapshot_commit(path) or source.revision
        try:
            sha, why = _lfs_sha256(source.repo, source.filename, revision)
        except Exception as err:  # any failure of the metadata call only means one check fewer, said below
            sha, why = None, f"could not ask the hub for the file's metadata ({type(err).__name__}: {err})"
        if sha:
            return Reference(f"the hub's sha256 (LFS metadata at {revision[:12]})", sha), notes
        notes.append(why)
    ref = cache_etag_reference(path)
    if ref is None:
        notes.append("the Hugging Face cache holds no sha256 of it either")
    return ref, notes


def _lfs_sha256(repo: str, filename: str, revision: str) -> Tuple[Optional[str], str]:
    from huggingface_hub import HfApi

    infos = HfApi().get_paths_info(repo, [filename], revision=revision)
    entry = next((i for i in infos if getattr(i, "path", None) == filename), None)
    if entry is None:
        return None, f"the hub lists no {filename} in {repo}@{revision}"
    lfs = getattr(entry, "lfs", None)
    sha = (lfs.get("sha256") if isinstance(lfs, dict) else getattr(lfs, "sha256", None)) if lfs else None
    if not sha:
        return None, f"the hub keeps no sha256 of {filename}: it is a plain git file, not an LFS one"
    return str(sha), ""
