"""Zoo cards: one YAML file per published checkpoint, read as plain data and validated."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import yaml

from vistok.errors import TokzooError

CONVERTERS = ("official", "tokzoo")  # official: the authors' key layout; tokzoo: our save_pretrained layout


class CardError(TokzooError, ValueError):
    """A zoo card is malformed; the message names the file and the field."""


def _check_keys(where: str, data: Mapping[str, Any], required: tuple, optional: tuple) -> None:
    allowed = required + optional
    for key in data:
        if key not in allowed:
            near = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise CardError(f"{where}: unknown field {key!r}{hint}")
    for key in required:
        if data.get(key) in (None, ""):
            raise CardError(f"{where}: missing required field {key!r}")


@dataclass(frozen=True)
class Source:
    """Where the checkpoint file lives: a Hugging Face repo file, a plain HTTPS URL, or a file shipped
    inside an installed Python package (``package: "vistok:assets/weights/x.safetensors"``)."""

    repo: Optional[str] = None
    filename: Optional[str] = None
    revision: str = "main"
    url: Optional[str] = None
    package: Optional[str] = None
    sha256: Optional[str] = None

    @property
    def kind(self) -> str:
        return "hf" if self.repo else "package" if self.package else "url"

    def describe(self) -> str:
        if self.kind == "hf":
            return f"hf://{self.repo}/{self.filename}@{self.revision}"
        if self.kind == "package":
            return f"package://{self.package}"
        return str(self.url)

    @classmethod
    def from_dict(cls, where: str, data: Mapping[str, Any]) -> "Source":
        if not isinstance(data, Mapping):
            raise CardError(f"{where}: 'source' must be a mapping")
        _check_keys(f"{where}: source", data, (), ("repo", "filename", "revision", "url", "package", "sha256"))
        if sum(bool(data.get(k)) for k in ("repo", "url", "package")) != 1:
            raise CardError(f"{where}: source needs exactly one of 'repo' (+ 'filename'), 'url' or 'package'")
        if data.get("repo") and not data.get("filename"):
            raise CardError(f"{where}: source.repo needs source.filename")
        package = data.get("package")
        if package and (str(package).count(":") != 1 or not all(str(package).split(":"))):
            raise CardError(f"{where}: source.package must be 'import.package:relative/path', got {package!r}")
        if package and not data.get("sha256"):
            raise CardError(f"{where}: a packaged source must pin its sha256")
        sha = data.get("sha256")
        if sha is not None and (len(str(sha)) != 64 or any(c not in "0123456789abcdef" for c in str(sha))):
            raise CardError(f"{where}: source.sha256 must be 64 lowercase hex digits, got {sha!r}")
        return cls(repo=data.get("repo"), filename=data.get("filename"), revision=str(data.get("revision") or "main"),
                   url=data.get("url"), package=package, sha256=sha)


@dataclass(frozen=True)
class ZooCard:
    """A published tokenizer: where its weights are, how to build and convert it, what was reported."""

    name: str
    family: str
    description: str
    source: Source
    license: str
    config: Dict[str, Any]
    converter: str = "official"
    params_millions: Optional[float] = None
    reported: Dict[str, Any] = field(default_factory=dict)
    links: Dict[str, str] = field(default_factory=dict)
    notes: str = ""
    training: Dict[str, Any] = field(default_factory=dict)  # models trained here: recipe, commit, data, hardware
    measured: Dict[str, Any] = field(default_factory=dict)  # numbers measured here, each block with its protocol
    path: Optional[Path] = None

    @classmethod
    def from_yaml(cls, path: Path) -> "ZooCard":
        where = str(path)
        try:
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as err:
            raise CardError(f"{where}: cannot read zoo card: {err}") from None
        if not isinstance(data, Mapping):
            raise CardError(f"{where}: a zoo card must be a YAML mapping")
        _check_keys(where, data, ("name", "family", "description", "source", "license", "config"),
                    ("converter", "params_millions", "reported", "links", "notes", "training", "measured"))
        converter = data.get("converter", "official")
        if converter not in CONVERTERS:
            raise CardError(f"{where}: converter must be one of {CONVERTERS}, got {converter!r}")
        if not isinstance(data["config"], Mapping):
            raise CardError(f"{where}: 'config' must be a mapping of model-config fields")
        return cls(name=str(data["name"]), family=str(data["family"]), description=str(data["description"]).strip(),
                   source=Source.from_dict(where, data["source"]), license=str(data["license"]),
                   config=dict(data["config"]), converter=converter, params_millions=data.get("params_millions"),
                   reported=dict(data.get("reported") or {}), links=dict(data.get("links") or {}),
                   notes=str(data.get("notes") or "").strip(), training=dict(data.get("training") or {}),
                   measured=dict(data.get("measured") or {}), path=Path(path))
