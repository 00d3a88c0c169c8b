"""``tokzoo train RECIPE.yaml [key.sub=value ...]``: the training engine (see vistok.engine.train)."""
from __future__ import annotations

import argparse


def _train(args) -> int:
    from vistok.engine.train import run

    return run(args)


def register(subparsers: argparse._SubParsersAction) -> None:
    from vistok.engine.train import build_parser

    p = subparsers.add_parser("train", help="train a tokenizer from a YAML recipe (accelerate underneath)")
    build_parser(p)
    p.set_defaults(func=_train)
