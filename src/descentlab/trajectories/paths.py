"""Run descentlab optimizers on a 2-D test function and keep every point they visit."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import optim
from .functions import TestFunction

# (label, optimizer, fixed keyword arguments): the seed articles' optimizers
OPTIMIZERS = (
    ("SGD", "SGD", {}),
    ("SGD+momentum", "SGD", {"momentum": 0.9}),
    ("AdaGrad", "Adagrad", {}),
    ("RMSprop", "RMSprop", {}),
    ("Adadelta", "Adadelta", {}),
    ("Adam", "Adam", {}),
)

# learning rates that show each optimizer's character on each function (chosen by eye for
# the pictures, not tuned for speed: plain SGD's rate is near its stability limit)
LEARNING_RATES = {
    "rosenbrock": {"SGD": 1.5e-3, "SGD+momentum": 1.5e-4, "AdaGrad": 0.1, "RMSprop": 1e-2,
                   "Adadelta": 1.0, "Adam": 0.05},
    "beale": {"SGD": 1e-2, "SGD+momentum": 1e-3, "AdaGrad": 0.5, "RMSprop": 1e-2,
              "Adadelta": 1.0, "Adam": 0.05},
    "saddle": {"SGD": 1e-2, "SGD+momentum": 1e-3, "AdaGrad": 0.1, "RMSprop": 1e-2,
               "Adadelta": 1.0, "Adam": 0.02},
    "quadratic": {"SGD": 0.035, "SGD+momentum": 5e-3, "AdaGrad": 1.0, "RMSprop": 0.03,
                  "Adadelta": 1.0, "Adam": 0.1},
}


@dataclass
class Path:
    label: str
    lr: float
    points: np.ndarray  # (steps + 1, 2), the start first
    values: np.ndarray  # f at each point
    stopped: str  # "" when every step was taken, else why the run stopped early


def descend(function: TestFunction, label: str, name: str, kwargs: dict, lr: float,
            steps: int) -> Path:
    """``steps`` steps of ``descentlab.optim.<name>`` from ``function.start``."""
    point = np.array(function.start, dtype=np.float64)
    optimizer = optim.OPTIMIZERS[name]([point], lr=lr, **kwargs)
    x0, x1, y0, y1 = function.window
    # far outside the window the picture has nothing to show and a saddle is unbounded
    span = 10 * max(x1 - x0, y1 - y0)
    points, stopped = [point.copy()], ""
    for _ in range(steps):
        gradient = function.gradient(point)
        if not np.all(np.isfinite(gradient)):
            stopped = "diverged"
            break
        optimizer.step([gradient])
        if not np.all(np.isfinite(point)):
            stopped = "diverged"
            break
        points.append(point.copy())
        if abs(point[0] - (x0 + x1) / 2) > span or abs(point[1] - (y0 + y1) / 2) > span:
            stopped = "left the window"
            break
    track = np.array(points)
    return Path(label, lr, track, function.value(track[:, 0], track[:, 1]), stopped)


def descend_all(function: TestFunction, steps: int = 300,
                rates: dict[str, float] | None = None,
                labels: list[str] | None = None) -> list[Path]:
    """The default optimizers (or those of ``labels``) on ``function``; ``rates`` overrides
    learning rates by label."""
    chosen = [o for o in OPTIMIZERS if labels is None or o[0] in labels]
    if labels is not None:
        unknown = set(labels) - {o[0] for o in OPTIMIZERS}
        if unknown:
            raise ValueError(f"unknown optimizer {sorted(unknown)[0]!r}; choose from "
                             f"{', '.join(o[0] for o in OPTIMIZERS)}")
    rates = {**LEARNING_RATES[function.name], **(rates or {})}
    for label, lr in rates.items():
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"learning rate for {label} must be positive, got {lr}")
    return [descend(function, label, name, kwargs, rates[label], steps)
            for label, name, kwargs in chosen]
