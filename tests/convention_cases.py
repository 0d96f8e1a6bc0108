"""The cases that pin descentlab's ``convention="optax"`` and ``convention="keras"`` presets.

Each case names one optimizer call in optax or Keras 3 and the descentlab call that should
compute the same trajectory. ``tools/make_conventions.py`` runs the library side and writes
``tests/data/golden_optax.npz`` and ``golden_keras.npz``; ``test_conventions.py`` runs the
descentlab side. The libraries are not needed to run the tests.

Like ``optim_cases``, the gradients do not depend on the parameters (a trajectory is then a
function of the update rule alone). One group, four parameters: their gradient scales span
1e-6 to 10, so that where ε sits is visible (near the 1e-6 parameter ε is the size of √v).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

STEPS = 30
SHAPES: tuple[tuple[int, ...], ...] = ((2, 3), (4,), (), (3,))
GRAD_SCALES = (1.0, 1e-3, 10.0, 1e-6)
SCHEDULE_EVERY = 10  # a scheduled case halves lr every 10 steps


@dataclass(frozen=True)
class ConventionCase:
    """One call in a library and its descentlab counterpart.

    Attributes:
        library: "optax" or "keras".
        factory: the library's constructor (``optax.<factory>``, ``keras.optimizers.<factory>``).
        theirs: its arguments (the library's names).
        algorithm: the descentlab class.
        ours: its arguments besides ``convention`` (descentlab's names).
        schedule: lr halves every SCHEDULE_EVERY steps, on both sides.
        differs_from_torch: whether the same descentlab call with the torch convention must
            miss the golden trajectory (the preset changes the math, not only rounding).
    """

    library: str
    factory: str
    theirs: dict[str, Any]
    algorithm: str
    ours: dict[str, Any]
    differs_from_torch: bool
    schedule: bool = False
    tag: str = field(default="")

    @property
    def name(self) -> str:
        return f"{self.library}/{self.factory}" + (f"-{self.tag}" if self.tag else "")


def learning_rate(case: ConventionCase, step: int) -> float:
    """The lr of 0-based ``step`` (``case.ours["lr"]`` or the preset's, halved on schedule)."""
    from descentlab.optim import conventions

    lr = case.ours.get("lr", conventions.preset(case.algorithm, case.library).settings["lr"])
    return lr * 0.5 ** (step // SCHEDULE_EVERY) if case.schedule else lr


def _optax() -> list[ConventionCase]:
    c = ConventionCase
    return [
        # optax's SGD is torch's: lr outside the trace, no dampening
        c("optax", "sgd", {"learning_rate": 0.1}, "SGD", {"lr": 0.1}, False),
        c("optax", "sgd", {"learning_rate": 0.1, "momentum": 0.9}, "SGD",
          {"lr": 0.1, "momentum": 0.9}, False, tag="momentum"),
        c("optax", "sgd", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}, "SGD",
          {"lr": 0.1, "momentum": 0.9, "nesterov": True}, False, tag="nesterov"),
        c("optax", "sgd", {"learning_rate": 0.1, "momentum": 0.9}, "SGD",
          {"lr": 0.1, "momentum": 0.9}, False, schedule=True, tag="momentum-schedule"),
        c("optax", "adagrad", {"learning_rate": 0.1}, "Adagrad", {"lr": 0.1}, True),
        c("optax", "rmsprop", {"learning_rate": 0.01}, "RMSprop", {"lr": 0.01}, True),
        c("optax", "rmsprop", {"learning_rate": 0.01, "centered": True}, "RMSprop",
          {"lr": 0.01, "centered": True}, True, tag="centered"),
        c("optax", "rmsprop", {"learning_rate": 0.01, "eps_in_sqrt": False}, "RMSprop",
          {"lr": 0.01, "eps_placement": "outside"}, True, tag="eps-outside"),
        # lr inside the trace: equal to torch's until the schedule changes lr
        c("optax", "rmsprop", {"learning_rate": 0.01, "momentum": 0.9}, "RMSprop",
          {"lr": 0.01, "momentum": 0.9}, True, schedule=True, tag="momentum-schedule"),
        c("optax", "adadelta", {"learning_rate": 1.0}, "Adadelta", {"lr": 1.0}, False),
        c("optax", "adadelta", {"learning_rate": 1.0, "weight_decay": 0.1}, "Adadelta",
          {"lr": 1.0, "weight_decay": 0.1}, False, tag="weight-decay"),
        c("optax", "adam", {"learning_rate": 0.05}, "Adam", {"lr": 0.05}, False),
        c("optax", "adam", {"learning_rate": 0.05, "eps": 0.0, "eps_root": 1e-8}, "Adam",
          {"lr": 0.05, "eps": 1e-8, "eps_placement": "inside"}, False, tag="eps-root"),
        c("optax", "amsgrad", {"learning_rate": 0.05}, "Adam",
          {"lr": 0.05, "amsgrad": True}, True),
        c("optax", "adamw", {"learning_rate": 0.05}, "AdamW", {"lr": 0.05}, True),
        c("optax", "adamw", {"learning_rate": 0.05, "weight_decay": 0.1}, "Adam",
          {"lr": 0.05, "weight_decay": 0.1}, True, tag="as-adam"),
        c("optax", "adamax", {"learning_rate": 0.05}, "Adamax", {"lr": 0.05}, False),
        c("optax", "nadam", {"learning_rate": 0.05}, "NAdam", {"lr": 0.05}, True),
        c("optax", "nadamw", {"learning_rate": 0.05, "weight_decay": 0.1}, "NAdam",
          {"lr": 0.05, "weight_decay": 0.1}, True),
        c("optax", "radam", {"learning_rate": 0.05}, "RAdam", {"lr": 0.05}, True),
        c("optax", "lion", {"learning_rate": 0.01}, "Lion", {"lr": 0.01}, True),
    ]


def _keras() -> list[ConventionCase]:
    c = ConventionCase
    return [
        c("keras", "SGD", {"learning_rate": 0.1}, "SGD", {"lr": 0.1}, False),
        c("keras", "SGD", {"learning_rate": 0.1, "momentum": 0.9}, "SGD",
          {"lr": 0.1, "momentum": 0.9}, False, tag="momentum"),
        c("keras", "SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}, "SGD",
          {"lr": 0.1, "momentum": 0.9, "nesterov": True}, False, tag="nesterov"),
        # lr inside the buffer: equal to torch's until the schedule changes lr
        c("keras", "SGD", {"learning_rate": 0.1, "momentum": 0.9}, "SGD",
          {"lr": 0.1, "momentum": 0.9}, True, schedule=True, tag="momentum-schedule"),
        c("keras", "SGD", {"learning_rate": 0.1, "momentum": 0.9, "weight_decay": 0.1}, "SGD",
          {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.1}, True, tag="weight-decay"),
        c("keras", "Adagrad", {"learning_rate": 0.1}, "Adagrad", {"lr": 0.1}, True),
        c("keras", "RMSprop", {"learning_rate": 0.01}, "RMSprop", {"lr": 0.01}, True),
        c("keras", "RMSprop", {"learning_rate": 0.01, "centered": True}, "RMSprop",
          {"lr": 0.01, "centered": True}, True, tag="centered"),
        c("keras", "RMSprop", {"learning_rate": 0.01, "momentum": 0.9}, "RMSprop",
          {"lr": 0.01, "momentum": 0.9}, True, schedule=True, tag="momentum-schedule"),
        c("keras", "Adadelta", {"learning_rate": 1.0}, "Adadelta", {"lr": 1.0}, True),
        c("keras", "Adam", {}, "Adam", {}, True, tag="defaults"),
        c("keras", "Adam", {"learning_rate": 0.05}, "Adam", {"lr": 0.05}, True),
        c("keras", "Adam", {"learning_rate": 0.05, "amsgrad": True}, "Adam",
          {"lr": 0.05, "amsgrad": True}, True, tag="amsgrad"),
        c("keras", "Adam", {"learning_rate": 0.05, "weight_decay": 0.1}, "Adam",
          {"lr": 0.05, "weight_decay": 0.1}, True, tag="weight-decay"),
        c("keras", "AdamW", {"learning_rate": 0.05}, "AdamW", {"lr": 0.05}, True),
        c("keras", "Adamax", {"learning_rate": 0.05}, "Adamax", {"lr": 0.05}, True),
        c("keras", "Nadam", {"learning_rate": 0.05}, "NAdam", {"lr": 0.05}, True),
        c("keras", "Lion", {"learning_rate": 0.01}, "Lion", {"lr": 0.01}, False),
        c("keras", "Lion", {"learning_rate": 0.01, "weight_decay": 0.1}, "Lion",
          {"lr": 0.01, "weight_decay": 0.1}, False, tag="weight-decay"),
    ]


CASES: list[ConventionCase] = _optax() + _keras()
LIBRARIES = ("optax", "keras")


def problem_data(dtype: np.dtype) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    """Initial parameters and the gradient of every step, from a fixed seed (in float64,
    then cast, so both dtypes see the same numbers). Every few steps one element's gradient
    is exactly 0, which reaches ε's paths (Adamax's max, AdaGrad's first steps)."""
    rng = np.random.default_rng(20261122)
    params = [np.array(rng.standard_normal(shape), dtype=dtype) for shape in SHAPES]
    grads = []
    for step in range(STEPS):
        row = []
        for i, shape in enumerate(SHAPES):
            g = rng.standard_normal(shape) * GRAD_SCALES[i]
            if step % 5 == 2 and g.size:
                g.reshape(-1)[0] = 0.0
            row.append(np.array(g, dtype=dtype))
        grads.append(row)
    return params, grads
