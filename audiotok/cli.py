"""``tokzoo audio encode|decode|reconstruct``: audio files to token ids and back with an audio codec."""
from __future__ import annotations

import argparse
import inspect
import math
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from vistok.commands.arguments import add_model_arguments, positive_int
from vistok.commands.codec import _batches, output_names, read_ids  # shared with the image commands
from vistok.errors import InputError
from vistok.precision import cuda_autocast


def _load(args):
    import torch

    from vistok.hub.loading import load_tokenizer
    from vistok.models.base import require_tokenizer

    from audiotok.codec_files import require_file_codec

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = require_file_codec(require_tokenizer(load_tokenizer(args.model, device=device), "audio", args.model),
                               args.model)
    if getattr(args, "chunk_size", None) and "chunk_size" not in inspect.signature(model.decode).parameters:
        raise InputError(f"--chunk-size: {args.model} ({model.family}) does not decode in chunks")
    return model, device


def _hop(model) -> int:
    """Waveform samples per token position."""
    return model.hop_length


def _decode_options(args) -> dict:
    return {"chunk_size": args.chunk_size} if args.chunk_size else {}


def _read_all(paths: List[str], model) -> list:
    """Every file, read and checked before any model work (a bad file fails the whole command):
    mono, or the codec's channels."""
    from audiotok.codec_files import read_clip_for

    return [read_clip_for(model, p) for p in paths]


def _encode_clips(model, clips, device: str, args):
    """:class:`~audiotok.codec_files.FileCodes` per clip (CPU, without padding), batched with per-item lengths."""
    import torch

    from audiotok.codec_files import encode_files

    out = []
    with torch.inference_mode(), cuda_autocast(device, args.precision):
        for part in _batches(len(clips), args.batch_size):
            out.extend(encode_files(model, clips[part], device))
    return out


def scale_paths(ids_path: Path) -> Tuple[Path, Path]:
    """Where ``encode`` writes, beside ``x.npy``, the per-segment scales (``x.scales.npy``, float32
    ``(B, S)``) and sample lengths (``x.lengths.npy``, int64 ``(B,)``) of a codec that needs them."""
    stem = ids_path.with_suffix("") if ids_path.suffix == ".npy" else ids_path
    return stem.parent / f"{stem.name}.scales.npy", stem.parent / f"{stem.name}.lengths.npy"


def _encode(args) -> int:
    import numpy as np

    from audiotok.models.codec import PAD_ID

    model, device = _load(args)
    clips = _read_all(args.files, model)
    codes = _encode_clips(model, clips, device, args)
    ids = [c.ids for c in codes]
    longest = max(t.shape[-1] for t in ids)
    array = np.full((len(ids), *ids[0].shape[:-1], longest), PAD_ID, dtype=np.int32)
    for i, row in enumerate(ids):
        array[i, ..., : row.shape[-1]] = row.numpy()
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, array)
    rate = model.token_rate
    print(f"{out}: {array.shape} int32 token ids for {len(clips)} file(s) at {rate:g} tokens/s, in the order given; "
          f"shorter files are padded with {PAD_ID}")
    if model.needs_scales:
        scales_path, lengths_path = scale_paths(out)
        segments = max(c.scales.shape[-1] for c in codes)
        scales = np.ones((len(codes), segments), dtype=np.float32)
        for i, c in enumerate(codes):
            scales[i, : c.scales.shape[-1]] = c.scales.numpy()
        np.save(scales_path, scales)
        np.save(lengths_path, np.array([c.samples for c in codes], dtype=np.int64))
        print(f"{scales_path}: per-segment loudness scales {scales.shape}, {lengths_path}: samples per file "
              f"({model.family} decodes ids with them; keep them beside the ids)")
    return 0


def _read_scales(ids_path: Path, count: int):
    """The scales and lengths ``encode`` wrote beside ``ids_path``; an error naming a missing or wrong file."""
    import numpy as np

    scales_path, lengths_path = scale_paths(ids_path)
    for path in (scales_path, lengths_path):
        if not path.is_file():
            raise InputError(f"{path}: missing; this codec decodes ids with the per-segment scales and lengths "
                             f"that `tokzoo audio encode` writes beside {ids_path.name}")
    scales, lengths = np.load(scales_path), np.load(lengths_path)
    if scales.ndim != 2 or scales.shape[0] != count or lengths.shape != (count,):
        raise InputError(f"{scales_path}, {lengths_path}: shapes {scales.shape} and {lengths.shape} do not fit "
                         f"{count} id sequences")
    return scales, lengths


