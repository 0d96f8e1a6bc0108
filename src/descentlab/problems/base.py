"""What a benchmark problem is, and the registry that names them.

A ``Problem`` fixes everything but the optimizer: the data, the model, the loss, the batch size,
the budget and the target on a validation metric, following the benchmark protocols of DeepOBS
(Schneider et al. 2019) and AlgoPerf (Dahl et al. 2023). Its ``setup(seed)`` builds a fresh
``Model``: the parameter arrays the optimizer updates in place and closures over whatever else
the problem needs (a network, data). The seed decides the initial parameters; the order of the
mini-batches is drawn by the training loop from the same seed.

A sweep promises bit-identical results wherever a run executes, so ``setup`` must return the
same bits in every process: runs execute on one BLAS thread, and data a problem caches across
runs should be made on one thread too (a multithreaded matrix product rounds differently; the
built-ins use ``threadpoolctl.threadpool_limits(1)``).
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# the loss and the gradients on the training examples ``rows`` (None: all of them, or a
# problem without examples such as a test function)
LossAndGrad = Callable[[np.ndarray | None], tuple[float, Sequence[np.ndarray]]]


@dataclass
class Model:
    """One instance of a problem, as ``Problem.setup(seed)`` makes it.

    ``params``: the arrays the optimizer updates in place. ``loss_and_grad(rows)``: the mean
    loss on those training rows and one gradient per parameter (same shapes and dtypes).
    ``evaluate()``: the validation metric of the current parameters. ``test()``: the same
    metric on held-out test data, where the problem has some (reported, never used to tune).
    """

    params: list[np.ndarray]
    loss_and_grad: LossAndGrad
    evaluate: Callable[[], float]
    test: Callable[[], float] | None = None


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class Problem:
    """A benchmark problem: ``setup(seed) -> Model`` and how it is trained and judged.

    - ``metric``: the validation metric's name, and ``goal``: "max" (accuracy) or "min" (loss).
    - ``target``: the validation metric that counts as solved, for steps- and time-to-target.
    - ``examples``: training examples that mini-batches are drawn from (None: every step sees
      the whole problem, as for a test function); ``batch_size``: None for the whole set.
    - the budget: ``steps``, or ``epochs`` (passes over ``examples``); exactly one of them.
    - ``eval_every``: optimizer steps between evaluations (default: one epoch, or a twentieth
      of the budget for a problem without examples).
    """

    name: str
    setup: Callable[[int], Model]
    metric: str
    goal: str
    target: float
    steps: int | None = None
    epochs: int | None = None
    examples: int | None = None
    batch_size: int | None = None
    eval_every: int | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not (isinstance(self.name, str) and _NAME.match(self.name)):
            raise ValueError(f"problem name {self.name!r}: use letters, digits and _.+- "
                             "(starting with a letter or digit)")
        if not callable(self.setup):
            raise TypeError(f"problem {self.name!r}: setup must be callable, got "
                            f"{type(self.setup).__name__}")
        if self.goal not in ("max", "min"):
            raise ValueError(f"problem {self.name!r}: goal must be 'max' or 'min', got "
                             f"{self.goal!r}")
        if not (isinstance(self.target, (int, float)) and math.isfinite(self.target)):
            raise ValueError(f"problem {self.name!r}: target must be a finite number, got "
                             f"{self.target!r}")
        if (self.steps is None) == (self.epochs is None):
            raise ValueError(f"problem {self.name!r}: give its budget as steps or as epochs "
                             "(exactly one)")
        for field_name in ("steps", "epochs", "examples", "batch_size", "eval_every"):
            value = getattr(self, field_name)
            if value is not None and not (isinstance(value, int) and value >= 1):
                raise ValueError(f"problem {self.name!r}: {field_name} must be a positive "
                                 f"integer or None, got {value!r}")
        if self.epochs is not None and self.examples is None:
            raise ValueError(f"problem {self.name!r}: a budget in epochs needs examples")

    @property
    def batch(self) -> int | None:
        """Rows per step (None: no rows, the problem is deterministic)."""
        if self.examples is None:
            return None
        return self.examples if self.batch_size is None else min(self.batch_size,
                                                                  self.examples)

    @property
    def steps_per_epoch(self) -> int:
        return 1 if self.examples is None else -(-self.examples // self.batch)

    @property
    def total_steps(self) -> int:
        return self.steps if self.steps is not None else self.epochs * self.steps_per_epoch

    @property
    def evaluation_interval(self) -> int:
        if self.eval_every is not None:
            return self.eval_every
        if self.examples is not None:
            return self.steps_per_epoch
        return max(1, self.total_steps // 20)

    def reached(self, value: float) -> bool:
        """Whether a validation metric ``value`` meets the target."""
        if not math.isfinite(value):
            return False
        return value >= self.target if self.goal == "max" else value <= self.target

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is a strictly better validation metric than ``b`` (NaN never is)."""
        if not math.isfinite(a):
            return False
        if not math.isfinite(b):
            return True
        return a > b if self.goal == "max" else a < b

    def describe(self) -> dict:
        """What a results store records about the problem."""
        return {"name": self.name, "metric": self.metric, "goal": self.goal,
                "target": self.target, "steps": self.total_steps, "epochs": self.epochs,
                "examples": self.examples, "batch_size": self.batch,
                "eval_every": self.evaluation_interval, "description": self.description}


_REGISTRY: dict[str, Problem] = {}


def register(problem: Problem, *, replace: bool = False) -> Problem:
    """Add ``problem`` to the registry under its name (refused if the name is taken, unless
    ``replace``) and return it, so that sweeps and ``lr-find`` can name it."""
    if not isinstance(problem, Problem):
        raise TypeError(f"register expects a descentlab.problems.Problem, got "
                        f"{type(problem).__name__}")
    if problem.name in _REGISTRY and not replace:
        raise ValueError(f"a problem named {problem.name!r} is already registered (pass "
                         "replace=True to replace it)")
    _REGISTRY[problem.name] = problem
    return problem


def get(name: str) -> Problem:
    """The registered problem ``name``; an unknown name is refused with the close matches."""
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(unknown_name("problem", name, list(_REGISTRY))) from None


def names() -> list[str]:
    _load_builtins()
    return list(_REGISTRY)


def unknown_name(kind: str, name: object, known: Sequence[str]) -> str:
    """"unknown problem 'x' (did you mean 'y'?); choose one of ...": the one wording for
    every name a user can mistype."""
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {kind} {name!r}{hint}; choose one of {', '.join(known)}"


@functools.cache
def _load_builtins() -> None:
    # the built-ins register themselves on import; imported late because they need the lab.
    # Once per process: looking for torch on the path is not free where it is missing.
    import importlib.util

    from . import builtin  # noqa: F401

    if importlib.util.find_spec("torch") is not None:  # the torch lab's, without importing it
        from . import torch_problems  # noqa: F401
