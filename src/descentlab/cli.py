"""The ``descentlab`` command. Thin: each subcommand parses arguments and calls the library."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import __version__


def _optimizers(args: argparse.Namespace) -> int:
    from .optim import OPTIMIZERS, defaults_of

    rows = [
        {"name": name, "summary": (cls.__doc__ or "").splitlines()[0],
         "defaults": {k: list(v) if isinstance(v, tuple) else v
                      for k, v in defaults_of(cls).items()}}
        for name, cls in OPTIMIZERS.items()
    ]
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="descentlab.optim", show_lines=False)
    table.add_column("optimizer", style="bold")
    table.add_column("defaults")
    table.add_column("what it is")
    for row in rows:
        defaults = ", ".join(f"{k}={v}" for k, v in row["defaults"].items())
        table.add_row(row["name"], defaults, row["summary"])
    Console().print(table)
    print("help(descentlab.optim.<name>) shows the update rule, the paper and how torch.optim, "
          "optax and Keras differ.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="descentlab",
        description="Gradient-descent optimizers exact against torch.optim, and a lab for the "
                    "vanishing-gradient problem.",
    )
    parser.add_argument("--version", action="version", version=f"descentlab {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    listing = commands.add_parser(
        "optimizers", help="list the optimizers with their defaults",
        description="List every optimizer in descentlab.optim with its default hyperparameters.")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(run=_optimizers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_help()
        return 0
    return args.run(args)
