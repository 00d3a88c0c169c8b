"""FlexTok throughput: encode and decode images/s, tokzoo against the official apple/ml-flextok code
on the same weights.

For each model size the official ``FlexTok`` is built with seeded random weights from the hydra
config of ``eval/parity_flextok.py``, saved in its layout and converted with
:func:`vistok.models.flextok.convert.load_official`, so both sides run identical weights (their outputs are
checked equal in the parity script). Measured on 256x256 inputs:

- encode: images -> 256 ids (VAE encoder + transformer encoder + FSQ);
- decode: ids truncated to k in {1, 16, 256} -> images, Euler sampling with {8, 25} steps and the
  README's guidance (7.5, adaptive projected guidance: two decoder passes per step), including the
  VAE decoder.

Each number is one timed run after a one-step warm-up with the same shapes (CPU timings of
minutes-long runs vary by a few percent). The full CPU run against the official code takes
about 17 minutes on 2 cores (``--sizes small``: about 8). Sizes: ``small`` (a CPU-sized 384-wide, 6-block
encoder and decoder, NOT a released size; batch 4) and ``d12`` (the released d12_d12 size,
batch 1). The official code is compared on the CPU (through its SDPA fallback); on a GPU
(``--device cuda``) tokzoo runs alone, under bf16 autocast by default.

    python eval/bench_flextok.py --official /tmp/official/flextok            # CPU, both sizes
    python eval/bench_flextok.py --device cuda --sizes d12 --batch 16         # tokzoo on a GPU
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import parity_flextok as parity  # noqa: E402  (the official config and builder, shared with the parity script)
from bench_common import cpu_name, timed  # noqa: E402  (eval/ is on sys.path when a script here runs)

SIZES = {  # name: (label, official_config kwargs, default batch)
    "small": ("small CPU config (384 wide, 6+6 blocks; not released)",
              dict(enc_dim=384, enc_depth=6, dec_dim=384, dec_depth=6), 4),
    "d12": ("d12_d12 (released size)", dict(), 1),
}
KS = [1, 16, 256]
STEPS = [8, 25]
GUIDANCE, APG = 7.5, True


def build_pair(size: str, tree: Optional[Path]):
    """(official model or None, tokzoo model) with the same weights."""
    from vistok.models.flextok.convert import load_official

    if tree is None:  # no official tree: tokzoo alone, its own seeded weights
        from vistok.models.flextok import FlexTok, FlexTokConfig

        kw = SIZES[size][1]
        torch.manual_seed(parity.SEED)
        cfg = FlexTokConfig(encoder_dim=kw.get("enc_dim", 768), encoder_depth=kw.get("enc_depth", 12),
                            decoder_dim=kw.get("dec_dim", 768), decoder_depth=kw.get("dec_depth", 12),
                            vae=dict(scaling_factor=parity.SCALING, sample_posterior=False))
        return None, FlexTok(cfg).eval()
    config = parity.official_config(**SIZES[size][1])
    official = parity.build_official(config)
    with tempfile.TemporaryDirectory() as tmp:
        ours = load_official(parity.save_layouts(official, config, Path(tmp))["hub directory"])
    return official, ours


@torch.no_grad()
def bench_size(size: str, batch: int, tree: Optional[Path], device: torch.device, dtype: torch.dtype) -> Dict[str, Any]:
    label = SIZES[size][0]
    print(f"[{size}] {label}, batch {batch}", flush=True)
    official, ours = build_pair(size, tree)
    ours = ours.to(device)
    autocast = torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else nullcontext()
    x = torch.rand(batch, 3, 256, 256, generator=torch.Generator().manual_seed(0)).to(device)
    rows: List[Dict[str, Any]] = []

    def record(what: str, impl: str, seconds: float, **extra) -> None:
        rows.append({"what": what, "impl": impl, "seconds": round(seconds, 3),
                     "images_per_s": round(batch / seconds, 4), **extra})
        print(f"  {what:<22} {impl:<8} {batch / seconds:8.3f} img/s  ({seconds:.2f}s)", flush=True)

    with autocast:
        ours.encode(x)
        record("encode", "tokzoo", timed(lambda: ours.encode(x), device))
        ids = ours.encode(x)
    if official is not None:
        signed = (x * 2 - 1).cpu()
        official.tokenize(signed)
        record("encode", "official", timed(lambda: official.tokenize(signed), device))
    for k in KS:
        for steps in STEPS:
            what = f"decode k={k} {steps} steps"
            with autocast:
                ours.decode(ids[:, :k], steps=1, guidance=GUIDANCE, apg=APG)
                record(what, "tokzoo", timed(lambda: ours.decode(ids[:, :k], steps=steps, guidance=GUIDANCE, apg=APG,
                                                                 generator=torch.Generator(device).manual_seed(1)),
                                             device), k=k, steps=steps)
            if official is not None:
                ks = [k] * batch
                cpu_ids = ids.cpu()
                parity.official_decode(official, cpu_ids, ks, GUIDANCE, APG, steps=1)
                record(what, "official", timed(lambda: parity.official_decode(official, cpu_ids, ks, GUIDANCE, APG,
                                                                              steps=steps), device), k=k, steps=steps)
    params = round(sum(p.numel() for p in ours.parameters()) / 1e6, 1)
    return {"size": size, "label": label, "batch": batch, "params_M": params, "rows": rows}




def format_table(results: List[Dict[str, Any]], header: List[str]) -> str:
    lines = header + [""]
    for r in results:
        lines.append(f"{r['label']}, batch {r['batch']}, {r['params_M']}M parameters (VAE 83.8M included)")
        lines.append(f"  {'':<24} {'tokzoo img/s':>13} {'official img/s':>15} {'speed-up':>9}")
        by_what: Dict[str, Dict[str, float]] = {}
        for row in r["rows"]:
            by_what.setdefault(row["what"], {})[row["impl"]] = row["images_per_s"]
        for what, v in by_what.items():
            ours, theirs = v.get("tokzoo"), v.get("official")
            ratio = f"{ours / theirs:8.2f}x" if ours and theirs else ""
            theirs_text = f"{theirs:.3f}" if theirs is not None else "-"
            lines.append(f"  {what:<24} {ours:>13.3f} {theirs_text:>15} {ratio:>9}")
        lines.append("")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", type=Path, default=None, help="apple/ml-flextok tree to compare against")
    parser.add_argument("--sizes", nargs="*", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--batch", type=int, default=None, help="override the per-size batch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None, choices=["fp32", "bf16"], help="default: fp32 on CPU, bf16 on CUDA")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype or ("bf16" if device.type == "cuda" else "fp32")]
    tree = args.official.resolve() if args.official else None
    if tree is not None:
        sys.path.insert(0, str(tree))
        parity.install_stand_ins()
        if device.type != "cpu":
            parser.error("the official comparison runs on the CPU only here (its SDPA fallback); drop --official")
    results = [bench_size(s, args.batch or SIZES[s][2], tree, device, dtype) for s in args.sizes]
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    header = [f"FlexTok encode/decode throughput, random weights, 256x256, {str(dtype).split('.')[-1]}, {where} "
              f"({device.type}), torch {torch.__version__}, {torch.get_num_threads()} threads, {now}",
              f"decode: guidance {GUIDANCE} with APG (two decoder passes per step), VAE decode included; "
              "one timed run after a one-step warm-up",
              "command: python eval/bench_flextok.py " + " ".join(argv if argv is not None else sys.argv[1:])]
    if tree is not None:
        header.append(f"official: {tree} ({parity.tree_provenance(tree, None, 'flextok')['sha256'][:16]})")
    table = format_table(results, header)
    print("\n" + table)
    out = args.out or Path(__file__).resolve().parent / "results" / f"bench_flextok_{device.type}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"date": now, "device": where, "dtype": str(dtype),
                                                    "torch": torch.__version__, "results": results}, indent=2) + "\n")
    out.with_suffix(".txt").write_text(table + "\n")
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.txt')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
