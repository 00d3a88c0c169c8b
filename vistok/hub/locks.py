"""One conversion at a time per converted-cache entry, across processes (DDP ranks loading the
same zoo model on a fresh cache): a ``filelock`` lock file in ``<cache>/.locks/converted/``.

The lock files live beside the converted cache, not inside ``converted/``, which holds only
complete ``save_pretrained`` directories. They are left in place after release (removing one is
unsafe while another process waits on it); they are empty.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from vistok.hub.download import cache_root

log = logging.getLogger(__name__)


def lock_path(target: Path) -> Path:
    """The lock file guarding the converted directory ``target``."""
    return cache_root() / ".locks" / Path(target).parent.name / f"{Path(target).name}.lock"


@contextmanager
def conversion_lock(target: Path, what: str) -> Iterator[Path]:
    """Hold the lock of ``target`` (waiting as long as another process converts into it); yields the
    lock file's path. A process that dies releases its lock (the operating system drops it)."""
    from filelock import FileLock, Timeout

    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("%s: another process is converting it (lock %s); waiting for its result", what, path)
        lock.acquire()
    try:
        yield path
    finally:
        lock.release()
