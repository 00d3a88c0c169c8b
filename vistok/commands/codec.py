"""``tokzoo encode|decode|reconstruct``: images to token ids and back with any image tokenizer."""
from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import List

from vistok.commands.arguments import positive_int
from vistok.errors import InputError


def _load(args):
    import torch

    from vistok.hub.loading import load_tokenizer

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = load_tokenizer(args.model, device=device)
    if not hasattr(model.config, "image_size"):
        raise SystemExit(f"{args.model}: not an image tokenizer")
    return model, device


def _autocast(device: str, precision: str):
    import torch

    if precision == "fp32" or not device.startswith("cuda"):
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def _images(paths: List[str], size: int):
    import torch

    from vistok.data.images import load_image

    return torch.stack([load_image(p, size) for p in paths])


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def _encode(args) -> int:
    import numpy as np
    import torch

    model, device = _load(args)
    images = _images(args.images, model.config.image_size)  # read all first: a bad file fails before any work
    chunks = []
    with torch.inference_mode(), _autocast(device, args.precision):
        for part in _batches(len(images), args.batch_size):
            kwargs = {"num_tokens": args.num_tokens} if args.num_tokens else {}
            chunks.append(model.encode(images[part].to(device), **kwargs).cpu())
    ids = torch.cat(chunks)
    ids = (ids if _is_discrete(model) else ids.float()).numpy()
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, ids.astype(np.int32) if _is_discrete(model) else ids.astype(np.float32))
    print(f"{out}: {ids.shape} {'token ids' if _is_discrete(model) else 'continuous tokens'} "
          f"for {len(args.images)} image(s), in the order given")
    return 0


def _is_discrete(model) -> bool:
    return getattr(model.config, "bottleneck", "vq") != "kl"


def _decode(args) -> int:
    import numpy as np
    import torch

    from vistok.data.images import save_image

    model, device = _load(args)
    try:
        array = np.load(args.ids)
    except (OSError, ValueError) as err:
        raise InputError(f"{args.ids}: not a .npy array ({err})") from None
    if array.dtype.kind not in "iuf":
        raise InputError(f"{args.ids}: expected numbers, got an array of {array.dtype}")
    ids = torch.from_numpy(array)
    ids = ids.long() if _is_discrete(model) else ids.float()
    if ids.dim() < 2 or ids.numel() == 0:
        raise InputError(f"{args.ids}: expected a batch of token sequences, got shape {tuple(ids.shape)}")
    if _is_discrete(model):
        size = getattr(getattr(model, "quantize", None), "codebook_size", None) or model.config.codebook_size
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= size:
            raise InputError(f"{args.ids}: token ids must be in 0..{size - 1} for {args.model}; found {low}..{high}")
    out = Path(args.output)
    written = 0
    with torch.inference_mode(), _autocast(device, args.precision):
        for part in _batches(len(ids), args.batch_size):
            for image in model.decode(ids[part].to(device)).float().cpu():
                save_image(image, out / f"{written:06d}.png")
                written += 1
    print(f"{out}: wrote {written} PNG(s)")
    return 0


def _reconstruct(args) -> int:
    import torch

    from vistok.data.images import save_image
    from vistok.metrics.image_quality import psnr

    model, device = _load(args)
    images = _images(args.images, model.config.image_size)
    out = Path(args.output)
    scores = []
    with torch.inference_mode(), _autocast(device, args.precision):
        for part in _batches(len(images), args.batch_size):
            x = images[part].to(device)
            kwargs = {"num_tokens": args.num_tokens} if args.num_tokens else {}
            recon = model.decode(model.encode(x, **kwargs)).float().cpu()
            for path, image, score in zip(args.images[part], recon, psnr(recon, images[part])):
                save_image(image, out / f"{Path(path).stem}.png")
                scores.append(score.item())
                print(f"{path}: PSNR {score.item():.2f} dB")
    print(f"mean PSNR {sum(scores) / len(scores):.2f} dB over {len(scores)} image(s); PNGs in {out}")
    from vistok.metrics.protocol import precision_used, protocol_line

    size = model.config.image_size
    print(protocol_line(model=args.model, data=f"{len(scores)} file(s) given", preprocessing=(
        f"shorter side to {size} (bicubic, antialiased) + center crop {size}"),
        tokens=args.num_tokens or getattr(model, "num_tokens", None), metric="PSNR after uint8 rounding of both",
        precision=precision_used(device, args.precision), device=device))
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="zoo name, save_pretrained directory or org/name repo")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--precision", choices=("bf16", "fp16", "fp32"), default="bf16",
                   help="autocast dtype on CUDA (CPU always runs fp32)")
    p.add_argument("--batch-size", type=positive_int, default=16)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("encode", help="images -> token ids (.npy)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--num-tokens", type=positive_int, help="keep only the first K tokens (flexible-length models)")
    p.add_argument("-o", "--output", required=True, help="output .npy file")
    _common(p)
    p.set_defaults(func=_encode)
    p = subparsers.add_parser("decode", help="token ids (.npy) -> PNG images")
    p.add_argument("ids", help=".npy file written by `tokzoo encode`")
    p.add_argument("-o", "--output", required=True, help="output directory")
    _common(p)
    p.set_defaults(func=_decode)
    p = subparsers.add_parser("reconstruct", help="encode + decode images, write PNGs and print PSNR")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--num-tokens", type=positive_int, help="decode only the first K tokens")
    p.add_argument("-o", "--output", required=True, help="output directory")
    _common(p)
    p.set_defaults(func=_reconstruct)
