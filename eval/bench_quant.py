"""VQ forward+backward throughput and peak memory: tokzoo vs vector-quantize-pytorch.

Both quantizers run the same training step (EMA codebook, decay 0.8, the given gradient
estimator) on the same inputs and the same starting codebook; the script checks that they
assign the same codes and prints throughput and peak-memory ratios (tokzoo / peer).

CPU peak memory is the highest resident set size sampled every 0.5 ms during the steps, minus
the RSS before them, each implementation in a fresh subprocess; on CUDA it is
torch.cuda.max_memory_allocated above the baseline.

    python eval/bench_quant.py                      # CPU, K in {4096, 16384}, d in {12, 64}
    python eval/bench_quant.py --device cuda --tokens 65536
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import torch


def initial_codebook(k: int, d: int) -> torch.Tensor:
    return torch.randn(k, d, generator=torch.Generator().manual_seed(0))


def build(impl: str, k: int, d: int, gradient: str, device: str):
    """The quantizer under test, both starting from the same codebook and EMA state."""
    embed = initial_codebook(k, d)
    if impl == "peer":
        from vector_quantize_pytorch import VectorQuantize

        peer = VectorQuantize(dim=d, codebook_size=k, decay=0.8, rotation_trick=(gradient == "rotation"),
                              commitment_weight=0.25)
        with torch.no_grad():
            peer._codebook.embed.copy_(embed[None])
            peer._codebook.embed_avg.copy_(embed[None])
            peer._codebook.cluster_size.fill_(1.0)
        return peer.to(device)
    from vistok.quant import VectorQuantizer

    ours = VectorQuantizer(k, d, ema_decay=0.8, gradient=gradient, commitment=0.25)
    with torch.no_grad():
        ours.embed.copy_(embed)
        ours.embed_avg.copy_(embed)
        ours.cluster_size.fill_(1.0)
    return ours.to(device)


def step(impl: str, module, z: torch.Tensor):
    if impl == "peer":
        quantized, indices, loss = module(z)
    else:
        out = module(z)
        quantized, indices, loss = out.z_q, out.indices, out.loss
    (quantized.square().mean() + loss).backward()
    return indices


class RssPeak:
    """Samples the process RSS in a background thread (torch kernels release the GIL)."""

    def __init__(self, interval: float = 0.0005):
        self.interval = interval
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.base = self.peak = self.current()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def current(self) -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * self.page

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())


def worker(impl: str, k: int, d: int, tokens: int, gradient: str, device: str, iters: int) -> dict:
    module = build(impl, k, d, gradient, device).train()
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(tokens // 256, 256, d, generator=gen).to(device).requires_grad_(True)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    times = []
    with RssPeak() as rss:
        first = step(impl, module, z)  # warm-up; also the assignments compared across implementations
        for _ in range(iters):
            z.grad = None
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            step(impl, module, z)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = rss.peak - rss.base
    return {
        "tokens_per_s": tokens / sorted(times)[len(times) // 2],
        "peak_bytes": max(peak, 0),
        "indices": first.flatten()[:4096].tolist(),
    }


def exact_assignments(k: int, d: int, tokens: int, count: int = 4096) -> list:
    """fp64 brute-force nearest codes for the first ``count`` vectors of the benchmark input."""
    codebook = initial_codebook(k, d).double()
    z = torch.randn(tokens // 256, 256, d, generator=torch.Generator().manual_seed(1)).reshape(-1, d)[:count]
    return torch.cdist(z.double(), codebook).argmin(1).tolist()


def run_isolated(args, impl: str, k: int, d: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", impl, "--k", str(k), "--d", str(d), "--tokens", str(args.tokens),
           "--gradient", args.gradient, "--device", args.device, "--iters", str(args.iters)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"benchmark worker failed ({impl}, K={k}, d={d}):\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tokens", type=int, default=16384, help="vectors per step (multiple of 256)")
    parser.add_argument("--codebook-sizes", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--dims", type=int, nargs="+", default=[12, 64])
    parser.add_argument("--gradient", choices=["ste", "rotation"], default="rotation")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--worker", choices=["ours", "peer"], help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--d", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.k, args.d, args.tokens, args.gradient, args.device, args.iters)))
        return

    from importlib.metadata import version

    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"VQ train step (EMA 0.8, {args.gradient}), {args.tokens} vectors, device {device_name}, "
          f"peer vector-quantize-pytorch {version('vector-quantize-pytorch')}")
    header = f"{'K':>6} {'d':>3} | {'ours tok/s':>11} {'peer tok/s':>11} {'speed x':>7} | " \
             f"{'ours MiB':>9} {'peer MiB':>9} {'mem ratio':>9} | codes = fp64 exact (ours / peer)"
    print(header)
    print("-" * len(header))
    rows = []
    for k in args.codebook_sizes:
        for d in args.dims:
            ours, peer = run_isolated(args, "ours", k, d), run_isolated(args, "peer", k, d)
            exact = exact_assignments(k, d, args.tokens)
            ours_exact = sum(a == b for a, b in zip(ours["indices"], exact)) / len(exact)
            peer_exact = sum(a == b for a, b in zip(peer["indices"], exact)) / len(exact)
            agree = sum(a == b for a, b in zip(ours["indices"], peer["indices"])) / len(exact)
            row = {
                "K": k, "d": d, "ours_tokens_per_s": ours["tokens_per_s"], "peer_tokens_per_s": peer["tokens_per_s"],
                "speedup": ours["tokens_per_s"] / peer["tokens_per_s"],
                "ours_peak_mib": ours["peak_bytes"] / 2**20, "peer_peak_mib": peer["peak_bytes"] / 2**20,
                "memory_ratio": ours["peak_bytes"] / max(peer["peak_bytes"], 1), "code_agreement": agree,
                "ours_exact": ours_exact, "peer_exact": peer_exact,
            }
            rows.append(row)
            print(f"{k:>6} {d:>3} | {row['ours_tokens_per_s']:>11.0f} {row['peer_tokens_per_s']:>11.0f} "
                  f"{row['speedup']:>6.2f}x | {row['ours_peak_mib']:>9.1f} {row['peer_peak_mib']:>9.1f} "
                  f"{row['memory_ratio']:>9.2f} | {ours_exact:.2%} / {peer_exact:.2%}")
    print("targets at K=16384: speed >= 1.5x, memory ratio <= 0.5, same codes as the peer up to its")
    print("rounding: where the two differ, the fp64 column says which one chose the nearest code.")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": device_name, "tokens": args.tokens, "gradient": args.gradient, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
