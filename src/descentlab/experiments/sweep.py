"""The sweep protocol and its driver.

For every problem and optimizer of a ``SweepConfig``:

1. **tune**: ``trials`` settings from the optimizer's search space (quasi-random, see
   ``space``), each trained once from the tuning seed ``seed``;
2. **choose** the setting with the best final validation metric (a diverged or failed trial is
   never chosen; ties go to the earlier trial);
3. **final**: rerun the chosen setting from seeds ``seed + 1`` ... ``seed + seeds``.

This is the protocol of DeepOBS (Schneider et al. 2019) and "Descending through a Crowded
Valley" (Schmidt et al. 2021): tune on validation, then report the spread over seeds.

The driver is the only process that writes the store. Each run's row is inserted when it is
handed to a worker (at most as many as the pool has workers) and completed with its curve in
one transaction when it returns. Rerunning the same sweep into the same folder keeps every
finished or diverged run, redoes the rest, and gives the same database as an uninterrupted
sweep: a run's results depend only on its task, never on when or where it ran.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import problems as registry
from ..lab.store import Store, fresh_folder, writable_folder
from .config import OptimizerSpec, SweepConfig
from .runner import Outcome, Task


@dataclass(frozen=True)
class Planned:
    """One run of the sweep, before it runs."""

    key: str
    problem: str
    optimizer: OptimizerSpec
    phase: str  # "tune" or "final"
    trial: int  # the tuning trial, or the final repeat (from 1)
    seed: int
    setting: dict[str, Any]

    def task(self, imports: tuple[str, ...]) -> Task:
        return Task(self.problem, self.optimizer.name, self.optimizer.kwargs(self.setting),
                    self.seed, imports)


def tuning_runs(config: SweepConfig, problem: str, spec: OptimizerSpec) -> list[Planned]:
    settings = spec.space.trials(config.trials, config.seed)
    return [Planned(f"{problem}|{spec.label}|tune|{i}", problem, spec, "tune", i, config.seed,
                    setting) for i, setting in enumerate(settings, start=1)]


def final_runs(config: SweepConfig, problem: str, spec: OptimizerSpec,
               setting: dict[str, Any]) -> list[Planned]:
    return [Planned(f"{problem}|{spec.label}|final|{k}", problem, spec, "final", k,
                    config.seed + k, setting) for k in range(1, config.seeds + 1)]


def choose(rows: list[dict[str, Any]], goal: str) -> dict[str, Any] | None:
    """The tuning row with the best final metric (None when every trial diverged or failed)."""
    usable = [r for r in rows if r["status"] == "finished" and r["final_metric"] is not None]
    if not usable:
        return None
    sign = -1.0 if goal == "max" else 1.0
    return min(usable, key=lambda r: (sign * r["final_metric"], r["trial"]))


@dataclass
class SweepSummary:
    folder: Path
    total: int  # runs in the sweep (finals counted only for optimizers with a usable setting)
    kept: int  # finished before this call (resumed)
    ran: int
    failed: list[str]  # "key: message" of runs that raised


class _Plan:
    """The runs still to do, grouped so that a pair's finals follow its tuning."""

    def __init__(self, config: SweepConfig, store: Store) -> None:
        self.config, self.store = config, store
        self.done = {r["key"]: r for r in store.sweep_runs(config.name)}
        self.queue: deque[Planned] = deque()
        self.tuning: dict[tuple[str, str], list[Planned]] = {}
        self.total = 0
        for problem in config.problems:
            for spec in config.optimizers:
                runs = tuning_runs(config, problem, spec)
                self.tuning[problem, spec.label] = runs
                self.total += len(runs) + config.seeds
                self.queue.extend(r for r in runs if r.key not in self.done)
                self.finals_if_tuned(problem, spec)

    def finals_if_tuned(self, problem: str, spec: OptimizerSpec) -> None:
        """Queue the pair's finals once all its tuning runs are done (and drop them from the
        total when no setting is usable)."""
        runs = self.tuning[problem, spec.label]
        if not all(r.key in self.done for r in runs):
            return
        rows = [{**self.done[r.key], "trial": r.trial} for r in runs]
        best = choose(rows, registry.get(problem).goal)
        if best is None:
            self.total -= self.config.seeds
            return
        setting = runs[best["trial"] - 1].setting
        self.queue.extend(r for r in final_runs(self.config, problem, spec, setting)
                          if r.key not in self.done)


def run_sweep(config: SweepConfig, folder: str | Path, *, workers: int | None = None,
              ray: str | None = None, overwrite: bool = False, progress=None) -> SweepSummary:
    """Run (or resume) ``config`` into ``folder``'s results store.

    ``workers``: local processes (default: the cores); ``ray``: a Ray cluster address instead.
    ``progress``: a ``rich.progress.Progress`` to show runs done, total and ETA on.
    """
    from .pools import LocalPool, RayPool, cores

    folder = fresh_folder(folder, overwrite=True) if overwrite else writable_folder(folder)
    problems = {name: registry.get(name).describe() for name in config.problems}
    with Store(folder) as store:
        store.open_sweep(config.name, config.as_dict(), problems)
        plan = _Plan(config, store)
        kept = len(plan.done)
        task = None
        if progress is not None:
            task = progress.add_task(config.name, total=plan.total, completed=kept)
        summary = SweepSummary(folder, plan.total, kept, 0, [])
        if not plan.queue:
            return summary
        pool = RayPool(ray) if ray else LocalPool(workers if workers is not None else cores())
        in_flight: dict[Any, tuple[Planned, int]] = {}
        try:
            while plan.queue or in_flight:
                while plan.queue and len(in_flight) < pool.capacity:
                    planned = plan.queue.popleft()
                    run_id = store.start_sweep_run(
                        config.name, planned.key, planned.problem, planned.optimizer.label,
                        planned.phase, planned.trial, planned.seed,
                        _jsonable(planned.optimizer.kwargs(planned.setting)))
                    in_flight[pool.submit(planned.task(config.imports))] = (planned, run_id)
                for handle in pool.wait_any(list(in_flight)):
                    planned, run_id = in_flight.pop(handle)
                    outcome: Outcome = pool.result(handle)
                    result = asdict(outcome)
                    curve = result.pop("curve")
                    store.finish_sweep_run(run_id, outcome.status, result, curve)
                    summary.ran += 1
                    if outcome.status == "failed":
                        summary.failed.append(f"{planned.key}: {outcome.message}")
                    plan.done[planned.key] = {**result, "status": outcome.status}
                    if planned.phase == "tune":
                        plan.finals_if_tuned(planned.problem, planned.optimizer)
                    if progress is not None:
                        progress.update(task, total=plan.total, advance=1)
        except BaseException:
            pool.close(cancel=True)
            raise
        pool.close()
        summary.total = plan.total
    return summary


def _jsonable(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The constructor arguments as the store reads them back (tuples become lists)."""
    return json.loads(json.dumps(kwargs))
