"""The ``descentlab`` command. Thin: each subcommand parses arguments and calls the library."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from collections.abc import Sequence

from . import __version__, cli_lab, cli_sweep

EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130  # as a shell reports a command stopped by Ctrl-C


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


def _bench(args: argparse.Namespace) -> int:
    if args.cold:
        # point Numba's cache at an empty folder, so that "first call" is a real compilation
        import atexit
        import shutil
        import tempfile

        from numba.core import config

        cache = tempfile.mkdtemp(prefix="descentlab-numba-")
        atexit.register(shutil.rmtree, cache, ignore_errors=True)
        os.environ["NUMBA_CACHE_DIR"] = cache
        # Numba is imported by now (descentlab's modules import it), and it reads the variable
        # again only when it next compiles: a cfunc made before that (a rule's job) would look
        # for its cache in the old place
        config.reload_config()
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .bench import BenchSettings, render, run

    settings = BenchSettings(
        optimizers=args.optimizers, size=args.size, dtype=args.dtype, repeats=args.repeats,
        warmup=args.warmup, many=tuple(args.many), threads=args.threads, torch=not args.no_torch,
        nonfinite=args.nonfinite)
    settings.check()  # a ValueError: one line and exit status 2, from main
    cli_lab.check_json_target(args.json)
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description:>14}"), BarColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        result = run(settings, progress)
    out = Console()
    if not out.is_terminal:  # a file or a pipe: do not squeeze the table into 80 columns
        out = Console(width=200)
    out.print(render(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return 0


def _many(text: str) -> list[int]:
    try:
        count, size = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected COUNTxSIZE such as 1000x4096, got {text!r}") from None
    return [count, size]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="descentlab",
        description="Gradient-descent optimizers exact against torch.optim, and a lab for the "
                    "vanishing-gradient problem.",
    )
    parser.add_argument("--version", action="version", version=f"descentlab {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of one line "
                             "(give it before the command: descentlab --debug demo)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    listing = commands.add_parser(
        "optimizers", help="list the optimizers with their defaults",
        description="List every optimizer in descentlab.optim with its default hyperparameters.")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(run=_optimizers)

    bench = commands.add_parser(
        "bench", help="time optimizer steps against memory bandwidth and torch.optim",
        description="Time one step of each optimizer on this machine: first-call (compile) "
                    "time, median step time, bytes moved, GB/s and the percentage of the "
                    "memory-bandwidth floor (a STREAM triad measured in the same run); the "
                    "many-small-arrays case against one array of the same total size; and, "
                    "when torch is installed, torch.optim's single-tensor, foreach and fused "
                    "steps side by side, and descentlab.torch's step timed against torch.optim's "
                    "best on the very same tensors.")
    bench.add_argument("optimizers", nargs="*", metavar="OPTIMIZER",
                       help="optimizers to measure (default: all); e.g. Adam RMSprop")
    bench.add_argument("--size", type=int, default=2**25,
                       help="elements of the parameter (default: 2**25 = 33554432)")
    bench.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    bench.add_argument("--repeats", type=int, default=10, help="timed steps (default: 10)")
    bench.add_argument("--warmup", type=int, default=3, help="untimed steps first (default: 3)")
    bench.add_argument("--many", type=_many, default=[1000, 4096], metavar="COUNTxSIZE",
                       help="the many-small-arrays case (default: 1000x4096)")
    bench.add_argument("--threads", type=int, default=None,
                       help="threads for descentlab and torch (default: all cores)")
    bench.add_argument("--no-torch", action="store_true",
                       help="do not measure torch.optim even if it is installed")
    bench.add_argument("--cold", action="store_true",
                       help="compile from scratch (an empty Numba cache) so that 'first call' "
                            "is the compilation time")
    bench.add_argument("--nonfinite", choices=("raise", "skip", "off"), default="raise",
                       help="descentlab's check of the gradients for NaN and infinity "
                            "(default: raise, the optimizers' default; off: no check, as "
                            "torch.optim)")
    bench.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    bench.set_defaults(run=_bench)
    cli_lab.add_commands(commands)
    cli_sweep.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_help()
        return 0
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"descentlab {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (cli_lab.UsageError, ValueError, OSError, sqlite3.Error) as exc:
        # a problem with the input, the data or the output folder: one line, no traceback
        if args.debug:
            raise
        print(f"descentlab {args.command}: {exc}", file=sys.stderr)
        return cli_lab.EXIT_USAGE
    except Exception as exc:  # a bug of ours: still one line, and how to see more
        if args.debug:
            raise
        print(f"descentlab {args.command}: internal error {type(exc).__name__}: {exc} "
              "(run again with --debug for the traceback, and please report it)",
              file=sys.stderr)
        return EXIT_INTERNAL
