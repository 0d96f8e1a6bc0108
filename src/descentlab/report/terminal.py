"""The tables printed on the terminal after a study or a sweep (and by ``descentlab report``)."""

from __future__ import annotations

import math

from rich.table import Table
from rich.text import Text

from ..experiments.analysis import ProblemResult
from .results import Results


def summary_table(results: Results) -> Table:
    table = Table(title="results (test split)", title_justify="left")
    for name, justify in (("study", "left"), ("optimizer", "left"), ("network", "left"),
                          ("lr", "right"), ("test acc", "right"), ("epochs to target", "right"),
                          ("wall s", "right"), ("status", "left"), ("at init", "left")):
        table.add_column(name, justify=justify)
    for run in results.runs:
        accuracy = (f"{100 * run.test_accuracy:.1f}%" if math.isfinite(run.test_accuracy)
                    else "—")
        # Text, not markup: names come from users and may hold [brackets]
        table.add_row(Text(run.study), Text(run.optimizer), Text(run.network), f"{run.lr:g}",
                      accuracy, str(run.epochs_to_target) if run.epochs_to_target else "—",
                      f"{run.wall_s:.1f}",
                      Text(run.status, style="" if run.status == "finished" else "red"),
                      Text(run.finding))
    return table


def ranking_table(sweep: str, problem: ProblemResult) -> Table:
    """One problem of a sweep: each optimizer's chosen lr and its results over the seeds."""
    table = Table(title=Text(f"{sweep}: {problem.name} ({problem.metric}, target "
                             f"{problem.target:.4g})"), title_justify="left")
    for column in ("optimizer", "lr", f"median {problem.metric}", "min – max", "at target",
                   "steps to target", "diverged"):
        table.add_column(Text(column))
    for entry in problem.entries:
        low, high = entry.spread
        lr = (entry.chosen or {}).get("lr", math.nan)
        steps = "—" if math.isinf(entry.steps_to_target) else f"{entry.steps_to_target:.0f}"
        # Text, not markup: labels come from users' configurations
        table.add_row(Text(entry.optimizer), f"{lr:.3g}", f"{entry.median:.4g}",
                      f"{low:.4g} – {high:.4g}", f"{entry.reached}/{len(entry.finals)}", steps,
                      f"{entry.diverged}/{len(entry.finals)}")
    return table
