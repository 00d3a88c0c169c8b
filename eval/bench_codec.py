"""Audio codec encode / decode speed as a real-time factor, tokzoo against the official implementation.

For every family (``--family``, default all; ``family:config`` picks one config) and each of its
published full-size configs, the official model is built with seeded random weights as the family's
parity script builds it, saved in the official layout and loaded into ours through our converter
(``eval/codec_pairs.py``), so both run the same computation; the ids each side produces on the timed
input are compared (a speed ratio only means something when they are equal). The peers:

- EnCodec 24 / 48 kHz: the ``encodec`` package;  DAC 16 / 24 / 44.1 kHz: ``descript-audio-codec``;
- SNAC 24 / 32 / 44.1 kHz: ``snac``;  Mimi: ``moshi``;
- WavTokenizer 40 / 75 tokens/s: transformers' ``WavTokenizerModel`` (the ``wavtokenizer-*-hf`` cards' layout);
- X-Codec 2: ``xcodec2`` (its w2v-BERT built with 17 of the release's 24 layers, as the parity script
  builds it: the release runs all 24, so its real encode costs more than the official one timed here;
  its ``encode_code`` takes one item: ``--batch 1``).

When a peer is not importable the codec is benchmarked alone (its preset with random weights) and the
table says "peer not installed". Input: ``--seconds`` of 24 kHz real speech from the corpus (clips
concatenated; noise if the corpus is absent), resampled to each model's rate (stereo models get two
different stretches of speech), batch ``--batch``. Timed under ``torch.inference_mode`` (and bf16
autocast for ``--dtype bf16`` on CUDA), ours and the official model ALTERNATING pass by pass (the one
that goes first alternates too), so that load from other processes on a shared machine falls on both
alike; the fastest of ``--iters`` passes after ``--warmup`` per side (medians go to the JSON too):

- encode: waveform -> ids (each side's own entry point, its padding included); decode: ids -> waveform;
- RTF = compute seconds / audio seconds (lower is faster; < 1 is faster than real time); audio seconds
  count every item of the batch; ours/official = our RTF / theirs (< 1: tokzoo is faster);
- GFLOPs per second of audio (torch.utils.flop_counter on the first second of one item: matmuls,
  convolutions, attention; a multiply-add is 2 FLOPs), both sides;
- ids: equal on the timed input, or the share that is equal; audio: max |ours - official| / max |official|
  of the two decodes (when the ids are equal; SNAC's noise blocks are seeded alike on both sides);
- on CUDA, peak allocated memory per side (its weights + the activations of one encode + decode).

Each official package lives in its own scratch venv, so ``--per-venv`` runs each family in a
subprocess with that venv's interpreter (``eval/codec_pairs.py`` FAMILIES names them; ``--python
FAMILY=PATH`` overrides one; a venv that is absent falls back to this interpreter) and merges the
families into one table; without it every family runs in this process::

    python eval/bench_codec.py --per-venv --seconds 3 --iters 5    # CPU here: eval/results/bench_codec_cpu.{txt,json}
    /tmp/parity_dac/bin/python eval/bench_codec.py --family dac --out /tmp/bench_dac   # one family, one venv
    python eval/bench_codec.py --per-venv --device cuda --dtype bf16 --seconds 60 --batch 8 --family encodec dac snac \
        mimi wavtokenizer
    python eval/bench_codec.py --merge eval/results/bench_codec_cpu.json /tmp/bench_dac.json   # add a later run
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "eval"))

from bench_common import count_flops, cpu_name, timed as timed_once  # noqa: E402
from codec_pairs import FAMILIES, Pair, Side  # noqa: E402

SPEECH_DIRS = [REPO.parent / "shared/corpus/audio/speech/val", REPO / "tests/assets/audio"]


# ----- what to run -----

def selection(values: Sequence[str]) -> List[Tuple[str, str]]:
    """``["all"]``, family names or ``family:config`` -> ``[(family, config), ...]`` in FAMILIES order."""
    picked: List[Tuple[str, str]] = []
    for value in values:
        family, _, config = value.partition(":")
        if family == "all" and not config:
            picked += [(f, c) for f, entry in FAMILIES.items() for c in entry.configs]
            continue
        if family not in FAMILIES:
            raise ValueError(f"--family: unknown family {family!r} (known: all, {', '.join(FAMILIES)})")
        configs = FAMILIES[family].configs
        if config and config not in configs:
            raise ValueError(f"--family: {family} has no config {config!r} (its configs: {', '.join(configs)})")
        picked += [(family, c) for c in ([config] if config else configs)]
    order = {(f, c): i for i, (f, c) in enumerate((f, c) for f, e in FAMILIES.items() for c in e.configs)}
    return sorted(dict.fromkeys(picked), key=order.__getitem__)


def interpreters(overrides: Sequence[str]) -> Dict[str, str]:
    """The interpreter per family for ``--per-venv``: FAMILIES' venv, ``FAMILY=PATH`` overrides, and this
    interpreter where the venv's is absent."""
    chosen = {f: str(Path(e.venv) / "bin" / "python") for f, e in FAMILIES.items()}
    for item in overrides:
        family, sep, path = item.partition("=")
        if not sep or family not in FAMILIES or not path:
            raise ValueError(f"--python: expected FAMILY=PATH with FAMILY one of {', '.join(FAMILIES)}, got {item!r}")
        chosen[family] = path
    return {f: p if Path(p).exists() else sys.executable for f, p in chosen.items()}


