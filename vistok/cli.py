"""The `tokzoo` command line.

Each feature area has a module under ``vistok.commands`` with a ``register(subparsers)`` function
that adds its parser and sets ``func``; ``SUBCOMMANDS`` lists them, and a family adds its own
through its declaration (``Family.commands``: ``tokzoo audio`` comes from the audio package).
Those modules import heavy libraries only inside their handlers, so ``tokzoo --help`` stays fast. Errors the user can fix
(a bad name, a missing file, an offline cache miss: :class:`vistok.errors.TokzooError` and file
errors) print one message and exit with code 2; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, List, Optional

from vistok._version import __version__
from vistok.commands import codec, evaluate, generate, posttrain_pairs, tokenize, train, zoo
from vistok.errors import TokzooError
from vistok.registry import command_registrars, resolve

SUBCOMMANDS: List[Callable[[argparse._SubParsersAction], None]] = [zoo.register, codec.register, train.register,
                                                                    evaluate.register, tokenize.register,
                                                                    generate.register, posttrain_pairs.register]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tokzoo",
        description="tokzoo: discrete visual and audio tokenizers - load, train and evaluate them.",
    )
    parser.add_argument("--version", action="version", version=f"tokzoo {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in SUBCOMMANDS:
        register(subparsers)
    for target in command_registrars():  # the families' own subcommands (e.g. tokzoo audio)
        resolve(target)(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    try:
        return int(func(args) or 0)
    except (TokzooError, OSError) as err:
        if os.environ.get("TOKZOO_TRACEBACK"):
            raise
        print(f"tokzoo {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
