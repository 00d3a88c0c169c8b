"""``report/report.md`` of a codec evaluation (:mod:`audiotok.evaluation`): the protocol, the means
and a per-file table with links to each file's spectrogram, its reconstruction and the original audio."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence
from urllib.parse import quote


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value).replace("|", "\\|")


def _link(label: str, target: str) -> str:
    return f"[{label}]({quote(target)})"


def write_report_md(path: Path, results: Mapping[str, Any], names: Sequence[str], originals: Sequence[str],
                    metric_keys: Sequence[str]) -> None:
    """Write the Markdown report to ``path`` (inside ``report/``). ``names[i]`` is the stem of row i's
    ``spectrograms/<name>.png`` and ``audio/<name>.wav``; ``originals[i]`` the link to its source file,
    relative to the final ``report/`` folder; ``metric_keys`` the columns, in order."""
    protocol, rows = results["protocol"], results["files"]
    if not len(rows) == len(names) == len(originals):
        raise ValueError(f"{path}: {len(rows)} result rows but {len(names)} names and {len(originals)} originals")
    lines: List[str] = [
        f"# Codec evaluation: {_cell(protocol['model'])}",
        "",
        f"- family: {_cell(protocol['family'])}, sample rate {protocol['sample_rate']} Hz, "
        f"precision {protocol['precision']}, device {_cell(protocol['device'])}",
        f"- folder: `{protocol['folder']}`, {protocol['files']} file(s), {protocol['date']}",
        f"- reconstruction: {protocol['reconstruction']}; PESQ resampling: {protocol['pesq_resampling']}",
        "",
        "## Means",
        "",
        "| metric | mean | better | files without a score |",
        "|---|---|---|---|",
    ]
    higher = protocol["higher_is_better"]
    for key in metric_keys:
        lines.append(f"| {key} | {_cell(results['mean'].get(key))} | {'higher' if higher[key] else 'lower'} | "
                     f"{results['failures'].get(key, 0)} |")
    absent = {k: v["reason"] for k, v in results["model_metrics"].items() if v.get("reason")}
    if absent:
        lines += ["", "Not scored:", ""] + [f"- {k}: {_cell(reason)}" for k, reason in absent.items()]
    codebook: Dict[str, Any] = results.get("codebook") or {}
    if codebook:
        lines += ["", "Codebook: " + ", ".join(f"{k} {v:.4g}" for k, v in codebook.items())]
    lines += ["", "## Files", "",
              "| file | seconds | tokens | " + " | ".join(metric_keys) + " | spectrogram | audio |",
              "|---|---|---|" + "---|" * len(metric_keys) + "---|---|"]
    for row, name, original in zip(rows, names, originals):
        cells = [_cell(row["file"]), f"{row['seconds']:.2f}", str(row["tokens"])]
        cells += [_cell(row.get(k)) for k in metric_keys]
        cells.append(_link("png", f"spectrograms/{name}.png"))
        cells.append(_link("reconstruction", f"audio/{name}.wav") + ", " + _link("original", original))
        lines.append("| " + " | ".join(cells) + " |")
    path.write_text("\n".join(lines) + "\n")


def relative_link(source: Path, report_dir: Path) -> str:
    """``source`` as a POSIX path relative to ``report_dir`` (absolute when there is no relative path)."""
    try:
        return Path(os.path.relpath(Path(source).resolve(), Path(report_dir).resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return Path(source).resolve().as_posix()
