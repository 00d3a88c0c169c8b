"""Which official code a parity or benchmark run compared against: its commit and a digest of its sources."""
from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Dict, Optional


def tree_provenance(tree: Path, git_dir: Optional[str], code_dir: str) -> Dict[str, str]:
    """The commit of ``tree`` (a clone, or a bare ``git_dir`` it was exported from; "unknown"
    otherwise) and the sha256 over the ``*.py`` files under ``tree/code_dir``, paths included."""
    commit = "unknown"
    cmds = [["git", "-C", str(tree), "rev-parse", "HEAD"]] if (tree / ".git").exists() else []
    if git_dir:
        cmds.append(["git", f"--git-dir={git_dir}", "rev-parse", "HEAD"])
    for cmd in cmds:
        try:
            commit = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()
            break
        except (OSError, subprocess.CalledProcessError):
            continue
    digest = hashlib.sha256()
    for path in sorted((tree / code_dir).rglob("*.py")):
        digest.update(str(path.relative_to(tree)).encode() + b"\0" + path.read_bytes())
    return {"tree": str(tree), "commit": commit, "git_dir": git_dir or "", "sha256": digest.hexdigest()}
