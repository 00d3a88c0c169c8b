"""WavTokenizer encode / decode speed as a real-time factor, for the published 40 and 75 tokens/s configs.

Each model is the full-size architecture (72.1 M / 71.8 M parameters) with random weights (the codebook
drawn around the encoder's output so every code is reachable; speed does not depend on the values).
Input: ``--seconds`` (default 5) of 24 kHz real speech from the corpus (clips concatenated; noise if the corpus is
absent), batch ``--batch``. Timed under ``torch.inference_mode`` (and autocast for ``--dtype bf16``
on CUDA), the fastest of ``--iters`` passes after ``--warmup`` (the least disturbed by other processes
on a shared machine; medians go to the JSON too):

- encode: waveform -> ids; decode: ids -> waveform; both: the two in a row;
- RTF = compute seconds / audio seconds (lower is faster; < 1 is faster than real time), and its
  inverse, "x real time"; audio seconds count every item of the batch;
- GFLOPs per second of audio (torch.utils.flop_counter on one 1 s clip: matmuls, convolutions,
  attention; a multiply-add is 2 FLOPs);
- on CUDA, peak allocated memory.

    python eval/bench_codec.py                      # CPU here, writes eval/results/bench_codec_cpu.{txt,json}
    python eval/bench_codec.py --device cuda --dtype bf16 --seconds 60 --batch 8
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.utils import flop_counter

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audiotok.models.wavtokenizer import WavTokenizer, WavTokenizerConfig  # noqa: E402
from bench_common import cpu_name, timed as timed_once  # noqa: E402  (eval/ is on sys.path when a script here runs)

SPEECH_DIRS = [REPO.parent / "shared/corpus/audio/speech/val", REPO / "tests/assets/audio"]


def speech(seconds: float, batch: int, rate: int = 24000) -> tuple[torch.Tensor, str]:
    need = int(seconds * rate)
    try:
        import soundfile as sf
    except ImportError:
        sf = None
    for folder in SPEECH_DIRS:
        files = sorted(folder.glob("*.flac")) if sf is not None else []
        if not files:
            continue
        pieces, total = [], 0
        while total < need * batch:
            for path in files:
                data, sr = sf.read(str(path), dtype="float32", always_2d=True)
                if sr == rate:
                    pieces.append(torch.from_numpy(data.mean(1)))
                    total += data.shape[0]
        return torch.cat(pieces)[: need * batch].reshape(batch, need), f"speech from {folder.relative_to(REPO.parent)}"
    return 0.1 * torch.randn(batch, need, generator=torch.Generator().manual_seed(0)), "Gaussian noise (no corpus)"




@torch.no_grad()
def build(rate: int, device: str) -> WavTokenizer:
    torch.manual_seed(0)
    model = WavTokenizer(WavTokenizerConfig.for_token_rate(rate)).eval()
    z, _ = model.encoder(0.1 * torch.randn(2, 1, 48000))
    frames = z.transpose(1, 2).reshape(-1, z.shape[1])
    pick = torch.randint(0, frames.shape[0], (model.quantizer.codebook_size,))
    model.quantizer.embed.copy_(frames[pick] + 0.05 * torch.randn_like(frames[pick]))
    model.quantizer.initted.fill_(True)
    return model.to(device)


def timed(fn, warmup: int, iters: int, device: str) -> dict:
    for _ in range(warmup):
        fn()
    times = [timed_once(fn, device) for _ in range(iters)]
    return dict(best=min(times), median=statistics.median(times))


def gflops_per_audio_second(model: WavTokenizer, device: str) -> dict:
    x = torch.zeros(1, model.sample_rate, device=device)
    out = {}
    with torch.no_grad():  # not inference_mode: the flop counter cannot read weight-normed weights there
        ids = model.encode(x)
        for name, fn in [("encode", lambda: model.encode(x)), ("decode", lambda: model.decode(ids))]:
            counter = flop_counter.FlopCounterMode(display=False)
            with counter:
                fn()
            out[name] = counter.get_total_flops() / 1e9
    return out


def bench(rate: int, args, wav: torch.Tensor) -> dict:
    device = args.device
    model = build(rate, device)
    x = wav.to(device)
    audio_seconds = x.numel() / model.sample_rate
    cast = (torch.autocast("cuda", dtype=torch.bfloat16) if args.dtype == "bf16" and device.startswith("cuda")
            else nullcontext())
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode(), cast:
        ids = model.encode(x)
        t_enc = timed(lambda: model.encode(x), args.warmup, args.iters, device)
        t_dec = timed(lambda: model.decode(ids), args.warmup, args.iters, device)
        t_both = timed(lambda: model.decode(model.encode(x)), args.warmup, args.iters, device)
    flops = gflops_per_audio_second(model, device)
    seconds = dict(encode=t_enc, decode=t_dec, both=t_both)
    row = dict(model=f"WavTokenizer {rate} tok/s", token_rate=rate, hop=model.hop_length,
               params_millions=round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
               tokens=list(ids.shape), audio_seconds=audio_seconds, seconds=seconds,
               rtf={k: v["best"] / audio_seconds for k, v in seconds.items()},
               rtf_median={k: v["median"] / audio_seconds for k, v in seconds.items()},
               gflops_per_audio_second=flops)
    if device.startswith("cuda"):
        row["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return row


def report(rows, meta) -> str:
    lines = [f"WavTokenizer encode/decode real-time factor, random weights, {meta['batch']} x {meta['seconds']:g} s of "
             f"{meta['input']} at 24 kHz, {meta['dtype']}, {meta['device_name']} ({meta['device']}), torch "
             f"{meta['torch']}, {meta['threads']} threads, fastest of {meta['iters']} passes after {meta['warmup']} "
             "warm-up (medians in the .json)",
             "RTF = compute time / audio duration (lower is faster); x RT = audio duration / compute time",
             f"{'model':<24} {'params M':>8} | {'RTF enc':>8} {'dec':>8} {'both':>8} | {'x RT enc':>8} {'dec':>8} "
             f"{'both':>8} | {'GFLOP/s-audio enc':>17} {'dec':>6}" + (" | peak MiB" if meta["device"] != "cpu" else ""),
             "-" * 118]
    for r in rows:
        rtf = r["rtf"]
        line = (f"{r['model']:<24} {r['params_millions']:>8.2f} | {rtf['encode']:>8.4f} {rtf['decode']:>8.4f} "
                f"{rtf['both']:>8.4f} | {1 / rtf['encode']:>8.1f} {1 / rtf['decode']:>8.1f} {1 / rtf['both']:>8.1f} | "
                f"{r['gflops_per_audio_second']['encode']:>17.2f} {r['gflops_per_audio_second']['decode']:>6.2f}")
        if "peak_mib" in r:
            line += f" | {r['peak_mib']:8.0f}"
        lines.append(line)
    lines.append(f"command: {meta['command']}  (1-min load average at the end: {meta['load_average'][0]:.2f} on "
                 f"{os.cpu_count()} cores; other processes share the CPU when it exceeds the thread count)")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32", help="bf16 = autocast, CUDA only")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2, help="untimed passes (oneDNN builds kernels per shape)")
    parser.add_argument("--iters", type=int, default=7)
    parser.add_argument("--rates", type=int, nargs="+", default=[40, 75])
    parser.add_argument("--out", help="output stem (default eval/results/bench_codec_<cpu|cuda>)")
    args = parser.parse_args(argv)
    wav, source = speech(args.seconds, args.batch)
    rows = [bench(rate, args, wav) for rate in args.rates]
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else cpu_name()
    meta = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                torch=torch.__version__, device=args.device, device_name=device_name, dtype=args.dtype,
                threads=torch.get_num_threads(), batch=args.batch, seconds=args.seconds, input=source,
                warmup=args.warmup, iters=args.iters, load_average=list(os.getloadavg()),
                command="python eval/bench_codec.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    text = report(rows, meta)
    kind = "cpu" if args.device == "cpu" else "cuda"
    stem = Path(args.out) if args.out else REPO / "eval/results" / f"bench_codec_{kind}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".txt").write_text(text)
    stem.with_suffix(".json").write_text(json.dumps(dict(meta, rows=rows), indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
