"""The files a card's conversion reads (its checkpoint, and for official Hugging Face releases the
family's sidecar configs), fetched or found in the cache, each verified: against the card's pin,
the hub's own sha256 (``vistok.hub.integrity``) and the sha256 first seen (``vistok.hub.records``).

A card that pins its checkpoint's sha256 is checked against the pin, not against older records:
a new pin is how a changed file is accepted. Sidecars cannot be pinned; their records always count.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import List, Optional, Tuple

from vistok.hub.card import Source, ZooCard
from vistok.hub.download import cached_file, fetch_checked, fetch_sidecar, refuse, verify_download
from vistok.hub.integrity import Reference, Verdict
from vistok.hub.records import first_seen
from vistok.registry import get_family

log = logging.getLogger(__name__)


def sidecar_source(source: Source, filename: str) -> Source:
    """The sidecar ``filename`` beside ``source``'s checkpoint, in the same repo and revision (unpinned)."""
    return replace(source, filename=filename, sha256=None)


def recorded_references(source: Source) -> List[Reference]:
    """The sha256 first seen of ``source``'s file, unless the card pins one (the pin then rules)."""
    record = None if source.sha256 else first_seen(source.describe())
    return [record.reference()] if record else []


def sidecar_sources(card: ZooCard) -> List[Source]:
    """The sidecars a conversion of ``card`` reads (official Hugging Face releases only)."""
    if card.converter != "official" or card.source.kind != "hf":
        return []
    return [sidecar_source(card.source, name) for name in get_family(card.family).sidecars]


def fetch_card_files(card: ZooCard, force: bool = False, checkpoint: Optional[Path] = None) -> List[Verdict]:
    """Fetch and verify what converting ``card`` reads; the checkpoint's verdict comes first.
    ``checkpoint``: a copy of the card's file obtained some other way (verified, never removed; no
    sidecars are fetched for it). A mismatch raises ``ChecksumError`` naming the file and both hashes."""
    extra = recorded_references(card.source)
    if checkpoint is not None:
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: checkpoint file not found")
        verdict = verify_download(card.source, path, extra)
        if not verdict.ok:
            refuse(verdict, card.name, remove=False)
        verdicts = [verdict]
    else:
        verdicts = [fetch_checked(card.source, card.name, force=force, extra=extra)]
        for side in sidecar_sources(card):  # lands beside the checkpoint in the hub cache's snapshot
            path = fetch_sidecar(card.source, side.filename, card.name, force=force)
            if path is not None:
                verdicts.append(_checked(side, path, card.name))
    for verdict in verdicts:
        report(card.name, verdict)
    return verdicts


def _checked(source: Source, path: Path, what: str) -> Verdict:
    verdict = verify_download(source, path, recorded_references(source))
    if not verdict.ok:
        refuse(verdict, what, remove=True)
    return verdict


def cached_card_files(card: ZooCard) -> List[Tuple[Source, Optional[Path]]]:
    """Each file of ``card`` with where it is cached (None: not downloaded), without downloading."""
    files = [(card.source, cached_file(card.source, card.name))]
    return files + [(side, cached_file(side, card.name)) for side in sidecar_sources(card)]


def verify_cached(card: ZooCard) -> List[Verdict]:
    """Recompute the sha256 of every downloaded file of ``card`` and compare it with the card's pin, the
    hub's sha256 and the one first seen; nothing is downloaded, raised or removed. ``FileNotFoundError``
    when the checkpoint has not been downloaded (a missing sidecar is skipped: not every repo has it)."""
    verdicts = []
    for source, path in cached_card_files(card):
        if path is None:
            if source is card.source:
                raise FileNotFoundError(f"{card.name}: {source.describe()} is not downloaded; run "
                                        f"`tokzoo zoo download {card.name}` first")
            continue
        verdicts.append(verify_download(source, path, recorded_references(source)))
    return verdicts


def report(what: str, verdict: Verdict) -> None:
    """Log what a file was checked against; a file checked against nothing is trusted on first use,
    which is said at warning level."""
    if verdict.matched or verdict.mismatched:
        log.info("%s: %s sha256 %s: %s%s", what, verdict.describe, verdict.sha256, verdict.summary(),
                 "".join(f"; {n}" for n in verdict.notes))
        return
    log.warning("%s: %s: %s; trusting this first copy (sha256 %s): later copies must match it", what,
                verdict.describe, verdict.summary(), verdict.sha256)