# ----- input -----

def speech(seconds: float, items: int, rate: int = 24000) -> Tuple[torch.Tensor, str]:
    """``(items, samples)`` of real 24 kHz speech (concatenated corpus clips) resampled to ``rate``."""
    need = int(seconds * 24000) + 64
    try:
        import soundfile as sf
    except ImportError:
        sf = None
    wav, source = None, "Gaussian noise (no corpus)"
    for folder in SPEECH_DIRS:
        files = sorted(folder.glob("*.flac")) if sf is not None else []
        if not files:
            continue
        pieces, total = [], 0
        while total < need * items:
            for path in files:
                data, sr = sf.read(str(path), dtype="float32", always_2d=True)
                if sr == 24000:
                    pieces.append(torch.from_numpy(data.mean(1)))
                    total += data.shape[0]
        wav = torch.cat(pieces)[: need * items].reshape(items, need)
        source = f"speech from {folder.relative_to(REPO.parent)}"
        break
    if wav is None:
        wav = 0.1 * torch.randn(items, need, generator=torch.Generator().manual_seed(0))
    if rate != 24000:
        from audiotok.dsp import resample

        wav = resample(wav, 24000, rate)
    return wav[:, : int(seconds * rate)].contiguous(), source


# ----- measuring -----

def alternate(fns: Dict[str, Any], warmup: int, iters: int, device: str) -> Dict[str, Dict[str, float]]:
    """Seconds of each ``fns[name]()``: all warmed up, then timed in turn pass by pass (the order
    flips every pass); fastest and median per name."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: Dict[str, List[float]] = {name: [] for name in fns}
    names = list(fns)
    for i in range(iters):
        for name in (names if i % 2 == 0 else names[::-1]):
            times[name].append(timed_once(fns[name], device))
    return {name: dict(best=min(t), median=statistics.median(t)) for name, t in times.items()}


def compare_ids(ours: torch.Tensor, theirs: torch.Tensor) -> Dict[str, Any]:
    if tuple(ours.shape) != tuple(theirs.shape):
        return dict(equal=False, share=0.0, detail=f"shape {tuple(ours.shape)} vs {tuple(theirs.shape)}")
    same = ours.cpu() == theirs.cpu()
    share = float(same.float().mean())
    detail = "equal" if bool(same.all()) else f"{int((~same).sum())} of {same.numel()} differ"
    return dict(equal=bool(same.all()), share=share, detail=detail)


def audio_rel_diff(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    a = ours.float().reshape(ours.shape[0], -1, ours.shape[-1])  # (B, T) or (B, C, T) -> (B, C, T)
    b = theirs.float().reshape(theirs.shape[0], -1, theirs.shape[-1])
    n = min(a.shape[-1], b.shape[-1])
    a, b = a[..., :n], b[..., :n]
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def gflops(side: Side, x: torch.Tensor) -> Dict[str, Optional[float]]:
    """GFLOPs of encode and decode of ``x`` (one item, one second). None where the counter fails."""
    out: Dict[str, Optional[float]] = {}
    with torch.no_grad():  # not inference_mode: the flop counter cannot read weight-normed weights there
        codes = side.encode(x)
        for name, fn in (("encode", lambda: side.encode(x)), ("decode", lambda: side.decode(codes))):
            try:
                out[name] = count_flops(fn) / 1e9
            except Exception as err:  # a counter gap in one implementation must not stop the benchmark
                print(f"    (flop count of {name} failed: {type(err).__name__}: {err})", flush=True)
                out[name] = None
    return out


def peak_mib(side: Side, x: torch.Tensor, device: str) -> float:
    """Weights + the peak activations of one encode + decode (CUDA)."""
    weights = sum(t.numel() * t.element_size() for t in list(side.model.parameters()) + list(side.model.buffers()))
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    side.decode(side.encode(x))
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base + weights) / 2**20


def seeded(seed: int, fn):
    torch.manual_seed(seed)
    return fn()


def bench_config(family: str, config: str, args) -> Dict[str, Any]:
    device = args.device
    entry = FAMILIES[family]
    rate, channels = entry.shape(config)
    items, source = speech(args.seconds, args.batch * channels, rate)
    wav = items.reshape(args.batch, channels, -1)
    print(f"[{family} {config}] building ({'with' if entry.installed else 'without'} {entry.dist})", flush=True)
    pair: Pair = entry.build(config, wav, args.seed)  # on the CPU, codebooks drawn around this input
    if (pair.sample_rate, pair.channels) != (rate, channels):
        raise RuntimeError(f"{family} {config}: built {pair.sample_rate} Hz x {pair.channels}, shape() said "
                           f"{rate} Hz x {channels}")
    sides = {"ours": pair.ours} if pair.official is None else {"ours": pair.ours, "official": pair.official}
    for side in sides.values():
        side.model.eval().to(device)
    x = wav.to(device)
    audio_seconds = x.shape[0] * x.shape[-1] / rate
    cast = (torch.autocast("cuda", dtype=torch.bfloat16) if args.dtype == "bf16" and device.startswith("cuda")
            else nullcontext())
    row: Dict[str, Any] = dict(family=family, config=config, model=f"{entry.label} {config}",
                               peer=pair.peer, python=sys.executable, input=source, sample_rate=rate, channels=channels,
                               params_millions=round(sum(p.numel() for p in pair.ours.model.parameters()) / 1e6, 2),
                               audio_seconds=audio_seconds)
    with torch.inference_mode(), cast:
        codes = {name: seeded(args.seed, lambda s=s: s.encode(x)) for name, s in sides.items()}
        row["tokens"] = list(pair.ours.ids(codes["ours"]).shape)
        if pair.official is not None:
            row["ids"] = compare_ids(pair.ours.ids(codes["ours"]), pair.official.ids(codes["official"]))
            if row["ids"]["equal"]:
                decoded = {name: seeded(args.seed + 1, lambda s=s, n=name: s.decode(codes[n]))
                           for name, s in sides.items()}
                row["audio_rel_diff"] = audio_rel_diff(decoded["ours"], decoded["official"])
        print(f"    timing encode ({', '.join(sides)} alternating)", flush=True)
        enc = alternate({n: (lambda s=s: s.encode(x)) for n, s in sides.items()}, args.warmup, args.iters, device)
        print("    timing decode", flush=True)
        dec = alternate({n: (lambda s=s, n=n: s.decode(codes[n])) for n, s in sides.items()}, args.warmup, args.iters,
                        device)
        if device.startswith("cuda"):
            row["peak_mib"] = {n: peak_mib(s, x, device) for n, s in sides.items()}
    row["seconds"] = {name: {"encode": enc[name], "decode": dec[name]} for name in sides}
    row["rtf"] = {name: {k: v["best"] / audio_seconds for k, v in row["seconds"][name].items()} for name in sides}
    row["rtf_median"] = {name: {k: v["median"] / audio_seconds for k, v in row["seconds"][name].items()}
                         for name in sides}
    if pair.official is not None:
        row["ours_over_official"] = {k: row["rtf"]["ours"][k] / row["rtf"]["official"][k] for k in ("encode", "decode")}
    one = x[:1, :, :rate]
    with cast:
        row["gflops_per_audio_second"] = {name: gflops(s, one) for name, s in sides.items()}
    print("    " + one_line(row), flush=True)
    return row


# ----- results -----

def meta(args, argv: Optional[Sequence[str]], source: str) -> Dict[str, Any]:
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else cpu_name()
    return dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                torch=torch.__version__, device=args.device, device_name=device_name, dtype=args.dtype,
                threads=torch.get_num_threads(), cores=os.cpu_count(), batch=args.batch, seconds=args.seconds,
                input=source, warmup=args.warmup, iters=args.iters, load_average=list(os.getloadavg()),
                note=args.note,
                command="python eval/bench_codec.py " + shlex.join(argv if argv is not None else sys.argv[1:]))


def merge(parts: Sequence[Dict[str, Any]], top: Dict[str, Any]) -> Dict[str, Any]:
    """One result from per-family results (each ``{**meta, "rows": [...]}``, or an earlier merge): ``top``'s
    meta, the rows in FAMILIES order, and each part's own meta (interpreter, load average, command) under
    ``parts``."""
    order = {(f, c): i for i, (f, c) in enumerate((f, c) for f, e in FAMILIES.items() for c in e.configs)}
    rows = [row for part in parts for row in part["rows"]]
    keys = [(r["family"], r["config"]) for r in rows]
    if len(set(keys)) != len(keys):
        raise ValueError(f"merge: a config appears in more than one part: {keys}")
    rows.sort(key=lambda r: order.get((r["family"], r["config"]), len(order)))
    metas = []  # an already merged result contributes its parts
    for part in parts:
        metas += part.get("parts") or [{k: v for k, v in part.items() if k not in ("rows", "parts")}]
    return dict(top, rows=rows, parts=metas)


def _f(value: Optional[float], width: int, digits: int = 4) -> str:
    return f"{value:>{width}.{digits}f}" if value is not None else f"{'-':>{width}}"


def one_line(r: Dict[str, Any]) -> str:
    ours, theirs = r["rtf"]["ours"], r["rtf"].get("official")
    if theirs is None:
        return f"{r['model']}: RTF enc {ours['encode']:.4f} dec {ours['decode']:.4f} (peer not installed)"
    ratio = r["ours_over_official"]
    return (f"{r['model']}: RTF enc {ours['encode']:.4f} vs {theirs['encode']:.4f} ({ratio['encode']:.2f}x), "
            f"dec {ours['decode']:.4f} vs {theirs['decode']:.4f} ({ratio['decode']:.2f}x), ids {r['ids']['detail']}")


def report(result: Dict[str, Any]) -> str:
    m = result
    shared = f", {m['note']}" if m.get("note") else ""
    lines = [f"Codec encode/decode real-time factor, tokzoo vs the official implementation (same seeded random "
             "weights, "
             f"alternating passes in one process per family), {m['batch']} x {m['seconds']:g} s of {m['input']} "
             f"resampled to each model's rate, {m['dtype']}, {m['device_name']} ({m['device']}{shared}), torch "
             f"{m['torch']}, {m['threads']} threads, fastest of {m['iters']} passes after {m['warmup']} warm-up "
             "(medians in the .json)",
             "RTF = compute time / audio duration (lower is faster); ours/off = our RTF / the official RTF "
             "(< 1: tokzoo faster); ids: the two sides' ids on the timed input; audio: max|ours - official| / "
             "max|official| of the two decodes",
             f"{'model':<18} {'params M':>8} {'peer':<38} | {'RTF enc ours':>12} {'official':>8} {'ours/off':>8} | "
             f"{'RTF dec ours':>12} {'official':>8} {'ours/off':>8} | {'ids':<18} {'audio':>8} | "
             f"{'GFLOP/s-audio enc':>17} {'dec':>6}" + (" | peak MiB ours official" if m["device"] != "cpu" else ""),
             "-" * (182 + (24 if m["device"] != "cpu" else 0))]
    for r in m["rows"]:
        ours, theirs = r["rtf"]["ours"], r["rtf"].get("official")
        flops = r["gflops_per_audio_second"]["ours"]
        if theirs is None:
            peer = f"{r['peer']} (peer not installed)" if "not installed" not in r["peer"] else "peer not installed"
            cells = (f"{ours['encode']:>12.4f} {'-':>8} {'-':>8} | {ours['decode']:>12.4f} {'-':>8} {'-':>8} | "
                     f"{'-':<18} {'-':>8}")
        else:
            peer, ratio = r["peer"], r["ours_over_official"]
            ids = r["ids"]["detail"] if r["ids"]["equal"] else f"{r['ids']['share']:.4%} equal"
            cells = (f"{ours['encode']:>12.4f} {theirs['encode']:>8.4f} {ratio['encode']:>8.2f} | "
                     f"{ours['decode']:>12.4f} {theirs['decode']:>8.4f} {ratio['decode']:>8.2f} | {ids:<18} "
                     f"{(format(r['audio_rel_diff'], '8.1e') if 'audio_rel_diff' in r else '-'):>8}")
        line = (f"{r['model']:<18} {r['params_millions']:>8.2f} {peer[:38]:<38} | {cells} | "
                f"{_f(flops['encode'], 17, 2)} {_f(flops['decode'], 6, 2)}")
        if "peak_mib" in r:
            line += f" | {r['peak_mib']['ours']:8.0f} {r['peak_mib'].get('official', float('nan')):8.0f}"
        lines.append(line)
    theirs_flops = [(r["model"], r["gflops_per_audio_second"]["official"]) for r in m["rows"]
                    if "official" in r["gflops_per_audio_second"]]
    if theirs_flops:
        lines.append("official GFLOP/s-audio (enc / dec): " + "; ".join(
            f"{name} {_f(f['encode'], 0, 2).strip()} / {_f(f['decode'], 0, 2).strip()}" for name, f in theirs_flops))
    lines.append(f"command: {m['command']}")
    for p in m.get("parts", []):
        lines.append(f"  {', '.join(p.get('families', []))}: "
                     f"{p['python']} (1-min load average at its end {p['load_average'][0]:.2f} on {p['cores']} cores)")
    if not m.get("parts"):
        lines.append(f"1-min load average at the end: {m['load_average'][0]:.2f} on {m['cores']} cores (other "
                     "processes share the CPU when it exceeds the thread count)")
    return "\n".join(lines) + "\n"


def write(result: Dict[str, Any], stem: Path) -> str:
    text = report(result)
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".txt").write_text(text)
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    return text


# ----- modes -----

def run_here(args, picked: List[Tuple[str, str]], argv) -> Dict[str, Any]:
    warnings.filterwarnings("ignore")  # the official packages use the deprecated torch weight_norm
    rows = [bench_config(f, c, args) for f, c in picked]
    source = rows[0]["input"] if rows else "-"
    return dict(meta(args, argv, source), python=sys.executable, families=list(dict.fromkeys(f for f, _ in picked)),
                rows=rows)


PASS_THROUGH = ("device", "dtype", "seconds", "batch", "warmup", "iters", "seed", "note")


def run_per_venv(args, picked: List[Tuple[str, str]], argv) -> Dict[str, Any]:
    pythons = interpreters(args.python)
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in dict.fromkeys(f for f, _ in picked):
            stem = Path(tmp) / family
            cmd = [pythons[family], str(Path(__file__).resolve()), "--out", str(stem),
                   "--family", *[f"{f}:{c}" for f, c in picked if f == family]]
            for key in PASS_THROUGH:
                value = getattr(args, key)
                if value is not None:
                    cmd += [f"--{key}", str(value)]
            print(f"== {family}: {' '.join(cmd)}", flush=True)
            res = subprocess.run(cmd, check=False)
            if res.returncode != 0:
                raise SystemExit(f"bench_codec: the {family} run failed (exit {res.returncode}): {' '.join(cmd)}")
            parts.append(json.loads(stem.with_suffix(".json").read_text()))
    source = parts[0]["input"] if parts else "-"
    return merge(parts, dict(meta(args, argv, source), python=sys.executable))


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", nargs="+", default=["all"],
                        help=f"families or family:config (default all: {', '.join(FAMILIES)})")
    parser.add_argument("--per-venv", action="store_true",
                        help="run each family in a subprocess with its official package's venv, and merge")
    parser.add_argument("--python", nargs="*", default=[], metavar="FAMILY=PATH", help="interpreter for --per-venv")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32", help="bf16 = autocast, CUDA only")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2,
                        help="untimed passes per side (oneDNN builds kernels per shape)")
    parser.add_argument("--iters", type=int, default=7, help="timed passes per side")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--note", default=None, help="a remark for the header, e.g. 'shared with other processes'")
    parser.add_argument("--out", help="output stem (default eval/results/bench_codec_<cpu|cuda>)")
    parser.add_argument("--merge", nargs="+", type=Path, metavar="JSON",
                        help="measure nothing: merge these results (e.g. a family run later) into --out's stem")
    args = parser.parse_args(argv)
    for name in ("seconds", "batch", "iters"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive, got {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"--warmup must be >= 0, got {args.warmup}")
    try:
        args.picked = selection(args.family)
        if args.per_venv:
            interpreters(args.python)
    except ValueError as err:
        parser.error(str(err))
    return args


def run_merge(args, argv) -> Dict[str, Any]:
    parts = []
    for path in args.merge:
        if not path.is_file():
            raise SystemExit(f"bench_codec: --merge: no such file {path}")
        parts.append(json.loads(path.read_text()))
    kinds = {p["device"] for p in parts}
    if len(kinds) != 1:
        raise SystemExit(f"bench_codec: --merge: results from different devices {sorted(kinds)}")
    first = {k: v for k, v in parts[0].items() if k not in ("rows", "parts")}
    args.device = first["device"]
    return merge(parts, dict(first, command=" + ".join(dict.fromkeys(p["command"] for p in parts))))


def main(argv=None) -> int:
    args = parse(argv)
    if args.merge:
        result = run_merge(args, argv)
    else:
        result = (run_per_venv if args.per_venv else run_here)(args, args.picked, argv)
    kind = "cpu" if args.device == "cpu" else "cuda"
    stem = Path(args.out) if args.out else REPO / "eval/results" / f"bench_codec_{kind}"
    print(write(result, stem))
    return 0


if __name__ == "__main__":
    sys.exit(main())
