"""TiTok inference throughput, peak memory and FLOPs: the published S-128 and L-32 configs.

Each model (random weights, two-stage ``decoder="vqgan"``, ``legacy_reshape=True``) runs in a
fresh subprocess so memory numbers do not mix. Per model:
- images/s for ``encode(x)`` (images in [0, 1], 256x256 -> ids), ``decode(ids)`` (ids -> images)
  and the two together, at ``--batch`` images, median over ``--iters`` timed passes after
  ``--warmup`` passes, under torch.inference_mode (and torch.autocast for bf16 / fp16);
- peak memory: on CUDA torch.cuda.max_memory_allocated (weights + activations); on CPU the
  process's peak RSS (ru_maxrss) minus its RSS before the model was built;
- GFLOPs per image for encode, decode and both, counted by torch.utils.flop_counter on one
  image (a multiply-add is 2 FLOPs; matmuls, convolutions and attention, not elementwise ops);
- the achieved TFLOP/s (FLOPs per image x images/s, encode+decode) and, on CUDA when the
  device's dense bf16 peak is known (or given with --peak-tflops), the fraction of it.

    python eval/bench_titok.py                                   # CPU fp32 here
    python eval/bench_titok.py --device cuda                     # CUDA bf16 autocast
    python eval/bench_titok.py --device cuda --dtype fp32 --models l32 --peak-tflops 989
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext

import torch

from bench_common import count_flops, cpu_name  # eval/ is on sys.path when a script here runs

MODELS = {  # the published configs, as in tests/models/test_titok.py
    "s128": ("TiTok-S-128", dict(encoder_size="small", decoder_size="small", num_latent_tokens=128)),
    "l32": ("TiTok-L-32", dict(encoder_size="large", decoder_size="large", num_latent_tokens=32)),
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s: (substrings of the device name, peak).
PEAK_BF16_TFLOPS = [
    (("H200",), 989.0),
    (("H100", "PCIe"), 756.0),
    (("H100", "HBM3"), 989.0),
    (("H100", "SXM"), 989.0),
    (("A100",), 312.0),
    (("L40S",), 362.0),
]


def known_peak_tflops(device_name: str) -> float | None:
    for needles, tflops in PEAK_BF16_TFLOPS:
        if all(n in device_name for n in needles):
            return tflops
    return None




def current_rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def precision(device: str, dtype: str):
    """fp32 runs as is; bf16 / fp16 under torch.autocast on the device."""
    return nullcontext() if dtype == "fp32" else torch.autocast(device_type=device, dtype=DTYPES[dtype])


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def build(key: str, device: str):
    from vistok.models.titok import TiTok, TiTokConfig

    torch.manual_seed(0)
    return TiTok(TiTokConfig(**MODELS[key][1])).eval().to(device)


def time_passes(model, x: torch.Tensor, device: str, warmup: int, iters: int) -> dict:
    """Median seconds of encode and of decode over ``iters`` passes; encode+decode is their sum
    within each pass."""
    for _ in range(warmup):
        model.decode(model.encode(x))
    enc, dec, both = [], [], []
    for _ in range(iters):
        sync(device)
        t0 = time.perf_counter()
        ids = model.encode(x)
        sync(device)
        t1 = time.perf_counter()
        model.decode(ids)
        sync(device)
        t2 = time.perf_counter()
        enc.append(t1 - t0)
        dec.append(t2 - t1)
        both.append(t2 - t0)
    return {k: statistics.median(v) for k, v in (("encode", enc), ("decode", dec), ("both", both))}


def worker(key: str, device: str, dtype: str, batch: int, warmup: int, iters: int) -> dict:
    """One model in this process: throughput, peak memory, then FLOPs on one image."""
    rss_before = current_rss()
    model = build(key, device)
    params = sum(p.numel() for p in model.parameters())
    x = torch.rand(batch, 3, 256, 256, generator=torch.Generator().manual_seed(1)).to(device)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode(), precision(device, dtype):
        seconds = time_passes(model, x, device, warmup, iters)
        if device == "cuda":
            peak = torch.cuda.max_memory_allocated()
        else:  # ru_maxrss is in KiB on Linux; read it before the FLOP pass
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
        ids = model.encode(x[:1])
        flops = {"encode": count_flops(model.encode, x[:1]), "decode": count_flops(model.decode, ids)}
    flops["both"] = flops["encode"] + flops["decode"]
    return {
        "params": params,
        "tokens": model.num_tokens,
        "images_per_s": {k: batch / s for k, s in seconds.items()},
        "gflops_per_image": {k: f / 1e9 for k, f in flops.items()},
        "peak_mib": peak / 2**20,
    }


def run_isolated(args, key: str) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", key, "--device", args.device,
           "--dtype", args.dtype, "--batch", str(args.batch), "--warmup", str(args.warmup),
           "--iters", str(args.iters)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"benchmark worker failed ({key}):\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def environment(args) -> dict:
    env = {
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device == "cuda" else cpu_name(),
        "dtype": args.dtype,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    if args.device == "cuda":
        env["cuda"] = torch.version.cuda
    return env


def table(env: dict, rows: list, peak_tflops: float | None, args) -> list:
    lines = [f"TiTok encode/decode, random weights, batch {args.batch}, {env['dtype']}, "
             f"{env['device_name']} ({env['device']}), torch {env['torch']}, {env['threads']} threads, "
             f"median of {args.iters} after {args.warmup} warm-up"]
    header = (f"{'model':<12} {'params M':>8} | {'GFLOPs/img enc':>14} {'dec':>7} {'total':>7} | "
              f"{'img/s enc':>9} {'dec':>8} {'enc+dec':>8} | {'peak MiB':>9} | {'TFLOP/s':>8}")
    if peak_tflops:
        header += f" {'of peak':>7}"
    lines += [header, "-" * len(header)]
    for r in rows:
        g, ips = r["gflops_per_image"], r["images_per_s"]
        line = (f"{r['name']:<12} {r['params'] / 1e6:>8.1f} | {g['encode']:>14.2f} {g['decode']:>7.2f} "
                f"{g['both']:>7.2f} | {ips['encode']:>9.2f} {ips['decode']:>8.2f} {ips['both']:>8.2f} | "
                f"{r['peak_mib']:>9.0f} | {r['achieved_tflops']:>8.3f}")
        if peak_tflops:
            line += f" {r['fraction_of_peak']:>7.2%}"
        lines.append(line)
    if peak_tflops:
        lines.append(f"fraction of a {peak_tflops:g} TFLOP/s dense peak, from the encode+decode throughput")
    return lines


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=list(DTYPES), help="default: bf16 on cuda, fp32 on cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--iters", type=int, help="timed passes (default: 20 on cuda, 3 on cpu)")
    parser.add_argument("--warmup", type=int, help="untimed passes first (default: 5 on cuda, 1 on cpu)")
    parser.add_argument("--models", default="s128,l32", help=f"comma-separated, of {','.join(MODELS)}")
    parser.add_argument("--out", default="eval/results", help="folder for bench_titok_<device>.txt / .json")
    parser.add_argument("--peak-tflops", type=float, help="device peak for the fraction (default: known bf16 peaks)")
    parser.add_argument("--worker", choices=list(MODELS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        parser.error("--device cuda but torch.cuda.is_available() is False")
    args.dtype = args.dtype or ("bf16" if cuda else "fp32")
    args.iters = args.iters if args.iters is not None else (20 if cuda else 3)
    args.warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {list(MODELS)}")
    if args.iters < 1:
        parser.error("--iters must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.device, args.dtype, args.batch, args.warmup, args.iters)))
        return
    env = environment(args)
    peak_tflops = args.peak_tflops
    if peak_tflops is None and args.device == "cuda" and args.dtype != "fp32":
        peak_tflops = known_peak_tflops(env["device_name"])
    rows = []
    for key in args.models:
        r = dict(run_isolated(args, key), model=key, name=MODELS[key][0], config=MODELS[key][1])
        r["achieved_tflops"] = r["gflops_per_image"]["both"] * r["images_per_s"]["both"] / 1e3
        if peak_tflops:
            r["fraction_of_peak"] = r["achieved_tflops"] / peak_tflops
        rows.append(r)
    lines = table(env, rows, peak_tflops, args)
    print("\n".join(lines))

    default_dtype = "bf16" if args.device == "cuda" else "fp32"
    stem = f"bench_titok_{args.device}" + ("" if args.dtype == default_dtype else f"_{args.dtype}")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, stem + ".txt"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    with open(os.path.join(args.out, stem + ".json"), "w") as fh:
        json.dump({**env, "batch": args.batch, "iters": args.iters, "warmup": args.warmup,
                   "peak_tflops": peak_tflops, "rows": rows}, fh, indent=2)
    print(f"wrote {os.path.join(args.out, stem)}.txt / .json")


if __name__ == "__main__":
    main()
