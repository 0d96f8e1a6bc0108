"""The summary table printed on the terminal after a study (and by ``descentlab report``)."""

from __future__ import annotations

import math

from rich.table import Table
from rich.text import Text

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
