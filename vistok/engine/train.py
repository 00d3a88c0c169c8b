"""Entry point: ``python -m vistok.engine.train RECIPE.yaml [key.sub=value ...]``.

Launch it as it is (one process), under ``torchrun --nproc_per_node N``, or with
``accelerate launch [--multi_gpu|--num_machines ...] -m vistok.engine.train RECIPE ...``;
``tokzoo train`` is the same command.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def build_parser(parser: Optional[argparse.ArgumentParser] = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m vistok.engine.train", description=__doc__)
    parser.add_argument("recipe", help="recipe YAML (see train/)")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="override any recipe key")
    parser.add_argument("--print-recipe", action="store_true", help="print the resolved recipe and exit")
    return parser


def run(args: argparse.Namespace) -> int:
    from vistok.engine.recipe import load_recipe, recipe_to_yaml

    recipe = load_recipe(args.recipe, args.overrides)
    if args.print_recipe:
        print(recipe_to_yaml(recipe))
        return 0
    from vistok.engine.trainer import Trainer

    export = Trainer(recipe).fit()
    print(f"done: {recipe.training.max_steps} steps; {recipe.model.family} model exported to {export}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    from vistok.errors import TokzooError

    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (TokzooError, OSError) as err:  # as the tokzoo CLI: user errors in one line, bugs keep their traceback
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
