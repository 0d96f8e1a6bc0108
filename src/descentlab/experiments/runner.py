"""One run of a sweep: a problem trained with one optimizer setting from one seed.

``execute(task)`` is what a worker process (or a Ray task) calls: it depends only on the task,
runs on one thread (BLAS and Numba alike), and returns everything the driver records, so that
the same task gives bit-identical metrics whichever worker, pool or machine runs it.
Parallelism comes from running several tasks at once, never from threads inside one.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
import time
import traceback
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import optim, problems
from ..problems import Problem


@dataclass(frozen=True)
class Task:
    """What a worker needs: names and numbers only, so that it pickles small and the same."""

    problem: str
    optimizer: str  # a descentlab.optim name
    kwargs: dict[str, Any]
    seed: int
    imports: tuple[str, ...] = ()


@dataclass
class Outcome:
    """What a run produced. ``status``: "finished", "diverged" (a non-finite loss, gradient
    or validation metric stopped it) or "failed" (an exception; ``message`` says which).
    ``curve``: (step, mean training loss since the last evaluation, validation metric,
    training seconds so far); step 0 is the initial parameters."""

    status: str
    steps: int = 0
    final_metric: float = math.nan
    best_metric: float = math.nan
    train_loss: float = math.nan
    test_metric: float = math.nan
    steps_to_target: int | None = None
    time_to_target: float | None = None
    wall_s: float = 0.0
    message: str = ""
    curve: list[tuple[int, float, float, float]] = field(default_factory=list)


def resolve_import(item: str, base: Path | None = None) -> str:
    """A module name as it is; a .py file as an absolute path (a relative one taken from
    ``base``, or from the working folder), so that workers elsewhere find the same file."""
    if not item.endswith(".py"):
        return item
    path = Path(item)
    if not path.is_absolute() and base is not None:
        path = base / path
    return str(path.resolve())


def import_problems(imports: tuple[str, ...]) -> None:
    """Import modules (by name) or files (paths ending in .py) that register problems; each
    only once per process."""
    for item in imports:
        if item.endswith(".py"):
            module_name = f"descentlab_user_{zlib.crc32(item.encode()):08x}"
            if module_name in sys.modules:
                continue
            spec = importlib.util.spec_from_file_location(module_name, item)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot import {item}: no such Python file")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except FileNotFoundError:
                del sys.modules[module_name]
                raise ImportError(f"cannot import {item}: no such file") from None
            except Exception as exc:
                del sys.modules[module_name]
                raise ImportError(f"importing {item} raised {type(exc).__name__}: {exc}") \
                    from exc
        else:
            try:
                importlib.import_module(item)
            except ImportError as exc:
                raise ImportError(f"cannot import module {item!r}: {exc}") from None


def execute(task: Task) -> Outcome:
    """Run ``task`` on one thread; an exception becomes a "failed" outcome."""
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(1)
    start = time.perf_counter()
    try:
        with threadpool_limits(1):
            import_problems(task.imports)
            problem = problems.get(task.problem)
            return train(problem, optim.OPTIMIZERS[task.optimizer], task.kwargs, task.seed)
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return Outcome("failed", wall_s=time.perf_counter() - start,
                       message=f"{type(exc).__name__}: {exc} ({where.filename}:{where.lineno})")


def batches(problem: Problem, seed: int):
    """Training rows for each step: a fresh permutation of the examples every epoch, drawn
    from ``seed`` (None for each step of a problem without examples)."""
    if problem.examples is None:
        while True:
            yield None
    # a stream of its own, so that the batch order does not depend on how setup used the seed
    rng = np.random.default_rng([seed, 1])
    while True:
        order = rng.permutation(problem.examples)
        for start in range(0, problem.examples, problem.batch):
            yield order[start:start + problem.batch]


def train(problem: Problem, optimizer_cls, kwargs: dict[str, Any], seed: int) -> Outcome:
    """Train ``problem``'s model from ``seed`` with ``optimizer_cls(**kwargs)`` for its budget.

    Evaluation runs every ``problem.evaluation_interval`` steps and after the last; time- and
    steps-to-target are taken at the first evaluation that meets the target, and the time
    counts training steps only, not evaluations (as AlgoPerf does).
    """
    wall = time.perf_counter()
    model = problem.setup(seed)
    optimizer = optimizer_cls(model.params, **kwargs)
    outcome = Outcome("finished")
    trained = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        metric = float(model.evaluate())
        outcome.curve.append((0, math.nan, metric, 0.0))
        outcome.best_metric = metric
        losses: list[float] = []
        rows = batches(problem, seed)
        for step in range(1, problem.total_steps + 1):
            tick = time.perf_counter()
            loss, grads = model.loss_and_grad(next(rows))
            loss = float(loss)
            if not math.isfinite(loss):
                outcome.status, outcome.message = "diverged", f"loss {loss} at step {step}"
                break
            try:
                optimizer.step(list(grads))
            except FloatingPointError as exc:  # a non-finite gradient, before any change
                outcome.status, outcome.message = "diverged", f"step {step}: {exc}"
                break
            trained += time.perf_counter() - tick
            losses.append(loss)
            outcome.steps = step
            if step % problem.evaluation_interval and step != problem.total_steps:
                continue
            metric = float(model.evaluate())
            outcome.curve.append((step, float(np.mean(losses)), metric, trained))
            losses = []
            if not math.isfinite(metric):
                outcome.status = "diverged"
                outcome.message = f"validation metric {metric} at step {step}"
                break
            if problem.better(metric, outcome.best_metric):
                outcome.best_metric = metric
            if outcome.steps_to_target is None and problem.reached(metric):
                outcome.steps_to_target, outcome.time_to_target = step, trained
        if outcome.status == "finished":
            last = outcome.curve[-1]
            outcome.final_metric, outcome.train_loss = last[2], last[1]
            if model.test is not None:
                outcome.test_metric = float(model.test())
    outcome.wall_s = time.perf_counter() - wall
    return outcome
