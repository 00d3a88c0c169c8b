"""``index.html`` of the demo: one self-contained page (inline CSS, no scripts, no network) whose
images and audio are files beside it, linked relatively, so the folder can be moved or zipped."""
from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any, Dict, Iterable, List, Sequence

from vistok.fileio import atomic_write

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0} td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th{background:#f3f3f3} td.l,th.l{text-align:left}
figure{display:inline-block;margin:.3em;text-align:center;font-size:.8em}
img.px{image-rendering:pixelated;width:192px;height:192px} img.plot{max-width:560px}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.75em} .ids{max-width:1100px;white-space:pre-wrap}
.caveat{background:#fff6d5;padding:.5em;border-left:4px solid #e0b400} code{background:#f3f3f3;padding:0 .2em}
"""


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return escape(str(value))


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], left: int = 1) -> str:
    head = "".join(f'<th class="{"l" if i < left else ""}">{escape(h)}</th>' for i, h in enumerate(headers))
    cell = lambda i, v: f'<td class="{"l" if i < left else ""}">{_fmt(v)}</td>'  # noqa: E731
    body = "".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _protocol(title: str, protocol: Any) -> str:
    return (f"<details><summary>{escape(title)}</summary><pre>"
            f"{escape(json.dumps(protocol, indent=2, default=str))}</pre></details>")


def _figure(src: str, caption: str, css: str = "px") -> str:
    return f'<figure><img class="{css}" src="{escape(src)}" alt="{escape(caption)}"><figcaption>{caption}</figcaption></figure>'


def _image_section(section: Dict[str, Any]) -> List[str]:
    out = [f"<h2>Images: <code>{escape(section['model'])}</code></h2>",
           f"<p>{section['num_tokens']} tokens per {section['image_size']}x{section['image_size']} image; each "
           "row decodes the first <i>k</i> ids of one encoding (k = " + ", ".join(map(str, section["ks"])) + ").</p>"]
    for row in section["samples"]:
        figures = [_figure(row["original"], "original")]
        figures += [_figure(r["image"], f"k={r['k']}<br>{r['psnr']:.2f} dB, SSIM {r['ssim']:.3f}")
                    for r in row["by_k"]]
        ids = " ".join(map(str, row["ids"]))
        out += [f"<h3>{escape(row['name'])}</h3>", "".join(figures),
                f"<details><summary>token ids ({len(row['ids'])})</summary><pre class=ids>{ids}</pre></details>"]
    out.append(_protocol("protocol of the sample numbers", section["samples_protocol"]))
    val = section["val"]
    if "skipped" in val:
        return out + [f"<p>Val slice: {escape(val['skipped'])}</p>"]
    rfid, pfid = val["rfid"], val["pfid"]
    n = rfid["protocol"]["dataset"]["count"]
    out += [f"<h3>Val split, first {n} images</h3>", f'<p class="caveat">{escape(val["caveat"])}.</p>',
            _table(["tokens k", "PSNR (dB)", "SSIM", "rFID"],
                   [(p["num_tokens"], p["psnr"], p["ssim"], p["rfid"]) for p in rfid["points"]]),
            _figure("images/rfid/rfid_vs_k.png", "rFID vs number of tokens", "plot"),
            _figure("images/rfid/reconstructions.png", "originals above reconstructions per k", "plot"),
            _protocol("rFID protocol", rfid["protocol"]),
            f"<p>pFID ({escape(pfid['metrics']['label'])}) at k = {section['num_tokens']}: mean "
            f"{pfid['metrics']['pfid_mean']:.4g} over the grid; rFID of the same pass {pfid['metrics']['rfid']:.4g}.</p>",
            _table(["alpha", "delta", "pFID", "tokens replaced", "PSNR (dB)"],
                   [(p["alpha"], p["delta"], p["pfid"], p["replaced_fraction"], p["psnr"]) for p in pfid["points"]]),
            _figure("images/pfid/pfid_vs_alpha.png", "pFID vs alpha", "plot"),
            _protocol("pFID protocol", pfid["protocol"])]
    return out


def _speech_section(section: Dict[str, Any]) -> List[str]:
    keys = [k for k in ("pesq_wb", "stoi", "si_sdr", "mel_distance") if k in section["mean"]]
    out = [f"<h2>Speech: <code>{escape(section['model'])}</code></h2>",
           f"<p>{section['sample_rate']} Hz, {section['frames_per_second']:g} frames/s x {section['codebooks']} "
           "codebook(s). Original above reconstruction in each spectrogram.</p>",
           _table(["clip", "seconds", *keys],
                  [(r["file"], r["seconds"], *(r[k] for k in keys)) for r in section["files"]]
                  + [("mean", None, *(section["mean"][k] for k in keys))])]
    for row in section["files"]:
        ids = "\n".join(" ".join(map(str, level)) for level in row["ids_head"])
        out += [f"<h3>{escape(row['file'])}</h3>",
                f'<p>original <audio controls preload="auto" src="{escape(row["original"])}"></audio> '
                f'reconstruction <audio controls preload="auto" src="{escape(row["reconstruction"])}"></audio></p>',
                _figure(row["spectrogram"], "log-mel: original (top), reconstruction (bottom)", "plot"),
                f"<details><summary>first token ids per codebook (ids shape {row['ids_shape']})</summary>"
                f"<pre class=ids>{ids}</pre></details>"]
    return out + [_protocol("speech protocol", section["protocol"])]


def _quantizer_section(report: Dict[str, dict], protocol: Dict[str, Any]) -> List[str]:
    rows = [(name, r["psnr_db"], r["bits_per_pixel"], r["codebook_utilization"], r["perplexity"])
            for name, r in report.items()]
    return ["<h2>The shared quantizers on 4x4 patches</h2>",
            _table(["quantizer", "PSNR (dB)", "bits/pixel", "codebook use", "perplexity"], rows),
            _figure("quantizers.png", "rows: originals, then each quantizer in table order", "plot"),
            _protocol("quantizer protocol", protocol)]


def write_page(path: Path, results: Dict[str, Any], next_steps: Sequence[str]) -> Path:
    """Write ``path`` (whole, then renamed) from the demo's results."""
    parts: List[str] = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<link rel="icon" href="data:,"><title>tokzoo demo</title>', f"<style>{STYLE}</style></head><body>",
        "<h1>tokzoo demo</h1>",
        f"<p>tokzoo {escape(results['tokzoo_version'])}, {escape(results['date_utc'])}, CPU, offline. The tokenizers "
        "are the embedded defaults, loaded through the zoo like any published model. Every number below names its "
        "protocol (open the <i>protocol</i> lines).</p>"]
    if results.get("images"):
        parts += _image_section(results["images"])
    if results.get("speech"):
        parts += _speech_section(results["speech"])
    parts += _quantizer_section(results["quantizers"], results["quantizers_protocol"])
    parts += ["<h2>Next steps</h2>", "<pre>" + escape("\n".join(next_steps)) + "</pre>", "</body></html>"]
    text = "\n".join(parts) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return path
