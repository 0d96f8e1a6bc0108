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

from .. import optim
from ..problems import Problem
from ..problems.base import unknown_name
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

    def as_dict(self) -> dict[str, Any]:
        """The curve and the suggestions, for JSON (None where there is no suggestion)."""
        def finite(x: float) -> float | None:
            return x if math.isfinite(x) else None

        return {"problem": self.problem, "optimizer": self.optimizer, "kwargs": self.kwargs,
                "lr": self.lrs, "loss": self.losses, "smoothed": self.smoothed,
                "stopped": self.stopped, "suggestion": finite(self.suggestion),
                "minimum_over_10": finite(self.minimum_over_10)}


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
    known = [k for k in optim.defaults_of(optimizer_cls) if k != "lr"]
    for key in kwargs:
        if key not in known:
            raise ValueError(unknown_name(f"hyperparameter of {optimizer_cls.__name__} in "
                                          "--set", key, known))
    optimizer_cls([np.zeros(1)], lr=start, **kwargs)  # their values


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
