"""What a sweep found, read from the results store alone: per problem a ranking of the
optimizers over their final seeds, their sensitivity to the learning rate, a recommendation
worded from the numbers; across problems, the performance profile.

The performance profile (Dolan & Moré 2002), as AlgoPerf scores submissions: for optimizer o,
ρ_o(τ) is the fraction of the problems on which o's median time to the target is within a
factor τ of the fastest optimizer's. A problem no seed of o solved counts as not within any τ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..lab.store import Store


def _num(value) -> float:
    return math.nan if value is None else float(value)


@dataclass
class Entry:
    """One optimizer on one problem."""

    optimizer: str
    tuning: list[dict[str, Any]]  # rows of the tuning runs, in trial order
    chosen: dict[str, Any] | None  # the hyperparameters of the best tuning trial
    finals: list[dict[str, Any]]  # rows of the final runs, each with its "curve"
    goal: str
    target: float

    def finished(self) -> list[dict[str, Any]]:
        return [r for r in self.finals if r["status"] == "finished"]

    @property
    def metrics(self) -> np.ndarray:
        return np.array([_num(r["final_metric"]) for r in self.finished()])

    @property
    def median(self) -> float:
        return float(np.median(self.metrics)) if len(self.metrics) else math.nan

    @property
    def spread(self) -> tuple[float, float]:
        if not len(self.metrics):
            return math.nan, math.nan
        return float(self.metrics.min()), float(self.metrics.max())

    @property
    def diverged(self) -> int:
        return sum(r["status"] == "diverged" for r in self.finals)

    def _to_target(self, key: str) -> float:
        """The median over the final seeds of ``key`` (a seed that never reached the target,
        or diverged, counts as infinitely slow)."""
        if not self.finals:
            return math.inf
        values = [math.inf if r[key] is None else float(r[key]) for r in self.finals]
        return float(np.median(values))

    @property
    def time_to_target(self) -> float:
        return self._to_target("time_to_target")

    @property
    def steps_to_target(self) -> float:
        return self._to_target("steps_to_target")

    @property
    def reached(self) -> int:
        return sum(r["steps_to_target"] is not None for r in self.finals)

    def sensitivity(self) -> tuple[int, int, tuple[float, float] | None]:
        """(tuning trials that reached the target, trials, the span of learning rates that
        did, or None)."""
        good = [r for r in self.tuning if r["steps_to_target"] is not None]
        rates = [r["hparams"]["lr"] for r in good if "lr" in r["hparams"]]
        span = (min(rates), max(rates)) if rates else None
        return len(good), len(self.tuning), span

    def order_key(self) -> tuple[float, float]:
        """Best first: by median final metric, then by median time to target."""
        median = self.median
        if not math.isfinite(median):
            return (math.inf, math.inf)
        return (-median if self.goal == "max" else median, self.time_to_target)


@dataclass
class ProblemResult:
    name: str
    info: dict[str, Any]  # the problem's metric, goal, target, budget, description
    entries: list[Entry]  # best first

    @property
    def metric(self) -> str:
        return self.info["metric"]

    @property
    def goal(self) -> str:
        return self.info["goal"]

    @property
    def target(self) -> float:
        return float(self.info["target"])


@dataclass
class SweepResult:
    name: str
    config: dict[str, Any]
    problems: list[ProblemResult]
    unfinished: int = 0  # runs still "running" (an interrupted sweep)
    optimizers: list[str] = field(default_factory=list)

    def profile(self, taus: np.ndarray) -> dict[str, np.ndarray]:
        """ρ_o(τ) for each optimizer at each τ in ``taus``."""
        times = {o: [] for o in self.optimizers}
        for problem in self.problems:
            by_label = {e.optimizer: e.time_to_target for e in problem.entries}
            best = min(by_label.values(), default=math.inf)
            for o in self.optimizers:
                t = by_label.get(o, math.inf)
                times[o].append(t / best if math.isfinite(best) and best > 0 else math.inf)
        count = max(len(self.problems), 1)
        return {o: np.array([sum(r <= tau for r in ratios) / count for tau in taus])
                for o, ratios in times.items()}


def read_sweeps(store: Store) -> list[SweepResult]:
    """Every sweep in ``store``, analysed."""
    results = []
    for sweep in store.sweeps():
        rows = store.sweep_runs(sweep["name"])
        unfinished = sum(r["status"] == "running" for r in rows)
        labels = list(sweep["config"]["optimizers"])
        problems = []
        for name in sweep["config"]["problems"]:
            info = sweep["problems"][name]
            entries = []
            for label in labels:
                mine = [r for r in rows if r["problem"] == name and r["optimizer"] == label]
                tuning = sorted((r for r in mine if r["phase"] == "tune"),
                                key=lambda r: r["trial"])
                finals = sorted((r for r in mine if r["phase"] == "final" and
                                 r["status"] != "running"), key=lambda r: r["trial"])
                for r in finals:
                    r["curve"] = store.sweep_curve(r["id"])
                tuning = [r for r in tuning if r["status"] != "running"]
                chosen = finals[0]["hparams"] if finals else None
                entries.append(Entry(label, tuning, chosen, finals, info["goal"],
                                     float(info["target"])))
            entries.sort(key=Entry.order_key)
            problems.append(ProblemResult(name, info, entries))
        results.append(SweepResult(sweep["name"], sweep["config"], problems, unfinished,
                                   labels))
    return results


def _fmt(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else "—"


def _seconds(x: float) -> str:
    return f"{x:.2g} s"


def recommend(problem: ProblemResult) -> str:
    """A paragraph: the best optimizer, how close the others came, how sensitive each is to
    its learning rate. Every number in it is read from the runs."""
    ranked = [e for e in problem.entries if math.isfinite(e.median)]
    if not ranked:
        return (f"On {problem.name} no optimizer produced a usable result: every tuning trial "
                "diverged or failed.")
    best = ranked[0]
    low, high = best.spread
    seeds = len(best.finished())
    text = [f"On {problem.name}, {best.optimizer} did best: median {problem.metric} "
            f"{_fmt(best.median)} ({_fmt(low)}–{_fmt(high)} over {seeds} seed"
            f"{'s' if seeds != 1 else ''}, lr {_fmt(best.chosen.get('lr', math.nan))})."]
    if best.reached and math.isfinite(best.steps_to_target):
        text.append(f"It reached the target {_fmt(problem.target)} with {best.reached} of "
                    f"{len(best.finals)} seeds, in a median {_fmt(best.steps_to_target)} "
                    f"steps ({_seconds(best.time_to_target)}).")
    elif best.reached:
        text.append(f"Only {best.reached} of its {len(best.finals)} seeds reached the target "
                    f"{_fmt(problem.target)}, too few for a median time to it.")
    else:
        text.append(f"No seed of it reached the target {_fmt(problem.target)}.")
    others = []
    for entry in ranked[1:]:
        if problem.goal == "max":
            gap = f"{_fmt(best.median - entry.median)} lower"
        elif best.median > 0:
            gap = f"{entry.median / best.median:.3g}x higher"
        else:
            gap = f"{_fmt(entry.median - best.median)} higher"
        overlap = entry.spread[1] >= low if problem.goal == "max" else entry.spread[0] <= high
        others.append(f"{entry.optimizer} {gap} ({_fmt(entry.median)}"
                      + (", within the best's spread over seeds" if overlap else "") + ")")
    if others:
        text.append("The others: " + "; ".join(others) + ".")
    failed = [e.optimizer for e in problem.entries if not math.isfinite(e.median)]
    if failed:
        text.append(f"Without a usable setting (every tuning trial or final seed diverged): "
                    f"{', '.join(failed)}.")
    sensitivity = []
    for entry in problem.entries:
        good, trials, span = entry.sensitivity()
        part = f"{entry.optimizer} {good} of {trials}"
        if span is not None and span[0] != span[1]:
            part += f" (lr {_fmt(span[0])} to {_fmt(span[1])}, " \
                    f"{math.log10(span[1] / span[0]):.1f} decades)"
        elif span is not None:
            part += f" (lr {_fmt(span[0])} only)"
        sensitivity.append(part)
    text.append("Learning-rate sensitivity, as tuning trials that reached the target: "
                + "; ".join(sensitivity) + ". More trials over a wider span of rates means "
                "an optimizer that is easier to tune.")
    return " ".join(text)
