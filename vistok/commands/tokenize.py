"""``tokzoo tokenize``: encode a class-labelled image folder into token shards for generator training."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from vistok.commands.arguments import non_negative_int, positive_int
from vistok.errors import InputError


def tokenize_folder(tokenizer, images_root, out_dir, *, name: str, batch_size: int = 64, flip: bool = False,
                    num_workers: int = 0, precision: str = "bf16", shard_size: int = 100_000,
                    overwrite: bool = False, device: Optional[str] = None, flat: bool = False) -> Path:
    """Encode every image of ``images_root`` (``root/<class>/<image>``, or with ``flat`` any tree
    of images, all class 0; center crop at the tokenizer's ``image_size``) in sorted order; with
    ``flip`` also its mirror image. Returns the token shard directory (see :mod:`vistok.data.tokens`)."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from vistok.data.labelled_folder import LabelledImageFolder
    from vistok.data.tokens import TokenShardWriter, config_sha256
    from vistok.models.base import require_tokenizer
    from vistok.precision import cuda_autocast

    device = device or str(next(tokenizer.parameters()).device)
    codebook = require_tokenizer(tokenizer, "image", name).codebook_size
    if codebook is None:
        raise InputError(f"{name}: not a discrete tokenizer (token shards hold ids from a quantizer codebook)")
    dataset = LabelledImageFolder(images_root, tokenizer.image_size, flat=flat)
    meta = {"tokenizer": name, "tokenizer_family": tokenizer.family,
            "tokenizer_config_sha256": config_sha256(tokenizer), "source": str(Path(images_root).resolve()),
            "image_size": tokenizer.image_size, "num_classes": len(dataset.classes),
            "classes": dataset.classes, "flip": bool(flip)}
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    writer = TokenShardWriter(out_dir, tokenizer.num_tokens, codebook, meta, shard_size, overwrite)
    with writer, torch.inference_mode(), cuda_autocast(device, precision):
        for images, labels in tqdm(loader, desc="tokenize", unit="batch", disable=not sys.stderr.isatty()):
            images = images.to(device)
            ids = tokenizer.encode(images)
            ids_flip = tokenizer.encode(images.flip(-1)) if flip else None
            writer.add(ids, labels, ids_flip)
    return writer.root


def _tokenize(args) -> int:
    import torch

    from vistok.data.tokens import read_meta
    from vistok.hub.loading import load_tokenizer

    out = Path(args.output)
    if out.exists() and not args.overwrite:
        raise InputError(f"{out}: already exists (pass --overwrite to replace it)")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = load_tokenizer(args.model, device=device)
    from vistok.models.base import require_tokenizer

    require_tokenizer(model, "image", args.model)
    root = tokenize_folder(model, args.images, out, name=args.model, batch_size=args.batch_size, flip=args.flip,
                           num_workers=args.num_workers, precision=args.precision, shard_size=args.shard_size,
                           overwrite=args.overwrite, device=device, flat=args.flat)
    meta = read_meta(root)
    print(f"{root}: {meta['count']} images x {meta['num_tokens']} tokens ({meta['num_classes']} classes"
          f"{', plus mirrored ids' if args.flip else ''}) in {len(meta['shards'])} shard(s)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("tokenize", help="encode a labelled image folder (root/<class>/<image>) into token "
                                               "shards for generator training")
    p.add_argument("images", metavar="IMAGES_DIR", help="ImageNet-style folder: one subfolder per class, sorted "
                                                        "names give the class indices")
    p.add_argument("--model", required=True,
                   help="tokenizer: zoo name, save_pretrained directory or org/name repo")
    p.add_argument("-o", "--output", required=True, help="output directory (created; written whole or not at all)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--precision", choices=("bf16", "fp16", "fp32"), default="bf16",
                   help="autocast dtype on CUDA (CPU always runs fp32)")
    p.add_argument("--flip", action="store_true", help="also store the ids of each mirrored image (training "
                                                       "picks one of the two per epoch)")
    p.add_argument("--flat", action="store_true", help="IMAGES_DIR has no class subfolders: every image is "
                                                       "class 0 (a one-class generator)")
    p.add_argument("--num-workers", type=non_negative_int, default=0, help="image decoding processes")
    p.add_argument("--shard-size", type=positive_int, default=100_000, help="rows per shard file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    p.set_defaults(func=_tokenize)
