"""``tokzoo posttrain-pairs``: the generated half of RobusTok post-training pairs. For each real
image, a frozen generator samples its class with each token kept from the image's own tokens with
probability sigma; the tokenizer decodes the mix to a PNG at the real image's relative path.
``tokzoo train`` with ``data.kind: pairs`` then fine-tunes the decoder on (PNG, real image)."""
from __future__ import annotations

import argparse

from vistok.commands.arguments import positive_int
from vistok.errors import InputError


def _pairs(args) -> int:
    import torch

    from vistok.precision import cuda_autocast
    from vistok.commands.generate import sampling_settings
    from vistok.data.posttrain_pairs import write_posttrain_pairs
    from vistok.hub.loading import load_tokenizer
    from vistok.models.generator import ARGenerator

    if not 0.0 <= args.sigma <= 1.0:
        raise InputError(f"--sigma must be in [0, 1], got {args.sigma}")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    generator = ARGenerator.from_pretrained(args.generator, device=device)
    tokenizer = load_tokenizer(args.model, device=device)
    written = write_posttrain_pairs(tokenizer, generator, args.images, args.output, args.sigma,
                                    batch_size=args.batch_size, seed=args.seed, num_samples=args.num_samples,
                                    autocast=lambda: cuda_autocast(device, args.precision), flat=args.flat,
                                    **sampling_settings(args))
    print(f"{args.output}: wrote {written} generated images (sigma {args.sigma}); pair them with {args.images} "
          "via data.kind=pairs, data.train=OUTPUT, data.real=IMAGES_DIR")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from vistok.commands.generate import add_run_args, add_sampling_args

    p = subparsers.add_parser("posttrain-pairs", help="write generator-sampled images paired with real ones "
                                                      "(RobusTok post-training data)")
    p.add_argument("images", metavar="IMAGES_DIR", help="labelled folder root/<class>/<image> (the class "
                                                        "indices the generator was trained with)")
    p.add_argument("--model", required=True, help="the tokenizer to post-train (zoo name or directory)")
    p.add_argument("--generator", required=True, help="directory written by ARGenerator.save_pretrained")
    p.add_argument("-o", "--output", required=True, help="output folder; PNGs mirror IMAGES_DIR's layout")
    p.add_argument("--sigma", type=float, default=0.7, help="probability of keeping each real token (RobusTok: 0.7)")
    p.add_argument("--num-samples", type=positive_int, help="a seeded random subset of this many images (RobusTok: "
                                                   "200000 of ImageNet train); default all")
    p.add_argument("--flat", action="store_true", help="IMAGES_DIR has no class folders: every image is class 0")
    add_sampling_args(p)
    add_run_args(p)
    p.set_defaults(func=_pairs)
