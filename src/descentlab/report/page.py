"""``report.html``: one self-contained page (figures embedded as data: URIs, no scripts, nothing
fetched) rendered with Jinja2 from what the results store holds.

Every string that reaches the page (study, optimizer and network names, messages) goes
through Jinja2's autoescaping; the page's Content-Security-Policy forbids scripts and any
request besides its own data: images as a second line of defence.
"""

from __future__ import annotations

import base64
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np

from .. import __version__
from ..atomic import write_atomically
from ..experiments.analysis import ProblemResult, SweepResult, recommend
from ..lab.store import FILENAME
from . import figures, monitor_figures, sweep_figures
from .conclusion import conclude
from .results import Results, Run, read_folder

REPORT = "report.html"


@dataclass
class Figure:
    png: str  # base64
    alt: str
    caption: str


@dataclass
class Section:
    heading: str
    anchor: str
    figures: list[Figure] = field(default_factory=list)
    text: str = ""


def _figure(png: bytes, alt: str, caption: str) -> Figure:
    return Figure(base64.b64encode(png).decode("ascii"), alt, caption)


def _fmt(x: float, spec: str, missing: str = "—") -> str:
    return format(x, spec) if isinstance(x, (int, float)) and math.isfinite(x) else missing


def _row(run: Run) -> dict[str, str]:
    tried = ", ".join(f"{lr:g} ({_fmt(acc, '.2f', 'diverged')})"
                      for lr, acc, *_ in run.lr_search if lr is not None)
    return {
        "study": run.study, "optimizer": run.optimizer, "network": run.network,
        "lr": _fmt(run.lr, "g"), "tried": tried,
        "test_accuracy": _fmt(run.test_accuracy * 100, ".1f") + ("%" if math.isfinite(
            run.test_accuracy) else ""),
        "epochs_to_target": str(run.epochs_to_target) if run.epochs_to_target else "not reached",
        "wall": _fmt(run.wall_s, ".1f") + " s", "status": run.status,
        "finding": run.finding or "—",
    }


# each study's figures: how to draw it, its title, its caption
_STUDY_FIGURES = (
    (figures.learning_curves, "learning curves",
     "Training loss (mean over each epoch's batches) and validation accuracy after each "
     "epoch."),
    (figures.update_ratios, "update-to-weight ratio per layer",
     "How much one step changes each layer's weights relative to their size (the median over "
     "the epochs of each epoch's last step). Around 1e-3 is the usual rule of thumb for a "
     "layer that learns; far below it, the layer hardly moves."),
    (figures.gradient_heatmaps, "gradient norm per layer over training",
     "Each layer's gradient norm (the mean over the epoch's steps) at every epoch; epoch 0 is "
     "initialisation."),
)


_MODULES_CAPTION = (
    "What descentlab.torch.GradientMonitor recorded every few steps: each module's gradient "
    "norm (input side at the bottom), the update-to-weight ratio of the modules with "
    "parameters, and, for activation modules, the fraction of saturated outputs (sigmoid, "
    "tanh) or dead units (relu family).")


def _recurrent_figures(runs: list[Run], study: str) -> list[Figure]:
    """A recurrent study's gradient through time and accuracy against sequence length."""
    if not any(run.timesteps for run in runs):
        return []
    return [
        _figure(monitor_figures.gradient_through_time(runs, f"{study}: gradient through time"),
                f"gradient norm per time step of study {study}",
                "The norm of the loss's gradient with respect to each time step's hidden "
                "state, on a validation batch. The loss is taken after the last step, so a "
                "line that falls towards t = 1 is the gradient vanishing through time: the "
                "network cannot learn what the early steps hold."),
        _figure(monitor_figures.accuracy_by_length(runs, f"{study}: accuracy by length"),
                f"accuracy against sequence length of study {study}",
                "Test accuracy after training against the sequence length (a prediction "
                "counts as correct within 0.04 of the target, Hochreiter & Schmidhuber's "
                "criterion for the adding problem); the dotted line is what predicting the "
                "mean achieves.")]


def _sections(results: Results) -> list[Section]:
    sections = []
    if results.runs:
        sections.append(Section("Gradients at initialisation", "initialisation", [_figure(
            figures.initial_profile(results.runs), "gradient norm per layer at initialisation",
            "The norm of each layer's weight gradient on the whole training split, before "
            "any step. A line that falls towards layer 1 is the vanishing gradient.")]))
    for number, study in enumerate(results.studies(), start=1):
        runs = results.of(study)
        monitored = [(run, run.monitored()) for run in runs if run.modules]
        sections.append(Section(f"Study “{study}”", f"study-{number}", [
            *(_figure(draw(runs, f"{study}: {title}"), f"{title} of study {study}", caption)
              for draw, title, caption in _STUDY_FIGURES),
            *_recurrent_figures(runs, study),
            *(_figure(monitor_figures.modules(view, f"{study}: {run.label}"),
                      f"module statistics of {run.label}", _MODULES_CAPTION)
              for run, view in monitored)]))
    for number, view in enumerate(results.monitored, start=1):
        recorded = f"every {view.every} steps" if view.every else ""
        status = f"{view.steps} steps, {view.status}" if view.steps is not None else view.status
        sections.append(Section(
            f"Monitored model “{view.name}”", f"monitor-{number}",
            [_figure(monitor_figures.modules(view, view.name),
                     f"module statistics of {view.name}", _MODULES_CAPTION)],
            text=f"{status}; recorded {recorded}. "
                 f"{view.message or 'The detector found nothing to report.'}"))
    return sections


