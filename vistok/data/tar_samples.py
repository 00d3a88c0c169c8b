"""Reading webdataset-style tar shards with the standard library: consecutive members that share
a key (the path up to the first dot of the file name) form one sample, e.g. ``a/0001.jpg`` and
``a/0001.json`` -> ``{"__key__": "a/0001", "jpg": b"...", "json": b"..."}``.

Damage is reported, not skipped: a file that is not a tar, a member cut short, a header cut
short, or a missing end-of-archive marker raise ValueError naming the shard."""
from __future__ import annotations

import lzma
import posixpath
import tarfile
import zlib
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple, Union

from vistok.errors import UnreadableFileError

PathLike = Union[str, Path]

_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")
_READ_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError, ValueError)


def split_name(name: str) -> Tuple[str, str]:
    """``"dir/0001.seg.png"`` -> ``("dir/0001", "seg.png")`` (webdataset's key/extension rule;
    the extension is lower-cased)."""
    folder, base = posixpath.split(name)
    stem, _, ext = base.partition(".")
    return posixpath.join(folder, stem) if folder else stem, ext.lower()


def _members(tar: tarfile.TarFile, shard: str, read: bool) -> Iterator[Tuple[str, str, Optional[bytes]]]:
    for member in tar:
        if not member.isfile():
            continue
        base = posixpath.basename(member.name)
        if base.startswith(".") or "." not in base:
            continue  # hidden files, resource forks, files without an extension: not sample fields
        key, ext = split_name(member.name)
        data = None
        if read:
            handle = tar.extractfile(member)
            data = handle.read() if handle is not None else b""
            if len(data) != member.size:
                raise UnreadableFileError(f"{shard}: member {member.name} is cut short "
                                 f"({len(data)} of {member.size} bytes)")
        yield key, ext, data


def _check_end_marker(path: Path, offset: int) -> None:
    """An uncompressed tar ends with zero blocks; ``tarfile`` stops silently at a header cut short
    or at the end of the file, so check the block after the last member ourselves."""
    with open(path, "rb") as f:
        if f.read(8).startswith(_COMPRESSED_MAGIC):
            return  # compressed: the decompressor reports truncation itself
        f.seek(offset)
        block = f.read(tarfile.BLOCKSIZE)
    if len(block) < tarfile.BLOCKSIZE or block.count(0) != tarfile.BLOCKSIZE:
        raise UnreadableFileError(f"{path}: truncated tar shard (no end-of-archive marker after byte {offset})")


def iter_tar_samples(path: PathLike, read: bool = True) -> Iterator[Dict[str, object]]:
    """Samples of one shard in archive order: dicts with ``__key__``, ``__shard__`` and one
    ``bytes`` value per extension (the first member wins when a key repeats an extension).
    With ``read=False`` the values are ``None`` (headers only: cheap counting).

    Raises FileNotFoundError for a missing shard and ValueError naming the shard when it is corrupt
    or truncated (checked as it is read, so earlier samples may already have been yielded)."""
    path = Path(path)
    shard = str(path)
    if not path.is_file():
        raise FileNotFoundError(f"{shard}: no such tar shard")
    current: Optional[Dict[str, object]] = None
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for key, ext, data in _members(tar, shard, read):
                if current is not None and current["__key__"] != key:
                    yield current
                    current = None
                if current is None:
                    current = {"__key__": key, "__shard__": shard}
                current.setdefault(ext, data)
            end = tar.offset
    except _READ_ERRORS as err:
        if isinstance(err, ValueError) and str(err).startswith(shard):
            raise
        raise UnreadableFileError(f"{shard}: corrupt or truncated tar shard ({type(err).__name__}: {' '.join(str(err).split())})") from None
    _check_end_marker(path, end)
    if current is not None:
        yield current
