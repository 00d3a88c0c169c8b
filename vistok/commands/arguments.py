"""argparse types the commands share, so a bad number is refused by argparse (exit code 2, the
option named) before any model is loaded."""
from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An integer >= 1 (batch sizes, token counts, chunk sizes)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
