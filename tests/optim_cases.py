"""The one table of optimizer configurations that the trajectory tests run through.

``tools/make_golden.py`` records torch.optim's trajectories for every case into
``tests/data/golden_torch.npz``; ``test_against_torch.py`` compares descentlab against that file
and, when torch is installed, against torch.optim live. Lion (not in torch) is compared with a
transcription of its paper's Algorithm 2.

Every case trains the same five parameters in two groups, chosen to reach the corners:
group 0 holds a (2, 3) matrix, a (4,) vector and a 0-d scalar; group 1 (different
hyperparameters) holds a size-0 (0, 2) array and a (3,) vector whose gradient is None on
some steps (its state, step count included, must then stand still).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STEPS = 30
SHAPES: tuple[tuple[int, ...], ...] = ((2, 3), (4,), (), (0, 2), (3,))
GROUP_SIZES = (3, 2)
# Steps (0-based) on which the last parameter gets no gradient.
NONE_GRAD_STEPS = frozenset({0, 1, 6, 12, 13, 25})
# Per-parameter gradient scales: gradients span several orders of magnitude.
GRAD_SCALES = (1.0, 1e-3, 10.0, 1.0, 0.1)


@dataclass(frozen=True)
class Case:
    name: str
    algorithm: str
    kwargs: dict[str, Any]
    group1: dict[str, Any] = field(default_factory=dict)  # overrides for the second group

    def groups(self, params: list) -> list[dict[str, Any]]:
        first, second = params[: GROUP_SIZES[0]], params[GROUP_SIZES[0]:]
        return [{"params": first}, {"params": second, **self.group1}]


# A second group differs in lr and in one more hyperparameter of the algorithm.
_GROUP1_EXTRA: dict[str, dict[str, Any]] = {
    "SGD": {"weight_decay": 0.03},
    "Adagrad": {"lr_decay": 0.01},
    "RMSprop": {"alpha": 0.9},
    "Adadelta": {"rho": 0.95},
    "Adam": {"betas": (0.8, 0.99)},
    "AdamW": {"betas": (0.8, 0.99)},
    "Adamax": {"betas": (0.8, 0.99)},
    "NAdam": {"momentum_decay": 0.01},
    "RAdam": {"betas": (0.8, 0.99)},
    "Lion": {"betas": (0.95, 0.98)},
}

# Options varied per algorithm: every boolean flag on and off, weight decay on and off, two
# learning rates, and the algorithm's other switches.
_GRIDS: dict[str, dict[str, tuple]] = {
    "SGD": {"lr": (0.01, 0.1), "weight_decay": (0.0, 0.1), "maximize": (False, True),
            "momentum": (0.0, 0.9), "dampening": (0.0, 0.3), "nesterov": (False, True)},
    "Adagrad": {"lr": (0.01, 0.1), "weight_decay": (0.0, 0.1), "maximize": (False, True),
                "lr_decay": (0.0, 0.05), "initial_accumulator_value": (0.0, 0.1)},
    "RMSprop": {"lr": (0.001, 0.01), "weight_decay": (0.0, 0.1), "maximize": (False, True),
                "centered": (False, True), "momentum": (0.0, 0.9)},
    "Adadelta": {"lr": (1.0, 0.5), "weight_decay": (0.0, 0.1), "maximize": (False, True)},
    "Adam": {"lr": (1e-3, 1e-2), "weight_decay": (0.0, 0.1), "maximize": (False, True),
             "amsgrad": (False, True), "decoupled_weight_decay": (False, True)},
    "AdamW": {"lr": (1e-3, 1e-2), "weight_decay": (0.0, 0.01), "maximize": (False, True),
              "amsgrad": (False, True)},
    "Adamax": {"lr": (2e-3, 2e-2), "weight_decay": (0.0, 0.1), "maximize": (False, True)},
    "NAdam": {"lr": (2e-3, 2e-2), "weight_decay": (0.0, 0.1), "maximize": (False, True),
              "decoupled_weight_decay": (False, True)},
    "RAdam": {"lr": (1e-3, 1e-2), "weight_decay": (0.0, 0.1), "maximize": (False, True),
              "decoupled_weight_decay": (False, True)},
    "Lion": {"lr": (1e-4, 1e-3), "weight_decay": (0.0, 0.1), "maximize": (False, True)},
}


def _valid(algorithm: str, kwargs: dict[str, Any]) -> bool:
    if algorithm == "SGD" and kwargs["nesterov"]:
        return kwargs["momentum"] > 0 and kwargs["dampening"] == 0
    if algorithm == "SGD" and kwargs["momentum"] == 0:
        return kwargs["dampening"] == 0  # dampening without momentum changes nothing
    return True


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return "T" if value else "F"
    return f"{value:g}"


def _build() -> list[Case]:
    cases = []
    for algorithm, grid in _GRIDS.items():
        keys = list(grid)
        for values in itertools.product(*(grid[k] for k in keys)):
            kwargs = dict(zip(keys, values, strict=True))
            if not _valid(algorithm, kwargs):
                continue
            name = algorithm + "-" + "-".join(f"{k}={_short(v)}" for k, v in kwargs.items())
            group1 = {"lr": kwargs["lr"] * 0.5, **_GROUP1_EXTRA[algorithm]}
            cases.append(Case(name, algorithm, kwargs, group1))
    return cases


CASES: list[Case] = _build()
TORCH_CASES = [c for c in CASES if c.algorithm != "Lion"]
LION_CASES = [c for c in CASES if c.algorithm == "Lion"]


def problem_data(dtype: np.dtype) -> tuple[list[np.ndarray], list[list[np.ndarray | None]]]:
    """Initial parameters and the gradient sequence (None where a gradient is absent).

    Made from a fixed seed in float64 and cast, so both dtypes see the same numbers. The
    gradients do not depend on the parameters: a trajectory is then a pure function of the
    update rule, which is what the comparison is about.
    """
    rng = np.random.default_rng(20261122)
    params = [np.array(rng.standard_normal(shape), dtype=dtype) for shape in SHAPES]
    grads: list[list[np.ndarray | None]] = []
    for step in range(STEPS):
        row: list[np.ndarray | None] = []
        for i, shape in enumerate(SHAPES):
            g = rng.standard_normal(shape) * GRAD_SCALES[i]
            if step % 7 == 3 and g.size:  # exact zeros exercise ε paths (Adamax's max, ...)
                g.reshape(-1)[0] = 0.0
            row.append(None if (i == len(SHAPES) - 1 and step in NONE_GRAD_STEPS)
                       else np.array(g, dtype=dtype))
        grads.append(row)
    return params, grads


# A parameter as a snapshot sees it: (its values, its state as NumPy arrays and numbers).
Snapshot = list[tuple[np.ndarray, dict[str, Any]]]


def record_trajectory(step: Callable[[int], None], snapshot: Callable[[], Snapshot],
                      names: Sequence[str], dtype: np.dtype) -> dict[str, np.ndarray]:
    """Run ``step(t)`` for every step and record the trajectory in the layout both sides use.

    {"i/param": (STEPS+1, *shape) with the initial values first, "i/<name>": (STEPS, *shape),
    NaN while the state does not exist yet, "i/step": (STEPS,), 0 while it does not exist}.
    """
    out: dict[str, list] = {f"{i}/param": [p.copy()] for i, (p, _) in enumerate(snapshot())}
    for t in range(STEPS):
        step(t)
        for i, (p, state) in enumerate(snapshot()):
            out[f"{i}/param"].append(p.copy())
            out.setdefault(f"{i}/step", []).append(int(state.get("step", 0)))
            for name in names:
                value = state.get(name)
                out.setdefault(f"{i}/{name}", []).append(
                    np.full(p.shape, np.nan, dtype) if value is None else np.array(value))
    return {k: np.asarray(v, dtype=np.int64) if k.endswith("/step") else np.stack(v)
            for k, v in out.items()}
