"""The `tokzoo` command line.

Each feature area adds a subcommand by appending a ``register(subparsers)`` function to
``SUBCOMMANDS``; the function adds its parser and sets ``func`` on it. The CLI itself stays a
dispatcher so that ``tokzoo --help`` is fast and works without optional extras installed.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, List, Optional

from vistok._version import __version__

# Filled by the feature modules (zoo, train, eval, audio) as they land.
SUBCOMMANDS: List[Callable[[argparse._SubParsersAction], None]] = []


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tokzoo",
        description="tokzoo: discrete visual and audio tokenizers - load, train and evaluate them.",
    )
    parser.add_argument("--version", action="version", version=f"tokzoo {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in SUBCOMMANDS:
        register(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    return int(func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
