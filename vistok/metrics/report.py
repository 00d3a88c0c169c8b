"""A report directory for one evaluation: ``result.json``, ``report.md`` (tables), ``reconstructions.png``
(originals above each variant's reconstructions), for pFID ``pfid_vs_alpha.png``, and, when several
token counts were evaluated, ``rfid_vs_k.png``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional

import torch

from vistok.metrics.protocol import EvalResult

_SKIP = {"codebook", "lpips_status", "label", "rfid_by_k", "pfid_mean_by_k"}


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown(result: EvalResult, title: str) -> str:
    lines = [f"# {title}", ""]
    if "label" in result.metrics:
        lines += [f"*{result.metrics['label']}*", ""]
    lines += ["| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in result.metrics.items() if k not in _SKIP]
    for k, v in (result.metrics.get("codebook") or {}).items():
        lines.append(f"| codebook {k} | {_fmt(v)} |")
    if "lpips_status" in result.metrics:
        lines += ["", f"LPIPS: {result.metrics['lpips_status']}"]
    if result.points:
        keys = list(result.points[0])
        lines += ["", "## Per point", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(_fmt(p.get(k)) for k in keys) + " |" for p in result.points]
    p = result.protocol
    lines += ["", "## Protocol", "", "```json",
              json.dumps({"dataset": p.dataset, "reference": p.reference, "feature_network": p.feature_network,
                          "fid_method": p.fid_method, "precision": p.precision, "seed": p.seed,
                          "environment": p.environment}, indent=2, default=str), "```", ""]
    return "\n".join(lines)


def save_grid(grid: Dict[str, torch.Tensor], path: Path) -> Optional[Path]:
    """Rows: originals first, then each variant in the order given (uint8 images)."""
    import torchvision

    rows = [grid["original"]] + [v for k, v in grid.items() if k != "original"] if "original" in grid else []
    if not rows:
        return None
    n = min(len(r) for r in rows)
    image = torchvision.utils.make_grid(torch.cat([r[:n] for r in rows]).float() / 255, nrow=n, padding=2)
    torchvision.utils.save_image(image, path)
    return path


def save_pfid_plot(points: List[dict], rfid: float, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    for delta in sorted({p["delta"] for p in points}):
        xs = sorted((p["alpha"], p["pfid"]) for p in points if p["delta"] == delta)
        ax.plot([0.0] + [a for a, _ in xs], [rfid] + [f for _, f in xs], marker="o", label=f"delta={delta}")
    ax.set_xlabel("alpha (per-token perturbation probability)")
    ax.set_ylabel("FID")
    ax.set_title("pFID vs alpha (alpha=0: rFID)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def save_k_plot(metrics: dict, path: Path) -> Path:
    """rFID (and, for pFID, the mean pFID) against the number of tokens decoded, log2 x axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    ks = sorted(int(k) for k in metrics["rfid_by_k"])
    for key, label in (("rfid_by_k", "rFID"), ("pfid_mean_by_k", "pFID (mean over the grid)")):
        if key in metrics:
            ax.plot(ks, [metrics[key][str(k)] for k in ks], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("tokens decoded (k)")
    ax.set_ylabel("FID")
    ax.set_title("FID vs number of tokens")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(result: EvalResult, out_dir: Path, title: str,
                 grid: Optional[Dict[str, torch.Tensor]] = None) -> Dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"json": result.save(out_dir / "result.json")}
    md = out_dir / "report.md"
    md.write_text(markdown(result, title))
    files["markdown"] = md
    if grid:
        saved = save_grid(grid, out_dir / "reconstructions.png")
        if saved:
            files["grid"] = saved
    if result.points and "alpha" in result.points[0] and "rfid" in result.metrics:
        k = result.metrics.get("num_tokens")  # several token counts: the grid at the largest
        grid_points = [p for p in result.points if p.get("num_tokens") == k]
        files["plot"] = save_pfid_plot(grid_points, result.metrics["rfid"], out_dir / "pfid_vs_alpha.png")
    if "rfid_by_k" in result.metrics:
        files["k_plot"] = save_k_plot(result.metrics, out_dir / "rfid_vs_k.png")
    return files
