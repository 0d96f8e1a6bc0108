"""The figures of a sweep's part of the report, and of ``descentlab lr-find`` (matplotlib, PNG
bytes, as ``figures``)."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from ..experiments.analysis import ProblemResult, SweepResult
from ..experiments.lrfind import RangeTest
from .figures import _png

TAUS = np.logspace(0, math.log10(20), 200)  # performance profile: τ from 1 to 20


def _log_metric(problem: ProblemResult) -> bool:
    """A metric to minimise (a loss) spans decades: draw it on a log scale."""
    return problem.goal == "min"


def _target_line(ax, problem: ProblemResult) -> None:
    ax.axhline(problem.target, color="0.4", linestyle="--", linewidth=1,
               label=f"target {problem.target:.3g}")


def sensitivity(problem: ProblemResult) -> bytes:
    """Each tuning trial's final validation metric against its learning rate; diverged
    trials as crosses along the bottom edge."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    finite = [r["final_metric"] for e in problem.entries for r in e.tuning
              if r["final_metric"] is not None]
    bottom = (min(finite) if finite else 1.0)
    if _log_metric(problem):
        ax.set_yscale("log")
        finite_positive = [v for v in finite if v > 0]
        bottom = min(finite_positive) / 2 if finite_positive else 1e-3
    for entry in problem.entries:
        ok = sorted((r["hparams"]["lr"], r["final_metric"]) for r in entry.tuning
                    if r["status"] == "finished" and r["final_metric"] is not None)
        line = ax.plot([x for x, _ in ok], [y for _, y in ok], marker="o",
                       label=entry.optimizer)[0]
        bad = [r["hparams"]["lr"] for r in entry.tuning if r["status"] != "finished"]
        if bad:
            ax.plot(bad, [bottom] * len(bad), linestyle="none", marker="x", markersize=8,
                    color=line.get_color())
    _target_line(ax, problem)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"final {problem.metric}")
    ax.set_title(f"{problem.name}: learning-rate sensitivity (tuning trials; × diverged)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def learning_curves(problem: ProblemResult) -> bytes:
    """The validation metric over steps: mean ± one standard deviation over the final seeds
    that finished."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for entry in problem.entries:
        curves = [r["curve"] for r in entry.finished() if r["curve"]]
        if not curves:
            continue
        steps = [point["step"] for point in curves[0]]
        length = min(len(c) for c in curves)
        values = np.array([[np.nan if p["metric"] is None else p["metric"] for p in c[:length]]
                           for c in curves])
        mean, std = values.mean(axis=0), values.std(axis=0)
        line = ax.plot(steps[:length], mean, label=f"{entry.optimizer} ({len(curves)} seeds)")[0]
        lower = mean - std
        if _log_metric(problem):  # a band below zero has no place on a log scale
            lower = np.where(lower > 0, lower, mean)
        ax.fill_between(steps[:length], lower, mean + std, alpha=0.2,
                        color=line.get_color())
    _target_line(ax, problem)
    if _log_metric(problem):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(problem.metric)
    ax.set_title(f"{problem.name}: mean ± std over seeds, chosen settings")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def performance_profile(sweep: SweepResult) -> bytes:
    """ρ(τ): the fraction of problems an optimizer solves within τ times the best median
    time to target."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for optimizer, fractions in sweep.profile(TAUS).items():
        ax.step(TAUS, fractions, where="post", label=optimizer)
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("τ (time to target / best time to target)")
    ax.set_ylabel("fraction of problems")
    ax.set_title(f"{sweep.name}: performance profile over {len(sweep.problems)} problems")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def range_test(test: RangeTest) -> bytes:
    """Loss against learning rate (log scale), the raw losses faint, the suggestion marked."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    ax.plot(test.lrs, test.losses, color="0.75", linewidth=0.8, label="loss per step")
    ax.plot(test.lrs, test.smoothed, label="smoothed")
    for value, style, name in ((test.suggestion, "-", "steepest descent"),
                               (test.minimum_over_10, ":", "minimum / 10")):
        if math.isfinite(value):
            ax.axvline(value, color="C3", linestyle=style, label=f"{name}: {value:.3g}")
    ax.set_xscale("log")
    positive = [v for v in test.smoothed if v > 0]
    if positive and max(positive) / min(positive) > 100:
        ax.set_yscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(f"learning-rate range test: {test.optimizer} on {test.problem}")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)
