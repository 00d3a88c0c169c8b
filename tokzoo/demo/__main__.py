"""``python -m tokzoo.demo [--out DIR] [--data CORPUS]``: see :mod:`tokzoo.demo`."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

IMAGE_MODEL = "tokzoo-demo-titok-64"
SPEECH_MODEL = "tokzoo-demo-wavtokenizer-speech"
TOKEN_COUNTS = (8, 32, 128)

NEXT_STEPS = (
    "tokzoo zoo list                                            # published tokenizers, reported numbers",
    "tokzoo zoo download titok-s128                             # an official checkpoint (needs the network)",
    "tokzoo reconstruct photo.jpg --model titok-s128 -o out/    # reconstruct with it",
    "tokzoo train train/demo/tokzoo_demo_titok_64.yaml          # train from a recipe (the embedded tokenizer's)",
    "tokzoo train train/finetune/tokzoo_demo_titok_64_cpu.yaml  # fine-tune a zoo model",
    f"tokzoo eval pfid --model {IMAGE_MODEL} --data ../shared/corpus/images/val --out outputs/pfid   # pFID",
)


def _default_data() -> Path:
    return Path(os.environ.get("TOKZOO_DATA", "../shared/corpus"))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tokzoo.demo", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"),
                        help="output folder (index.html, results.json)")
    parser.add_argument("--data", type=Path, default=None,
                        help="corpus folder with images/val (default: $TOKZOO_DATA, else ../shared/corpus); "
                             "without it the val-split measurements are skipped")
    parser.add_argument("--num-val", type=int, default=48, help="val images for rFID / pFID (default 48)")
    args = parser.parse_args(argv)
    if args.num_val < 2:
        parser.error("--num-val must be at least 2 (FID needs two images)")
    data = args.data or _default_data()
    if args.data is not None and not (data / "images" / "val").is_dir():
        parser.error(f"--data {data}: no images/val folder there")
    val_dir = data / "images" / "val" if (data / "images" / "val").is_dir() else None

    os.environ.setdefault("TOKZOO_OFFLINE", "1")  # the demo never downloads, whatever the machine can reach
    import torch

    from tokzoo.demo import images, page, quantizers, speech
    from vistok._version import __version__
    from vistok.data.bundled import load_samples
    from vistok.data.images import save_image
    from vistok.fileio import atomic_write

    torch.manual_seed(0)
    start = time.perf_counter()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    results = {"tokzoo_version": __version__, "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    results["images"] = images.run(IMAGE_MODEL, val_dir, args.num_val, TOKEN_COUNTS, out / "images")
    results["speech"] = speech.run(SPEECH_MODEL, out / "speech")
    print("Shared quantizers on 4x4 patches of the bundled photos (fitted and measured on disjoint patches):")
    report, grid = quantizers.run(load_samples())
    quantizers.printed(report)
    small = torch.nn.functional.interpolate(grid[None], scale_factor=0.5, mode="area")[0]
    save_image(small, out / "quantizers.png")
    results["quantizers"], results["quantizers_protocol"] = report, quantizers.PROTOCOL
    results["seconds"] = round(time.perf_counter() - start, 1)
    text = json.dumps(results, indent=2, default=str) + "\n"
    atomic_write(out / "results.json", lambda tmp: Path(tmp).write_text(text))
    index = page.write_page(out / "index.html", results, NEXT_STEPS)
    print(f"\nWrote {index} ({results['seconds']:.0f} s). Next:")
    for line in NEXT_STEPS:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
