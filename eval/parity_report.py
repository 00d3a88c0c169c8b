"""The check list every parity script fills and the txt + json pair it writes to ``eval/results/``.

A parity script compares tokzoo with the authors' code (or transformers') on the same inputs and
weights. Each comparison is one row: a tensor within a tolerance, a scalar within a tolerance, or an
exact check (ids equal, a key list matching, a file read back). :func:`write` prints the rows as one
table under the script's own header lines (versions, command, inputs) and writes the same rows as JSON
with ``passed`` set only when every row passed.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import torch

Ids = Union[torch.Tensor, Sequence[torch.Tensor]]


class Report:
    """Rows of parity checks; ``relative`` tolerances compare max|diff| / max|reference| (else max|diff|).

    ``tol`` and ``value_tol`` are the defaults of :meth:`tensor` and :meth:`value`.
    """

    def __init__(self, relative: bool = True, tol: float = 1e-4, value_tol: float = 1e-5):
        self.relative, self.tol, self.value_tol = relative, tol, value_tol
        self.rows: List[Dict[str, Any]] = []

    def tensor(self, case: str, check: str, ours: torch.Tensor, ref: torch.Tensor, tol: Optional[float] = None) -> bool:
        tol = self.tol if tol is None else tol
        same = tuple(ours.shape) == tuple(ref.shape)
        diff = float((ours.double() - ref.double()).abs().max()) if same else float("inf")
        scale = float(ref.double().abs().max())
        rel = diff / max(scale, 1e-30)
        ok = same and (rel if self.relative else diff) <= tol
        self.rows.append(dict(case=case, check=check, max_diff=diff, max_ref=scale, rel=rel, tol=tol, ok=ok,
                              shape=list(ref.shape)))
        return ok

    def value(self, case: str, check: str, ours: float, ref: float, tol: Optional[float] = None) -> bool:
        """Two scalars (a loss, a count) within a relative tolerance."""
        tol = self.value_tol if tol is None else tol
        ours, ref = float(ours), float(ref)
        rel = abs(ours - ref) / max(abs(ref), 1e-30)
        ok = rel <= tol
        self.rows.append(dict(case=case, check=check, ours=ours, ref=ref, rel=rel, tol=tol, ok=ok))
        return ok

    def exact(self, case: str, check: str, ok: bool, detail: Any = "") -> bool:
        self.rows.append(dict(case=case, check=check, ok=bool(ok), detail=str(detail)))
        return bool(ok)

    def ids(self, case: str, check: str, ours: Ids, ref: Ids) -> bool:
        """Token ids identical: one tensor, or a list of tensors (one per level of a multi-rate codec)."""
        ours_list = [ours] if isinstance(ours, torch.Tensor) else list(ours)
        ref_list = [ref] if isinstance(ref, torch.Tensor) else list(ref)
        shapes = [tuple(t.shape) for t in ours_list], [tuple(t.shape) for t in ref_list]
        if shapes[0] != shapes[1]:
            one = isinstance(ref, torch.Tensor)
            detail = f"shape {shapes[0][0]} vs {shapes[1][0]}" if one and len(ours_list) == 1 else \
                f"shapes {shapes[0]} vs {shapes[1]}"
            return self.exact(case, check, False, detail)
        differ = sum(int((a != b).sum()) for a, b in zip(ours_list, ref_list))
        return self.exact(case, check, differ == 0, "equal" if differ == 0 else f"{differ} differ")

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(r["ok"] for r in self.rows)


def table(rows: List[Dict[str, Any]], case_width: int, check_width: int) -> List[str]:
    """The rows as aligned text lines, a column header and a rule first."""
    head = f"{'case':<{case_width}} {'check':<{check_width}} {'max|diff|':>10} {'max|ref|':>10} {'rel':>9} {'tol':>7}  result"
    lines = [head, "-" * len(head)]
    for r in rows:
        mark = "ok" if r["ok"] else "FAIL"
        start = f"{r['case']:<{case_width}} {r['check']:<{check_width}}"
        if "max_diff" in r:
            lines.append(f"{start} {r['max_diff']:>10.3e} {r['max_ref']:>10.3e} {r['rel']:>9.2e} {r['tol']:>7.0e}  {mark}")
        elif "ours" in r:
            lines.append(f"{start} {r['ours']:>10.4g} {r['ref']:>10.4g} {r['rel']:>9.2e} {r['tol']:>7.0e}  {mark}")
        else:
            lines.append(f"{start} {r.get('detail', ''):>30} {'exact':>7}  {mark}")
    return lines


def write(report: Report, extra: Dict[str, Any], out: Path, header: List[str], notes: List[str] = (),
          case_width: int = 6, check_width: int = 76) -> bool:
    """Write ``out``.txt (header, table, notes, verdict) and ``out``.json (``extra`` + rows); print the text."""
    ok = report.ok
    lines = list(header) + [""] + table(report.rows, case_width, check_width)
    if any("ours" in r for r in report.rows):
        lines.append("(scalar rows: the two numbers are ours and the official value)")
    if notes:
        lines += [""] + list(notes)
    lines.append(f"\nall checks {'passed' if ok else 'FAILED'} ({len(report.rows)} checks)")
    text = "\n".join(lines) + "\n"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".txt").write_text(text)
    out.with_suffix(".json").write_text(json.dumps(dict(extra, rows=report.rows, passed=ok), indent=2) + "\n")
    print(text)
    return ok
