"""The lab's subcommands: ``demo``, ``vanish``, ``report`` and ``trajectories``. Each parses its
arguments and calls the library; problems the user can fix end in a one-line message and exit
status 2."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A problem with the command's input: printed as one line, exit status 2."""


def check_json_target(path: str | None) -> None:
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not (os.path.isdir(folder) and os.access(folder, os.W_OK)):
        raise UsageError(f"cannot write --json {path}: {folder} is not a writable folder")


def stdout_console():
    """rich's console for stdout: a file or a pipe gets 160 columns, not 80."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=160)


def _print_results(results, report: Path | None) -> None:
    from .report.conclusion import conclude
    from .report.terminal import summary_table

    console = stdout_console()
    if results.runs:
        console.print(summary_table(results))
        for paragraph in conclude(results):
            console.print(paragraph, markup=False, highlight=False)
            console.print()
    for view in results.monitored:
        console.print(f"monitored {view.name}: {view.steps} steps ({view.status}); "
                      f"{view.message or 'the detector found nothing to report'}",
                      markup=False, highlight=False)
    if results.sweeps:
        from .cli_sweep import print_sweeps

        print_sweeps(results.sweeps)
    if report is not None:
        console.print(f"report: {report}", markup=False, highlight=False)


def _run(command: str, args: argparse.Namespace, work, title: str) -> int:
    """``work(store)`` into a fresh ``args.out``, then the report, the table and the JSON."""
    from .lab import Store
    from .lab.store import fresh_folder
    from .report import read_folder, write_report

    start = time.perf_counter()
    folder = fresh_folder(args.out, args.overwrite)
    try:
        with Store(folder) as store:
            work(store)
            if args.json:
                store.export_json(args.json)
    except KeyboardInterrupt:
        print(f"descentlab {command}: interrupted; the runs finished so far are in {folder} "
              f"(descentlab report {folder} renders them)", file=sys.stderr)
        return EXIT_INTERRUPTED
    results = read_folder(folder)
    report = None if args.no_report else write_report(folder, title, results)
    _print_results(results, report)
    print(f"{command} took {time.perf_counter() - start:.1f} s")
    return 0


def _studies(studies, splits, quiet: bool):
    """The work of running NumPy lab ``studies`` on ``splits``."""
    from .lab.study import run_study

    def work(store) -> None:
        for study in studies:
            run_study(study, splits, store, progress=not quiet)
    return work


def demo(args: argparse.Namespace) -> int:
    from .data import prepare
    from .lab import demo as plan

    check_json_target(args.json)
    size = plan.QUICK if args.quick else plan.FULL
    return _run("demo", args, _studies(plan.studies(size, args.seed),
                                       prepare("digits", seed=args.seed), args.quiet),
                "descentlab demo: vanishing gradients in a deep sigmoid network")


# vanish's options that only the NumPy backend takes, with their defaults
NUMPY_ONLY = {"dataset": "digits", "idx": None, "cifar10": None, "depth": [10],
              "width": [256], "activation": ["sigmoid"], "init": ["normal"], "init_std": 0.1,
              "arch": ["plain"], "dtype": "float32"}
TORCH_ONLY = {"tasks": None, "lengths": None}
# torch.lab.TASKS, named here so that --help works without torch (a test keeps them equal)
TORCH_TASKS = ["cnn-digits", "mlp-mnist1d", "rnn-adding"]


def _given(args: argparse.Namespace, options: dict) -> list[str]:
    return ["--" + name.replace("_", "-") for name in options
            if getattr(args, name) is not None]


def vanish(args: argparse.Namespace) -> int:
    check_json_target(args.json)
    if args.backend == "torch":
        return _vanish_torch(args)
    given = _given(args, TORCH_ONLY)
    if given:
        raise UsageError(f"only --backend torch takes {', '.join(given)}")
    for name, default in NUMPY_ONLY.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    from .data import load, prepare, read_cifar10, read_idx
    from .lab import vanish as grid

    if args.idx:
        data = read_idx(*args.idx)
    elif args.cifar10:
        data = read_cifar10(args.cifar10)
    else:
        data = load(args.dataset)
    specs = grid.networks(data, args.depth, args.width, args.activation, args.init,
                          args.init_std, args.arch, args.dtype)
    batch = 64 if args.batch_size is None else (None if args.batch_size == 0
                                                else args.batch_size)
    study = grid.study(args.name, specs, args.optimizers,
                       epochs=25 if args.epochs is None else args.epochs,
                       search_epochs=8 if args.search_epochs is None else args.search_epochs,
                       batch_size=batch, seed=args.seed, target_accuracy=args.target)
    return _run("vanish", args, _studies([study], prepare(data, seed=args.seed), args.quiet),
                f"descentlab vanish: {args.name} on {data.name}")


def _vanish_torch(args: argparse.Namespace) -> int:
    given = _given(args, NUMPY_ONLY)
    if given:
        raise UsageError(f"only --backend numpy takes {', '.join(given)} (the torch lab's "
                         f"networks and data are fixed per task: see --tasks)")
    try:
        from .torch import lab
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    from .lab.demo import choice

    if args.batch_size == 0:
        raise UsageError("--backend torch trains in mini-batches: give --batch-size of at "
                         "least 1")
    # an option not given keeps TorchStudy's default (epochs and batch size: the task's)
    given = {name: value for name, value in (
        ("epochs", args.epochs), ("search_epochs", args.search_epochs),
        ("batch_size", args.batch_size),
        ("lengths", tuple(args.lengths) if args.lengths else None)) if value is not None}
    studies = [lab.TorchStudy(task, [choice(o) for o in args.optimizers], seed=args.seed,
                              target=args.target, **given)
               for task in args.tasks or list(lab.TASKS)]

    def work(store) -> None:
        for study in studies:
            lab.run(study, store, progress=not args.quiet)

    return _run("vanish", args, work, f"descentlab vanish --backend torch: "
                                      f"{', '.join(s.task for s in studies)}")


def report(args: argparse.Namespace) -> int:
    from .report import read_folder, write_report

    results = read_folder(args.folder)
    _print_results(results, write_report(args.folder, args.title, results))
    return 0


def trajectories(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from . import trajectories as tr

    rates = {}
    for item in args.lr:
        label, _, value = item.partition("=")
        try:
            rates[label] = float(value)
        except ValueError:
            raise UsageError(f"--lr expects LABEL=RATE such as Adam=0.05, got {item!r}") \
                from None
    if args.steps < 1:
        raise UsageError(f"--steps must be at least 1, got {args.steps}")
    from .lab.store import writable_folder

    out = writable_folder(args.out)
    table = Table(title="final points", title_justify="left")
    for column in ("function", "optimizer", "lr", "steps", "f(final)", "distance to minimum",
                   "note"):
        table.add_column(column)
    for name in args.functions:
        function = tr.FUNCTIONS[name]
        paths = tr.descend_all(function, args.steps, rates, args.optimizers)
        written = [out / f"trajectories_{name}.png"]
        tr.png(function, paths, str(written[0]))
        if args.gif:
            written.append(out / f"trajectories_{name}.gif")
            tr.gif(function, paths, str(written[1]))
        for path in paths:
            distance = function.distance_to_minimum(path.points[-1])
            distance = "no minimum" if distance is None else f"{distance:.3g}"
            table.add_row(name, path.label, f"{path.lr:g}", str(len(path.points) - 1),
                          f"{path.values[-1]:.4g}", distance, path.stopped)
        print("wrote " + ", ".join(str(w) for w in written))
    Console().print(table)
    return 0


def _study_options(parser: argparse.ArgumentParser, default_out: str) -> None:
    parser.add_argument("--out", default=default_out, metavar="DIR",
                        help=f"output folder for results.sqlite and report.html (default: "
                             f"{default_out})")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the results already in --out (refused otherwise)")
    parser.add_argument("--json", metavar="FILE",
                        help="also export every run (configuration, per-epoch metrics, "
                             "per-layer statistics) as JSON to FILE")
    parser.add_argument("--no-report", action="store_true", help="do not write report.html")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--seed", type=int, default=0,
                        help="data split, initial weights and batch order (default: 0)")


def add_commands(commands) -> None:
    from .data import BUILT_IN
    from .lab.vanish import ARCHITECTURES
    from .nn import ACTIVATIONS, INITS
    from .trajectories import FUNCTIONS, OPTIMIZERS

    parser = commands.add_parser(
        "demo", help="the vanishing-gradient study on digits, with its report",
        description="Train a 10-hidden-layer sigmoid network on scikit-learn's digits with GD, "
                    "SGD, SGD with momentum, AdaGrad, RMSprop, Adadelta and Adam (each "
                    "learning rate chosen on the validation split), then the same depth with "
                    "ReLU + He initialisation, residual connections and layer normalisation. "
                    "Prints a summary and writes report.html. About a minute on 2 cores; "
                    "--quick: a smaller version in about 15 s.")
    parser.add_argument("--quick", action="store_true",
                        help="narrower network (128 units), fewer epochs")
    _study_options(parser, "descentlab-demo")
    parser.set_defaults(run=demo)

    parser = commands.add_parser(
        "vanish", help="a study over networks x optimizers, with per-layer diagnostics",
        description="Train every combination of depth, width, activation, initialisation and "
                    "architecture with every optimizer. Each optimizer's learning rate is "
                    "chosen by a short search over a grid of three decades on the validation "
                    "split; all runs share the data split, the initial weights and the batch "
                    "order. Results go to DIR/results.sqlite as the runs go; DIR/report.html "
                    "shows them.")
    parser.add_argument("--backend", choices=("numpy", "torch"), default="numpy",
                        help="numpy: descentlab's own MLPs over the grid below (default); "
                             "torch: the torch lab's tasks (needs the 'torch' extra)")
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--dataset", choices=list(BUILT_IN),
                      help="a built-in dataset (default: digits)")
    data.add_argument("--idx", nargs=2, metavar=("IMAGES", "LABELS"),
                      help="MNIST / Fashion-MNIST IDX files you have (gzipped or not)")
    data.add_argument("--cifar10", nargs="+", metavar="BATCH",
                      help="CIFAR-10 binary batch files you have")
    parser.add_argument("--name", default="vanish", help="the study's name (default: vanish)")
    parser.add_argument("--depth", type=int, nargs="+",
                        help="hidden layers (default: 10)")
    parser.add_argument("--width", type=int, nargs="+",
                        help="units per hidden layer (default: 256)")
    parser.add_argument("--activation", nargs="+", choices=list(ACTIVATIONS),
                        help="(default: sigmoid)")
    parser.add_argument("--init", nargs="+", choices=list(INITS), help="(default: normal)")
    parser.add_argument("--init-std", type=float,
                        help="standard deviation of init 'normal' (default: 0.1)")
    parser.add_argument("--arch", nargs="+", choices=list(ARCHITECTURES),
                        help="architecture options (default: plain)")
    parser.add_argument("--tasks", nargs="+", choices=TORCH_TASKS,
                        help="--backend torch: cnn-digits (a small CNN on digits, sigmoid "
                             "and relu), mlp-mnist1d (a 3x256 MLP, sigmoid and relu), "
                             "rnn-adding (a tanh RNN and an LSTM on the adding problem) "
                             "(default: all)")
    parser.add_argument("--lengths", type=int, nargs="+", metavar="T",
                        help="--backend torch, rnn-adding: sequence lengths "
                             "(default: 10 25 50 100 200)")
    parser.add_argument("--optimizers", nargs="+", default=["SGD+momentum", "Adam"],
                        metavar="NAME",
                        help="the demo's labels (GD, SGD, SGD+momentum, AdaGrad, RMSprop, "
                             "Adadelta, Adam) or any descentlab.optim name (default: "
                             "SGD+momentum Adam)")
    parser.add_argument("--epochs", type=int,
                        help="(default: 25; --backend torch: cnn-digits 15, mlp-mnist1d 20, "
                             "rnn-adding 6)")
    parser.add_argument("--search-epochs", type=int,
                        help="epochs of each learning-rate search run (default: 8; "
                             "--backend torch: 3)")
    parser.add_argument("--batch-size", type=int,
                        help="mini-batch size; 0 for full-batch gradient descent (default: 64)")
    parser.add_argument("--target", type=float, default=0.9,
                        help="validation accuracy for 'epochs to target' (default: 0.9)")
    parser.add_argument("--dtype", choices=("float32", "float64"), help="(default: float32)")
    _study_options(parser, "descentlab-vanish")
    parser.set_defaults(run=vanish)

    parser = commands.add_parser(
        "report", help="re-render report.html from a results folder",
        description="Render DIR/report.html from DIR/results.sqlite (written by demo, "
                    "vanish or sweep) and print the summary.")
    parser.add_argument("folder", metavar="DIR")
    parser.add_argument("--title", default="descentlab report")
    parser.set_defaults(run=report)

    parser = commands.add_parser(
        "trajectories", help="optimizers' paths on 2-D test functions (PNG, GIF)",
        description="Run SGD, SGD with momentum, AdaGrad, RMSprop, Adadelta and Adam on "
                    "Rosenbrock, Beale, a saddle and an ill-conditioned quadratic, and draw "
                    "their paths over contour plots.")
    parser.add_argument("--functions", nargs="+", default=list(FUNCTIONS),
                        choices=list(FUNCTIONS), help="(default: all)")
    parser.add_argument("--optimizers", nargs="+", choices=[o[0] for o in OPTIMIZERS],
                        metavar="LABEL", help="(default: all of "
                        + ", ".join(o[0] for o in OPTIMIZERS) + ")")
    parser.add_argument("--steps", type=int, default=500, help="(default: 500)")
    parser.add_argument("--lr", action="append", default=[], metavar="LABEL=RATE",
                        help="override a learning rate, e.g. --lr Adam=0.1 (repeatable)")
    parser.add_argument("--gif", action="store_true", help="also write animated GIFs")
    parser.add_argument("--out", default="descentlab-trajectories", metavar="DIR",
                        help="output folder (default: descentlab-trajectories)")
    parser.set_defaults(run=trajectories)
