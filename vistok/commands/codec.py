"""``tokzoo encode|decode|reconstruct``: images to token ids and back with any image tokenizer."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import List

from vistok.commands.arguments import add_model_arguments, positive_int
from vistok.errors import InputError
from vistok.fileio import atomic_write
from vistok.precision import cuda_autocast


def _load(args):
    import torch

    from vistok.hub.loading import load_tokenizer
    from vistok.models.base import require_tokenizer

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = require_tokenizer(load_tokenizer(args.model, device=device), "image", args.model)
    if getattr(args, "num_tokens", None):  # (not every subcommand has the option)
        if not model.prefix_decoding:
            raise InputError(f"--num-tokens {args.num_tokens}: {args.model} ({model.family}) does not decode "
                             "prefixes of its ids (only 1D tokenizers such as TiTok and FlexTok do)")
        if args.num_tokens > model.num_tokens:
            raise InputError(f"--num-tokens {args.num_tokens}: {args.model} has {model.num_tokens} tokens per image")
    return model, device




def _images(paths: List[str], size: int):
    import torch

    from vistok.data.images import load_image

    return torch.stack([load_image(p, size) for p in paths])


def read_ids(path):
    """The array in a ``.npy`` file, in native byte order. What is not one (a pickle, an ``.npz``
    archive, text, an empty or truncated file, a header declaring more data than the file holds)
    is refused naming the file; object arrays are never unpickled."""
    import numpy as np

    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, MemoryError) as err:
        raise InputError(f"{path}: not a .npy array ({type(err).__name__}: {err})") from None
    if not isinstance(array, np.ndarray):  # np.load opens .npz archives too
        array.close()
        raise InputError(f"{path}: an .npz archive, not a .npy array")
    return array.astype(array.dtype.newbyteorder("="), copy=False)


def output_names(paths: List[str]) -> List[str]:
    """One output name per input: its stem, with -2, -3, ... for stems seen before, never a name
    already given (a/x.png and b/x.jpg must not overwrite each other's output)."""
    used: set = set()
    names = []
    for path in paths:
        stem = name = Path(path).stem
        k = 1
        while name in used:
            k += 1
            name = f"{stem}-{k}"
        used.add(name)
        names.append(name)
    return names


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def _encode(args) -> int:
    import numpy as np
    import torch

    out = Path(args.output)
    if out.suffix != ".npy":
        # np.save would quietly write "<name>.npy" beside the name asked for
        raise InputError(f"--output {out}: token ids are written as a .npy file; name it <something>.npy")
    model, device = _load(args)
    images = _images(args.images, model.image_size)  # read all first: a bad file fails before any work
    chunks = []
    with torch.inference_mode(), cuda_autocast(device, args.precision):
        for part in _batches(len(images), args.batch_size):
            kwargs = {"num_tokens": args.num_tokens} if args.num_tokens else {}
            chunks.append(model.encode(images[part].to(device), **kwargs).cpu())
    ids = torch.cat(chunks)
    ids = (ids if _is_discrete(model) else ids.float()).numpy()
    array = ids.astype(np.int32) if _is_discrete(model) else ids.astype(np.float32)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.save appends no suffix
            np.save(fh, array)

    atomic_write(out, write)
    print(f"{out}: {ids.shape} {'token ids' if _is_discrete(model) else 'continuous tokens'} "
          f"for {len(args.images)} image(s), in the order given")
    return 0


def _is_discrete(model) -> bool:
    return model.is_discrete


def _decode(args) -> int:
    import numpy as np
    import torch

    from vistok.data.images import save_image

    model, device = _load(args)
    array = read_ids(args.ids)
    if array.dtype.kind not in "iuf":
        raise InputError(f"{args.ids}: expected numbers, got an array of {array.dtype}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InputError(f"{args.ids}: holds NaN or infinite values")
    if array.ndim < 2 or array.size == 0:
        raise InputError(f"{args.ids}: expected a batch of token sequences, got shape {tuple(array.shape)}")
    if _is_discrete(model):
        if array.dtype.kind == "f" and (array != np.round(array)).any():
            raise InputError(f"{args.ids}: holds fractional values; token ids are whole numbers")
        size = model.codebook_size
        low, high = int(array.min()), int(array.max())
        if low < 0 or high >= size:
            raise InputError(f"{args.ids}: token ids must be in 0..{size - 1} for {args.model}; found {low}..{high}")
        most = model.num_tokens
        if array.ndim == 2 and most is not None and array.shape[1] > most:
            raise InputError(f"{args.ids}: {array.shape[1]} tokens per row; {args.model} decodes at most {most}")
    ids = torch.from_numpy(array)
    ids = ids.long() if _is_discrete(model) else ids.float()
    out = Path(args.output)
    written = 0
    with torch.inference_mode(), cuda_autocast(device, args.precision):
        for part in _batches(len(ids), args.batch_size):
            try:
                images = model.decode(ids[part].to(device)).float().cpu()
            except (ValueError, TypeError) as err:  # a shape the model's decoder does not read
                raise InputError(f"{args.ids}: ids of shape {tuple(array.shape)} do not fit {args.model}: "
                                 f"{err}") from None
            for image in images:
                save_image(image, out / f"{written:06d}.png")
                written += 1
    print(f"{out}: wrote {written} PNG(s)")
    return 0


def _reconstruct(args) -> int:
    import torch

    from vistok.data.images import save_image
    from vistok.metrics.image_quality import psnr

    model, device = _load(args)
    images = _images(args.images, model.image_size)
    names = output_names(args.images)
    out = Path(args.output)
    scores = []
    with torch.inference_mode(), cuda_autocast(device, args.precision):
        for part in _batches(len(images), args.batch_size):
            x = images[part].to(device)
            kwargs = {"num_tokens": args.num_tokens} if args.num_tokens else {}
            recon = model.decode(model.encode(x, **kwargs)).float().cpu()
            for path, name, image, score in zip(args.images[part], names[part], recon, psnr(recon, images[part])):
                save_image(image, out / f"{name}.png")
                scores.append(score.item())
                print(f"{path}: PSNR {score.item():.2f} dB")
    print(f"mean PSNR {sum(scores) / len(scores):.2f} dB over {len(scores)} image(s); PNGs in {out}")
    from vistok.metrics.protocol import protocol_line
    from vistok.precision import precision_used

    size = model.image_size
    print(protocol_line(model=args.model, data=f"{len(scores)} file(s) given", preprocessing=(
        f"shorter side to {size} (bicubic, antialiased) + center crop {size}"),
        tokens=args.num_tokens or model.num_tokens, metric="PSNR after uint8 rounding of both",
        precision=precision_used(device, args.precision), device=device))
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p, "bf16", "autocast dtype on CUDA (CPU always runs fp32)", batch_size=16)


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