def _decode(args) -> int:
    import numpy as np
    import torch

    from audiotok.io import write_wav

    model, device = _load(args)
    array = read_ids(args.ids)
    if array.dtype.kind not in "iu":
        raise InputError(f"{args.ids}: expected integer token ids, got dtype {array.dtype}")
    if array.ndim < 2:
        raise InputError(f"{args.ids}: expected a batch of token sequences, got shape {array.shape}")
    if array.size and array.dtype.kind == "u" and int(array.max()) > np.iinfo(np.int64).max:
        raise InputError(f"{args.ids}: token ids up to {int(array.max())}, beyond any codebook")  # int64 would wrap
    from audiotok.codec_files import decode_batch

    ids = torch.from_numpy(array.astype(np.int64))
    scales = samples = None
    if model.needs_scales:
        scales, samples = (torch.from_numpy(a) for a in _read_scales(Path(args.ids), len(ids)))
    out = Path(args.output)
    written = 0
    with torch.inference_mode(), cuda_autocast(device, args.precision):
        for part in _batches(len(ids), args.batch_size):
            batch = ids[part].to(device)
            extra = {} if scales is None else dict(scales=scales[part].to(device), samples=samples[part].to(device))
            try:
                wavs = decode_batch(model, batch, args.seed, **extra, **_decode_options(args))
            except (ValueError, TypeError) as err:
                raise InputError(f"{args.ids}: {err}") from None
            for wav in wavs:
                write_wav(out / f"{written:06d}.wav", wav, model.sample_rate)
                written += 1
    print(f"{out}: wrote {written} WAV file(s) at {model.sample_rate} Hz")
    return 0


METRIC_NAMES = ("SI-SDR", "mel distance", "PESQ-WB", "STOI")
_UNITS = {"SI-SDR": (".2f", " dB"), "mel distance": (".4f", ""), "PESQ-WB": (".2f", ""), "STOI": (".3f", "")}


def _metrics_module():
    """:mod:`audiotok.metrics`, or None when it is not available in this installation."""
    try:
        from audiotok import metrics
    except ImportError:
        return None
    return metrics


def _optional(name: str, package: str, compute) -> Tuple[float, Optional[str]]:
    """``(value, None)``, or ``(nan, reason)`` when ``package`` is missing or the metric refuses the pair."""
    try:
        return compute(), None
    except ImportError as err:
        missing = getattr(err, "name", None) or package
        return float("nan"), f"{name} is NaN: {missing} is not installed (pip install 'tokzoo[eval]')"
    except ValueError as err:
        return float("nan"), f"{name} is NaN: {err}"


def _score(metrics, clip, wav, sample_rate: int) -> Tuple[Dict[str, float], List[str]]:
    """SI-SDR, mel distance, PESQ-WB (16 kHz) and STOI of one clip and its reconstruction, and the
    reasons for any NaN."""
    ref, est = clip[None], wav[None]
    computations = {"SI-SDR": ("numpy", lambda: metrics.si_sdr(ref, est)[0]),
                    "mel distance": ("torch", lambda: metrics.mel_distance(ref, est, sample_rate)[0]),
                    "PESQ-WB": ("pesq", lambda: metrics.pesq_wb(ref, est, sample_rate)[0]),
                    "STOI": ("pystoi", lambda: metrics.stoi(ref, est, sample_rate)[0])}
    scores, reasons = {}, []
    for name, (package, compute) in computations.items():
        scores[name], reason = _optional(name, package, compute)
        if reason is None and math.isnan(scores[name]):  # computed, but NaN: say why
            reason = f"{name} is NaN: {_WHY_NAN.get(name, 'not finite for this clip and its reconstruction')}"
        if reason:
            reasons.append(reason)
    return scores, reasons


_WHY_NAN = {"STOI": "too little speech to score (pystoi needs about 0.4 s of frames within 40 dB of the loudest)"}


def _format(name: str, value: float) -> str:
    spec, unit = _UNITS[name]
    return f"{name} {value:{spec}}{unit}"


