"""The README stays true: its zoo table is the one the cards generate, and its quickstart runs
offline as written (Python blocks executed, command lines run through the real CLI)."""
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from vistok.hub.catalogue import list_cards
from vistok.hub.zoo_table import BEGIN, END, zoo_table

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 3)
    return README[start:end if end > 0 else None]


def _blocks(text: str, language: str):
    """The fenced code blocks of ``text`` whose info string is ``language`` ("" for plain fences)."""
    blocks, lines, inside, keep = [], [], False, False
    for line in text.splitlines():
        if line.startswith("```"):
            if inside and keep:
                blocks.append("\n".join(lines) + "\n")
            inside, keep, lines = not inside, line[3:].strip() == language, []
        elif inside and keep:
            lines.append(line)
    return blocks


def test_readme_zoo_table_is_generated_from_the_cards():
    start, end = README.index(BEGIN), README.index(END) + len(END)
    assert README[start:end] == zoo_table(list_cards()), "README zoo table is stale: paste `tokzoo zoo table`"


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TOKZOO_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_quickstart_python_runs_offline(offline, capsys):
    (code,) = _blocks(_section("Quickstart"), "python")
    exec(compile(code, "README.md quickstart", "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out
    assert "torch.Size([4, 128])" in printed and "torch.Size([1, 4, 75])" in printed


def test_readme_quickstart_commands_run_offline(offline):
    (block,) = _blocks(_section("Quickstart"), "")
    env = dict(os.environ, OMP_NUM_THREADS="2")
    for line in filter(None, (raw.split("#")[0].strip() for raw in block.splitlines())):
        args = shlex.split(line)
        assert args[0] == "tokzoo"
        args = [sys.executable, "-m", "vistok.cli", *[str(REPO / a) if (REPO / a).is_file() else a for a in args[1:]]]
        done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=offline, timeout=300)
        assert done.returncode == 0, (line, done.stderr[-2000:])
    assert list((offline / "outputs/quickstart/images").glob("*.png"))
    assert list((offline / "outputs/quickstart/speech").glob("*.wav"))
