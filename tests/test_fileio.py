"""Outputs are written whole or not at all (vistok.fileio, used by every writer in the project)."""
import pytest

from vistok.fileio import atomic_write, atomic_write_text, replace_directory


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "sub" / "result.json"
    atomic_write_text(path, "old")

    def broken(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, broken)
    assert path.read_text() == "old" and [p.name for p in path.parent.iterdir()] == ["result.json"]


def test_replace_directory_swaps_whole_directories(tmp_path):
    target, staging = tmp_path / "report", tmp_path / ".staging"
    replace_directory(_tree(staging, "a.txt"), target)
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"] and not staging.exists()
    replace_directory(_tree(staging, "b.txt"), target)
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def _tree(path, name):
    path.mkdir()
    (path / name).write_text("x")
    return path