def _means_line(scores: Dict[str, List[float]], out: Path) -> str:
    n = len(scores["SI-SDR"])
    parts = []
    for name in METRIC_NAMES:
        values = [v for v in scores[name] if not math.isnan(v)]
        if not values:
            parts.append(f"mean {name} nan (no file scored)")
        else:
            text = f"mean {_format(name, sum(values) / len(values))}"
            parts.append(text if len(values) == n else f"{text} ({len(values)} of {n} files)")
    return f"{', '.join(parts)} over {n} file(s); WAVs in {out}"


def _reconstruct(args) -> int:
    import torch

    from audiotok.codec_files import decode_file, mono
    from audiotok.io import write_wav

    model, device = _load(args)
    clips = _read_all(args.files, model)
    ids = _encode_clips(model, clips, device, args)
    metrics = _metrics_module()
    out = Path(args.output)
    scores: Dict[str, List[float]] = {name: [] for name in METRIC_NAMES}
    with torch.inference_mode(), cuda_autocast(device, args.precision):
        for path, name, clip, codes in zip(args.files, output_names(args.files), clips, ids):
            row = codes.ids
            wav = decode_file(model, codes, device, args.seed, **_decode_options(args))[..., : clip.shape[-1]]
            write_wav(out / f"{name}.wav", wav, model.sample_rate)
            if metrics is None:
                print(f"{path}: {row.shape[-1]} tokens -> {out / (name + '.wav')}")
                continue
            values, reasons = _score(metrics, mono(clip), mono(wav), model.sample_rate)
            for key, value in values.items():
                scores[key].append(value)
            print(f"{path}: {'  '.join(_format(k, values[k]) for k in METRIC_NAMES)}  ({row.shape[-1]} tokens)")
            for reason in reasons:
                print(f"  {reason}")
    if metrics is None:
        print("metrics skipped: audiotok.metrics is not available in this installation")
    else:
        print(_means_line(scores, out))
        from vistok.metrics.protocol import protocol_line
        from vistok.precision import precision_used

        print(protocol_line(model=args.model, data=f"{len(args.files)} file(s) given, whole clips", input=(
            f"mono mix, soxr HQ to {model.sample_rate} Hz" if model.channels == 1 else
            f"{model.channels} channels (a mono file copied to each), soxr HQ to {model.sample_rate} Hz; "
            "scored on the channel mean"), PESQ="wide-band, both signals soxr HQ to 16 kHz",
            STOI=f"pystoi at {model.sample_rate} Hz", mel_distance="log-mel L1, n_fft 1024, hop 256, 100 mels",
            precision=precision_used(device, args.precision), device=device))
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p, "fp32", "autocast dtype on CUDA (default fp32: lower precision can change code assignments)",
                        batch_size=8)


SEED_HELP = ("seed of the noise a codec's decoder draws (SNAC's noise blocks): each file gets its own generator "
             "seeded with it, so it decodes the same alone, in a batch and in every run (default 0)")


CHUNK_HELP = ("decode in windows of this many tokens, with 8 tokens of context on either side: memory is bounded by "
              "the window (without it, it grows linearly with the clip), but the decoder's attention then sees only "
              "the window, so the audio approximates the whole-clip decode")


def register(subparsers: argparse._SubParsersAction) -> None:
    audio = subparsers.add_parser("audio", help="audio files <-> token ids with an audio codec (any audio family)")
    sub = audio.add_subparsers(dest="audio_command", metavar="ACTION", required=True)
    p = sub.add_parser("encode", help="audio files -> token ids (.npy, int32, -1 pads shorter files; a codec with "
                                      "per-segment scales also writes NAME.scales.npy and NAME.lengths.npy)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("-o", "--output", required=True, help="output .npy file")
    _common(p)
    p.set_defaults(func=_encode)
    p = sub.add_parser("decode", help="token ids (.npy) -> WAV files")
    p.add_argument("ids", help=".npy file written by `tokzoo audio encode`")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--chunk-size", type=positive_int, help=CHUNK_HELP)
    p.add_argument("--seed", type=int, default=0, help=SEED_HELP)
    _common(p)
    p.set_defaults(func=_decode)
    p = sub.add_parser("reconstruct", help="encode + decode audio files, write WAVs and print SI-SDR, mel distance, "
                                             "PESQ-WB (16 kHz) and STOI")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--chunk-size", type=positive_int, help=CHUNK_HELP)
    p.add_argument("--seed", type=int, default=0, help=SEED_HELP)
    _common(p)
    p.set_defaults(func=_reconstruct)
