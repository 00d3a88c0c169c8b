"""``tokzoo generate``: class-conditional samples from a trained generator and its tokenizer, as
an ADM-style ``.npz`` (``arr_0`` uint8 ``(N, H, W, 3)``, ``arr_1`` labels) or a folder of PNGs,
for gFID. Sample ``i`` draws its randomness from ``(seed, i)`` alone, so the set does not depend
on the batch size."""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import zipfile
from pathlib import Path
from typing import List, Optional, Sequence

from vistok.commands.arguments import non_negative_int, positive_int
from vistok.errors import InputError


def parse_classes(items: Optional[Sequence[str]], num_classes: int) -> List[int]:
    """``["0", "5-9", "12,13"]`` -> ``[0, 5, 6, 7, 8, 9, 12, 13]``; None or empty -> every class."""
    if not items:
        return list(range(num_classes))
    out: List[int] = []
    for item in items:
        for part in str(item).split(","):
            part = part.strip()
            if not part:
                continue
            lo, sep, hi = part.partition("-")
            try:
                values = range(int(lo), int(hi) + 1) if sep else [int(lo)]
            except ValueError:
                raise InputError(f"--classes: {part!r} is not a class index or a range like 3-7") from None
            out.extend(values)
    bad = [c for c in out if not 0 <= c < num_classes]
    if bad:
        raise InputError(f"--classes: {bad[0]} is outside 0..{num_classes - 1}")
    return out


class NpzImageWriter:
    """Streams uint8 ``(n, H, W, 3)`` batches into ``arr_0`` of an uncompressed ``.npz`` (the
    labels go to ``arr_1`` on close), so 50k images never sit in memory together. Written to a
    temporary name and renamed when complete."""

    def __init__(self, path, count: int, labels: Sequence[int]):
        import numpy as np

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.count, self.written = int(count), 0
        self.labels = np.asarray(labels, dtype=np.int64)
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self.zip = zipfile.ZipFile(self.tmp, "w", zipfile.ZIP_STORED, allowZip64=True)
        self.member = None

    def write(self, images) -> None:
        import numpy as np

        images = np.ascontiguousarray(images, dtype=np.uint8)
        if self.member is None:
            self.member = self.zip.open("arr_0.npy", "w", force_zip64=True)
            header = {"descr": np.lib.format.dtype_to_descr(images.dtype), "fortran_order": False,
                      "shape": (self.count, *images.shape[1:])}
            np.lib.format.write_array_header_2_0(self.member, header)
        if self.written + len(images) > self.count:
            raise ValueError(f"{self.path}: more than the {self.count} images announced")
        self.member.write(images.tobytes())
        self.written += len(images)

    def close(self) -> Path:
        import numpy as np

        if self.written != self.count:
            self.abort()
            raise ValueError(f"{self.path}: got {self.written} of {self.count} images")
        self.member.close()
        buffer = io.BytesIO()
        np.save(buffer, self.labels)
        self.zip.writestr("arr_1.npy", buffer.getvalue())
        self.zip.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        if self.member is not None:
            self.member.close()
        self.zip.close()
        self.tmp.unlink(missing_ok=True)


def _generate(args) -> int:
    import torch
    from tqdm import tqdm

    from vistok.data.images import save_image
    from vistok.hub.loading import load_tokenizer
    from vistok.metrics.generator_samples import GeneratorSource
    from vistok.models.generator import ARGenerator

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    generator = ARGenerator.from_pretrained(args.generator, device=device)
    tokenizer = load_tokenizer(args.tokenizer, device=device)
    classes = parse_classes(args.classes, generator.config.num_classes)
    labels = [c for c in classes for _ in range(args.num_per_class)]
    settings = sampling_settings(args)
    # The same source gFID samples on the fly from: identical images for identical settings.
    source = GeneratorSource(generator, tokenizer, labels, args.seed, settings, args.precision)
    out = Path(args.output)
    to_npz = out.suffix == ".npz"
    writer = NpzImageWriter(out, len(labels), labels) if to_npz else None
    try:
        batches = source.batches(0, len(labels), args.batch_size)
        for indices, images in tqdm(batches, total=-(-len(labels) // args.batch_size), desc="generate",
                                    unit="batch", disable=not sys.stderr.isatty()):
            if writer is not None:
                writer.write(images.permute(0, 2, 3, 1).numpy())
            else:
                for i, image in zip(indices.tolist(), images):
                    save_image(image.float() / 255, out / f"{labels[i]:04d}" / f"{i:06d}.png")
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.close()
    record = {"generator": str(args.generator), "tokenizer": args.tokenizer, "classes": classes,
              "num_per_class": args.num_per_class, "count": len(labels), "seed": args.seed,
              "precision": source.precision_used, **settings}
    sidecar = out.with_suffix(".json") if to_npz else out / "samples.json"
    sidecar.write_text(json.dumps(record, indent=2) + "\n")
    print(f"{out}: {len(labels)} samples ({len(classes)} classes x {args.num_per_class}); settings in {sidecar}")
    return 0


def add_sampling_args(p: argparse.ArgumentParser) -> None:
    """The options of :meth:`ARGenerator.generate` (shared by generate, eval gfid, posttrain-pairs)."""
    p.add_argument("--cfg", "--cfg-scale", dest="cfg", type=float, default=1.0,
                   help="classifier-free guidance scale (1: none)")
    p.add_argument("--cfg-power", type=float, help="RAR's power-cosine ramp of the guidance scale over the steps "
                                                   "(e.g. 1.15); default: constant scale")
    p.add_argument("--temperature", type=float, default=1.0, help="0: greedy")
    p.add_argument("--top-k", type=non_negative_int, default=0, help="0: no limit")
    p.add_argument("--top-p", type=float, default=1.0, help="1: no limit")


def add_run_args(p: argparse.ArgumentParser) -> None:
    """Seed, batch size, device and precision of a sampling run (generate, posttrain-pairs)."""
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--precision", choices=("bf16", "fp16", "fp32"), default="bf16",
                   help="autocast dtype on CUDA (CPU always runs fp32)")


def sampling_settings(args: argparse.Namespace) -> dict:
    """The keyword arguments of :meth:`ARGenerator.generate` that :func:`add_sampling_args` parsed."""
    return {"cfg_scale": args.cfg, "cfg_power": args.cfg_power, "temperature": args.temperature,
            "top_k": args.top_k, "top_p": args.top_p}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("generate", help="sample class-conditional images with a trained generator "
                                               "(ADM .npz or PNGs, for gFID)")
    p.add_argument("--generator", required=True, help="directory written by ARGenerator.save_pretrained")
    p.add_argument("--tokenizer", required=True, help="the tokenizer whose ids the generator models (zoo name, "
                                                      "save_pretrained directory or org/name repo)")
    p.add_argument("--num-per-class", type=positive_int, required=True)
    p.add_argument("--classes", nargs="*", help="class indices or ranges (0 5-9 12,13); default: every class")
    p.add_argument("-o", "--output", required=True, help="an .npz file (arr_0 uint8 NHWC, arr_1 labels) or a "
                                                         "directory of PNGs (<class>/<index>.png)")
    add_sampling_args(p)
    add_run_args(p)
    p.set_defaults(func=_generate)
