"""Streaming decode at full size: each causal codec's ``streaming_decoder`` fed chunks of 1, 3, 7
and 75 frames against one-shot ``decode`` of the same ids, on seeded random weights (the
arithmetic, not the weights, is under test; one-shot decode itself is checked against the official
code by the parity scripts). Prints, and writes ``eval/results/streaming.{txt,json}`` with
``--record``: the largest difference, the output's scale, and the frames before the first output.

    python eval/check_streaming.py --record
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from audiotok.models.encodec import EnCodec, EnCodecConfig  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def seeded_encodec(seed: int) -> EnCodec:
    torch.manual_seed(seed)
    model = EnCodec(EnCodecConfig.preset("24khz")).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for q in model.quantizer.quantizers:
            q.embed.copy_(torch.randn(q.embed.shape, generator=gen) * 0.5)
            q.embed_avg.copy_(q.embed)
            q.initted.fill_(True)
    return model


def check(name, model, frames, chunks, seed=0):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, model.config.codebook_size, (2, model.num_codebooks, frames), generator=gen)
    rows = []
    with torch.no_grad():
        whole = model.decode(ids)
        for chunk in chunks:
            decoder = model.streaming_decoder()
            start = time.perf_counter()
            pieces, first = [], None
            for i in range(0, frames, chunk):
                out = decoder.step(ids[..., i: i + chunk])
                if first is None and out.shape[-1]:
                    first = min(i + chunk, frames)
                pieces.append(out)
            pieces.append(decoder.flush())
            seconds = time.perf_counter() - start
            streamed = torch.cat(pieces, -1)
            same_shape = streamed.shape == whole.shape
            diff = float((streamed - whole).abs().max()) if same_shape else float("inf")
            rows.append(dict(codec=name, chunk_frames=chunk, frames=frames, levels=model.num_codebooks,
                             max_abs_diff=diff, output_max_abs=float(whole.abs().max()),
                             frames_before_first_output=first, seconds=round(seconds, 3),
                             ok=same_shape and diff <= 1e-4))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150, help="frames of ids per stream (default 150: 2 s)")
    parser.add_argument("--record", action="store_true", help="write eval/results/streaming.{txt,json}")
    args = parser.parse_args(argv)
    rows = check("encodec-24khz (32 levels)", seeded_encodec(0), args.frames, (1, 3, 7, 75))
    lines = [f"# eval/check_streaming.py --frames {args.frames}; torch {torch.__version__}; CPU fp32; "
             "seeded random weights at the released size; tolerance 1e-4"]
    for r in rows:
        lines.append(f"{'PASS' if r['ok'] else 'FAIL'} {r['codec']}: chunks of {r['chunk_frames']} frames, "
                     f"max |stream - decode| {r['max_abs_diff']:.2e} (output max {r['output_max_abs']:.3f}), "
                     f"first output after {r['frames_before_first_output']} frames, {r['seconds']} s")
    text = "\n".join(lines)
    print(text)
    if args.record:
        os.makedirs(RESULTS, exist_ok=True)
        with open(os.path.join(RESULTS, "streaming.txt"), "w") as f:
            f.write(text + "\n")
        with open(os.path.join(RESULTS, "streaming.json"), "w") as f:
            json.dump(rows, f, indent=1)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