def _ranking_row(problem: ProblemResult, entry) -> dict[str, str]:
    low, high = entry.spread
    setting = ", ".join(f"{k}={_fmt(v, 'g') if isinstance(v, float) else v}"
                        for k, v in (entry.chosen or {}).items())
    return {"optimizer": entry.optimizer, "setting": setting or "—",
            "median": _fmt(entry.median, ".4g"),
            "spread": f"{_fmt(low, '.4g')} – {_fmt(high, '.4g')}",
            "reached": f"{entry.reached} / {len(entry.finals)}",
            "steps": _fmt(entry.steps_to_target, ".0f", "not reached"),
            "time": _fmt(entry.time_to_target, ".3g", "not reached"),
            "diverged": f"{entry.diverged} / {len(entry.finals)} final, "
                        f"{sum(r['status'] == 'diverged' for r in entry.tuning)} / "
                        f"{len(entry.tuning)} tuning"}


# the profile table's columns: ρ(τ) at these τ
PROFILE_TAUS = (1.0, 1.5, 2.0, 5.0)


def _sweep_view(sweep: SweepResult, number: int) -> dict:
    problems = []
    for index, problem in enumerate(sweep.problems, start=1):
        problems.append({
            "name": problem.name, "anchor": f"sweep-{number}-{index}",
            "description": problem.info.get("description", ""), "metric": problem.metric,
            "goal": "higher is better" if problem.goal == "max" else "lower is better",
            "target": _fmt(problem.target, ".4g"),
            "rows": [_ranking_row(problem, e) for e in problem.entries],
            "recommendation": recommend(problem),
            "figures": [
                _figure(sweep_figures.learning_curves(problem),
                        f"learning curves on {problem.name}",
                        "The validation metric of the chosen setting over the steps: the mean "
                        "over the final seeds that finished, ± one standard deviation."),
                _figure(sweep_figures.sensitivity(problem),
                        f"learning-rate sensitivity on {problem.name}",
                        "Every tuning trial's final validation metric against its learning "
                        "rate; crosses along the bottom are trials that diverged."),
            ]})
    fractions = sweep.profile(np.array(PROFILE_TAUS))
    return {
        "name": sweep.name, "anchor": f"sweep-{number}", "problems": problems,
        "trials": sweep.config.get("trials"), "seeds": sweep.config.get("seeds"),
        "unfinished": sweep.unfinished,
        "profile_taus": [f"{t:g}" for t in PROFILE_TAUS],
        "profile_rows": [{"optimizer": o, "values": [f"{v:.2f}" for v in fractions[o]]}
                         for o in sweep.optimizers],
        "profile": _figure(sweep_figures.performance_profile(sweep),
                           f"performance profile of sweep {sweep.name}",
                           "For each optimizer, the fraction of the problems on which its "
                           "median time to the target (over the final seeds) is within a "
                           "factor τ of the fastest optimizer's; higher and further left is "
                           "better (AlgoPerf's score integrates this curve)."),
    }


def render(results: Results, title: str = "descentlab report") -> str:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("descentlab.report", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined)
    targets = {r.target_accuracy for r in results.runs if r.target_accuracy is not None}
    target_label = (f"{100 * targets.pop():g}% validation accuracy" if len(targets) == 1
                    else "the target")
    return environment.get_template("report.html.j2").render(
        title=title, runs=results.runs, search_runs=results.search_runs,
        unfinished=results.unfinished,
        conclusion=conclude(results) if results.runs else [],
        table=[_row(run) for run in results.runs], target_label=target_label,
        sections=_sections(results), monitored=results.monitored,
        sweeps=[_sweep_view(sweep, n) for n, sweep in enumerate(results.sweeps, start=1)],
        written=time.strftime("%Y-%m-%d %H:%M"), version=__version__,
        database=str(Path(results.folder) / FILENAME))


def write_report(folder: str | Path, title: str = "descentlab report",
                 results: Results | None = None) -> Path:
    """Render ``folder/report.html`` from ``folder``'s results store (or ``results`` already
    read from it) and return its path.

    The page is written atomically (``descentlab.atomic``): a reader never sees half a page.
    """
    folder = Path(folder)
    html = render(results if results is not None else read_folder(folder), title)
    return write_atomically(folder / REPORT, lambda f: f.write(html.encode("utf-8")))
