"""Two-dimensional test functions for watching optimizers move: each with its gradient, a
starting point, the window to draw and its minimum (if it has one).

- Rosenbrock (1960): a curved, flat-bottomed valley; minimum 0 at (1, 1).
- Beale (1958): steep walls and flat plateaus; minimum 0 at (3, 0.5).
- A saddle, f = x² − y²: the start lies almost on the ridge, so the gradient along the way
  out is tiny at first; no minimum (the run stops when it leaves the window).
- An ill-conditioned quadratic, f = ½(x² + κy²) with κ = 50: gradient descent zig-zags across
  the narrow direction; minimum 0 at (0, 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Point = np.ndarray  # shape (2,)


@dataclass(frozen=True)
class TestFunction:
    name: str
    title: str
    value: Callable[[np.ndarray, np.ndarray], np.ndarray]  # vectorised over grids
    gradient: Callable[[Point], Point]
    start: tuple[float, float]
    window: tuple[float, float, float, float]  # x min, x max, y min, y max
    minimum: tuple[float, float] | None
    log_levels: bool  # contour levels on a log scale (f >= 0 with a wide range)

    def distance_to_minimum(self, point: Point) -> float | None:
        """Euclidean distance from ``point`` to the minimum; None where there is none."""
        if self.minimum is None:
            return None
        return float(np.hypot(point[0] - self.minimum[0], point[1] - self.minimum[1]))


def _rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


def _rosenbrock_gradient(p):
    x, y = p
    return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


def _beale_terms(x, y):
    return 1.5 - x + x * y, 2.25 - x + x * y * y, 2.625 - x + x * y ** 3


def _beale(x, y):
    a, b, c = _beale_terms(x, y)
    return a * a + b * b + c * c


def _beale_gradient(p):
    x, y = p
    a, b, c = _beale_terms(x, y)
    return np.array([2 * a * (y - 1) + 2 * b * (y * y - 1) + 2 * c * (y ** 3 - 1),
                     2 * a * x + 4 * b * x * y + 6 * c * x * y * y])


def _saddle(x, y):
    return x * x - y * y


def _saddle_gradient(p):
    return np.array([2 * p[0], -2 * p[1]])


KAPPA = 50.0


def _quadratic(x, y):
    return 0.5 * (x * x + KAPPA * y * y)


def _quadratic_gradient(p):
    return np.array([p[0], KAPPA * p[1]])


FUNCTIONS = {f.name: f for f in (
    TestFunction("rosenbrock", "Rosenbrock", _rosenbrock, _rosenbrock_gradient, (-1.5, 2.0),
                 (-2.0, 2.0, -1.0, 3.0), (1.0, 1.0), True),
    TestFunction("beale", "Beale", _beale, _beale_gradient, (1.0, 1.4),
                 (-1.0, 4.5, -1.5, 2.0), (3.0, 0.5), True),
    TestFunction("saddle", "saddle x² − y²", _saddle, _saddle_gradient, (1.0, 1e-3),
                 (-1.5, 1.5, -1.5, 1.5), None, False),
    TestFunction("quadratic", f"ill-conditioned quadratic (κ = {KAPPA:g})", _quadratic,
                 _quadratic_gradient, (-4.0, 1.0), (-5.0, 5.0, -2.0, 2.0), (0.0, 0.0), True),
)}
