"""The parity report every eval/parity_*.py script writes: its verdicts decide what the results claim."""
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "eval"))
from parity_report import Report, write  # noqa: E402


def test_tensor_tolerance_is_relative_unless_asked_absolute():
    ref = torch.full((3,), 100.0)
    ours = ref + 0.05  # 5e-4 relative, 5e-2 absolute
    assert Report(tol=1e-3).tensor("c", "x", ours, ref)
    assert not Report(relative=False, tol=1e-3).tensor("c", "x", ours, ref)
    assert not Report().tensor("c", "shape", ours[:2], ref), "a shape mismatch never passes"


def test_ids_count_differences_over_every_level():
    report = Report()
    a = [torch.tensor([[1, 2, 3]]), torch.tensor([[4, 5]])]
    b = [torch.tensor([[1, 2, 0]]), torch.tensor([[4, 0]])]
    assert report.ids("c", "same", a, [t.clone() for t in a])
    assert not report.ids("c", "two differ", a, b)
    assert not report.ids("c", "shape", torch.zeros(1, 3), torch.zeros(1, 4))
    assert [r["detail"] for r in report.rows] == ["equal", "2 differ", "shape (1, 3) vs (1, 4)"]


def test_write_fails_the_verdict_on_one_failing_row(tmp_path, capsys):
    report = Report()
    report.value("c", "loss", 1.0, 1.0)
    report.exact("c", "keys", False, "missing: a.weight")
    assert not write(report, {"date": "d"}, tmp_path / "out", ["header line"], ["a note"])
    text = (tmp_path / "out.txt").read_text()
    assert text.startswith("header line\n") and "a note" in text and "missing: a.weight" in text
    assert text.rstrip().endswith("all checks FAILED (2 checks)")
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["passed"] is False and data["date"] == "d" and len(data["rows"]) == 2


def test_an_empty_report_never_passes(tmp_path, capsys):
    assert not write(Report(), {}, tmp_path / "empty", ["h"])
