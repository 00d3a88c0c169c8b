"""argparse types the commands share, so a bad number is refused by argparse (exit code 2, the
option named) before any model is loaded."""
from __future__ import annotations

import argparse


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (batch sizes, token counts, chunk sizes)."""
    return _whole(text, 1)


def non_negative_int(text: str) -> int:
    """An integer >= 0 (worker counts: 0 decodes in the main process; top-k: 0 is no limit)."""
    return _whole(text, 0)


def workers_or_default(value) -> int:
    """``--workers`` as given, or what fits this machine (the engine's rule) when it was left out."""
    from vistok.data.loader import default_num_workers

    return default_num_workers() if value is None else int(value)


def add_model_arguments(p: argparse.ArgumentParser, precision: str, precision_help: str, batch_size: int) -> None:
    """``--model``, ``--device``, ``--precision`` and ``--batch-size``, as every encode/decode command
    takes them (the default precision and batch size are the command's own)."""
    p.add_argument("--model", required=True, help="zoo name, save_pretrained directory or org/name repo")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default=precision, help=precision_help)
    p.add_argument("--batch-size", type=positive_int, default=batch_size)
