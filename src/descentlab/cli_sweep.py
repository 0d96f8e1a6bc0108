"""The evidence subcommands: ``sweep``, ``lr-find`` and ``problems``. Each parses its
arguments and calls ``descentlab.experiments``; problems the user can fix end in a one-line
message and exit status 2 (``cli.main``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from pathlib import Path

from .cli_lab import EXIT_INTERRUPTED, UsageError, check_json_target, stdout_console

EXIT_FAILED_RUNS = 1


def _progress():
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("runs"), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), transient=True)


def print_sweeps(sweeps) -> None:
    """Per problem of each sweep: the ranking table and the recommendation."""
    from .experiments.analysis import recommend
    from .report.terminal import ranking_table

    console = stdout_console()
    for sweep in sweeps:
        for problem in sweep.problems:
            console.print(ranking_table(sweep.name, problem))
            console.print(recommend(problem), markup=False, highlight=False)
            console.print()


def sweep(args: argparse.Namespace) -> int:
    from .experiments import load, run_sweep
    from .report import read_folder, write_report

    check_json_target(args.json)
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    config = load(args.config)
    start = time.perf_counter()
    try:
        with contextlib.nullcontext() if args.quiet else _progress() as progress:
            summary = run_sweep(config, args.out, workers=args.workers, ray=args.ray,
                                overwrite=args.overwrite, progress=progress)
    except KeyboardInterrupt:
        print(f"descentlab sweep: interrupted; finished runs are kept in {args.out}: run the "
              "same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    results = read_folder(summary.folder)
    mine = [s for s in results.sweeps if s.name == config.name]
    print_sweeps(mine)
    if not args.no_report:
        title = args.title or f"descentlab sweep: {config.name}"
        print(f"report: {write_report(summary.folder, title, results)}")
    if args.json:
        from .lab import Store

        with Store(summary.folder) as store:
            store.export_json(args.json)
    print(f"sweep {config.name}: {summary.ran} runs done now, {summary.kept} kept from "
          f"before, {summary.total} in all; {time.perf_counter() - start:.1f} s")
    if summary.failed:
        print(f"descentlab sweep: {len(summary.failed)} run(s) raised an error (recorded as "
              f"failed; a rerun retries them). First: {summary.failed[0]}", file=sys.stderr)
        return EXIT_FAILED_RUNS
    return 0


def _setting(items: list[str]) -> dict:
    """``--set momentum=0.9 nesterov=true`` as keyword arguments."""
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set expects KEY=VALUE such as momentum=0.9, got {item!r}")
        lowered = text.strip().lower()
        if lowered in ("true", "false"):
            out[key] = lowered == "true"
            continue
        try:
            values = [float(v) for v in text.split(",")]
        except ValueError:
            raise UsageError(f"--set {key}: expected a number, true/false or numbers "
                             f"separated by commas, got {text!r}") from None
        out[key] = values[0] if len(values) == 1 else tuple(values)
    return out


def lr_find(args: argparse.Namespace) -> int:
    from . import optim, problems
    from .atomic import write_atomically
    from .experiments import lrfind
    from .experiments.runner import import_problems, resolve_import
    from .lab.store import writable_folder
    from .problems.base import unknown_name
    from .report import sweep_figures

    check_json_target(args.json)
    try:
        import_problems(tuple(resolve_import(i) for i in args.imports))
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    problem = problems.get(args.problem)
    if args.optimizer not in optim.OPTIMIZERS:
        raise UsageError(unknown_name("optimizer", args.optimizer, list(optim.OPTIMIZERS)))
    kwargs = _setting(args.set)
    lrfind.check_arguments(optim.OPTIMIZERS[args.optimizer], kwargs, args.start, args.end,
                           args.steps)
    out = writable_folder(args.out)  # refused before the test runs, not after it
    test = lrfind.range_test(problem, optim.OPTIMIZERS[args.optimizer], kwargs,
                             start=args.start, end=args.end, steps=args.steps, seed=args.seed)
    png = sweep_figures.range_test(test)
    picture = write_atomically(out / f"lr_find_{problem.name}_{args.optimizer}.png",
                               lambda f: f.write(png))
    if test.stopped:
        print(f"stopped early: {test.stopped}")
    if math.isfinite(test.suggestion):
        print(f"suggested lr (steepest descent of the smoothed loss): {test.suggestion:.3g}")
    else:
        print("no suggestion: the loss did not fall over the range (try a wider --start/--end "
              "or more --steps)")
    if math.isfinite(test.minimum_over_10):
        print(f"lr at the loss minimum / 10: {test.minimum_over_10:.3g}")
    print(f"plot: {picture}")
    if args.json:
        text = json.dumps(test.as_dict(), indent=1, default=list, allow_nan=False)
        Path(args.json).write_text(text + "\n")
    return 0


def list_problems(args: argparse.Namespace) -> int:
    from rich.table import Table

    from . import problems

    table = Table(title="descentlab problems", title_justify="left")
    for column in ("name", "metric", "target", "budget", "batch", "what it is"):
        table.add_column(column)
    for name in problems.names():
        p = problems.get(name)
        budget = f"{p.epochs} epochs ({p.total_steps} steps)" if p.epochs else \
            f"{p.total_steps} steps"
        table.add_row(name, f"{p.metric} ({p.goal})", f"{p.target:.4g}", budget,
                      str(p.batch or "—"), p.description)
    stdout_console().print(table)
    return 0


def add_commands(commands) -> None:
    parser = commands.add_parser(
        "sweep", help="tune and compare optimizers on problems (resumable; local or Ray)",
        description="Run the sweep of CONFIG (TOML): for every problem and optimizer, tune on "
                    "the validation metric with quasi-random trials, then rerun the best "
                    "setting from several seeds; record final metrics, steps and time to the "
                    "target, divergence. Results go to DIR/results.sqlite as runs finish; "
                    "rerunning the same command resumes an interrupted sweep. See the README "
                    "for the configuration format.")
    parser.add_argument("config", metavar="CONFIG.toml")
    parser.add_argument("--out", default="descentlab-sweep", metavar="DIR",
                        help="output folder (default: descentlab-sweep)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="local worker processes (default: the number of cores)")
    where.add_argument("--ray", metavar="ADDRESS",
                       help="run on an existing Ray cluster instead ('auto', or host:port); "
                            "needs the ray extra")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete the results already in DIR first (default: resume)")
    parser.add_argument("--json", metavar="FILE",
                        help="also export everything in DIR (each run with its curve) as JSON")
    parser.add_argument("--no-report", action="store_true", help="do not write report.html")
    parser.add_argument("--title", help="the report's title")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=sweep)

    parser = commands.add_parser(
        "lr-find", help="the learning-rate range test for a problem and an optimizer",
        description="Train PROBLEM with OPTIMIZER while the learning rate grows exponentially "
                    "from --start to --end, one step per rate (Smith 2017); plot the loss "
                    "against the rate and suggest the rate where the smoothed loss falls "
                    "fastest.")
    parser.add_argument("problem", metavar="PROBLEM",
                        help="a registered problem (descentlab problems lists them)")
    parser.add_argument("optimizer", metavar="OPTIMIZER", help="a descentlab.optim name")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="another hyperparameter, e.g. --set momentum=0.9 (repeatable; "
                             "betas as --set betas=0.9,0.99)")
    parser.add_argument("--start", type=float, default=1e-7, help="(default: 1e-7)")
    parser.add_argument("--end", type=float, default=10.0, help="(default: 10)")
    parser.add_argument("--steps", type=int, default=100, help="(default: 100)")
    parser.add_argument("--seed", type=int, default=0, help="(default: 0)")
    parser.add_argument("--import", dest="imports", action="append", default=[],
                        metavar="MODULE_OR_FILE",
                        help="a module or .py file that registers problems (repeatable)")
    parser.add_argument("--out", default="descentlab-lr-find", metavar="DIR",
                        help="folder for the plot (default: descentlab-lr-find)")
    parser.add_argument("--json", metavar="FILE", help="also write the curve as JSON")
    parser.set_defaults(run=lr_find)

    parser = commands.add_parser(
        "problems", help="list the registered benchmark problems",
        description="List the problems sweeps and lr-find can name, with their metric, "
                    "target and budget.")
    parser.set_defaults(run=list_problems)
