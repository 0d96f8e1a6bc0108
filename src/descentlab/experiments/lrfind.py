"""The learning-rate range test (Smith 2017, "Cyclical learning rates for training neural
networks", section 3.3): train once while the learning rate grows exponentially from a tiny to
a huge value, one step per rate, and read a good rate off the loss curve.

The curve is the training loss smoothed by an exponential moving average (bias-corrected, as
fastai's finder does, since single mini-batch losses are noisy). The test stops early once
the smoothed loss exceeds 4 times its minimum or stops being finite. The suggestion is the
rate where the smoothed loss falls fastest against log(lr), looked for before the minimum;
the rate of the minimum divided by 10 is given too, the other common reading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..problems import Problem
from .runner import batches

SMOOTHING = 0.98
BLOW_UP = 4.0


@dataclass
class RangeTest:
    problem: str
    optimizer: str
    kwargs: dict[str, Any]
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)  # raw, per step
    smoothed: list[float] = field(default_factory=list)
    stopped: str = ""  # why it ended before the last rate, if it did
    suggestion: float = math.nan  # steepest descent
    minimum_over_10: float = math.nan


def range_test(problem: Problem, optimizer_cls, kwargs: dict[str, Any] | None = None, *,
               start: float = 1e-7, end: float = 10.0, steps: int = 100, seed: int = 0,
               label: str = "") -> RangeTest:
    """Run the range test of ``optimizer_cls`` on ``problem`` from ``seed``."""
    kwargs = dict(kwargs or {})
    check_arguments(optimizer_cls, kwargs, start, end, steps)
    model = problem.setup(seed)
    optimizer = optimizer_cls(model.params, lr=start, **kwargs)
    test = RangeTest(problem.name, label or optimizer_cls.__name__, kwargs)
    rates = np.geomspace(start, end, steps)
    rows = batches(problem, seed)
    average, best = 0.0, math.inf
    with np.errstate(over="ignore", invalid="ignore"):
        for step, lr in enumerate(rates, start=1):
            for group in optimizer.param_groups:
                group["lr"] = float(lr)
            loss, grads = model.loss_and_grad(next(rows))
            loss = float(loss)
            if not math.isfinite(loss):
                test.stopped = f"the loss became {loss} at lr {lr:.3g}"
                break
            average = SMOOTHING * average + (1 - SMOOTHING) * loss
            smooth = average / (1 - SMOOTHING ** step)
            test.lrs.append(float(lr))
            test.losses.append(loss)
            test.smoothed.append(smooth)
            best = min(best, smooth)
            if smooth > BLOW_UP * best:
                test.stopped = f"the smoothed loss passed {BLOW_UP:g}x its minimum at lr " \
                               f"{lr:.3g}"
                break
            try:
                optimizer.step(list(grads))
            except FloatingPointError:
                test.stopped = f"a gradient became non-finite at lr {lr:.3g}"
                break
    _suggest(test)
    return test


def check_arguments(optimizer_cls, kwargs: dict[str, Any], start: float, end: float,
                    steps: int) -> None:
    """Refuse a range test that cannot run, before anything is computed or written."""
    if "lr" in kwargs:
        raise ValueError("the range test sets the learning rate itself: do not give lr")
    if not (math.isfinite(start) and math.isfinite(end) and 0 < start < end):
        raise ValueError(f"need 0 < start < end, both finite, got start={start!r}, "
                         f"end={end!r}")
    if not (isinstance(steps, int) and steps >= 5):
        raise ValueError(f"steps must be an integer >= 5, got {steps!r}")
    optimizer_cls([np.zeros(1)], lr=start, **kwargs)  # the other hyperparameters


def _suggest(test: RangeTest) -> None:
    if len(test.smoothed) < 3:
        return
    smoothed = np.array(test.smoothed)
    lowest = int(np.argmin(smoothed))
    test.minimum_over_10 = test.lrs[lowest] / 10
    if lowest < 2:
        return  # the loss never fell: no slope to read
    slope = np.gradient(smoothed[:lowest + 1], np.log(test.lrs[:lowest + 1]))
    test.suggestion = test.lrs[int(np.argmin(slope))]


def plot(test: RangeTest) -> bytes:
    """Loss against learning rate (log scale), the raw losses faint, the suggestion marked."""
    from matplotlib.figure import Figure

    from ..report.figures import _png

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
