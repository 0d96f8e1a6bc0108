"""What a rule is, and the few pieces of math several rules share.

A *rule* is one algorithm's per-element math, written once. Every executor runs the same
function: the array-wise executor calls it on whole NumPy arrays (NumPy broadcasting does the
rest); a fused executor calls it on scalars inside one compiled loop; the PyTorch face calls it
on tensors. That is why an update function

- is pure: it takes ``(p, g, *state_arrays, h)`` and returns ``(p, *state_arrays)``, new values
  only, never writing into its arguments (the executor decides where results go);
- uses only arithmetic, comparisons on the scalar record ``h``, ``np.maximum``, ``np.abs``,
  ``np.sign``, which NumPy applies to arrays and Numba compiles for scalars, ``fma``
  (:mod:`._fma`: a·b + c rounded once, wherever torch's kernels round so), ``addcmul`` and
  ``addcdiv`` (where torch.optim calls those operations with a ``value``) and
  ``square_root(x, h)`` (:mod:`._torch_sqrt`: √x, rounded correctly or, where the torch face
  sets ``h.torch_sqrt``, as torch's CPU kernel rounds it);
- receives an optional state array as ``None`` when the group's options do not use it, and
  returns it unchanged.

``h`` is a small NamedTuple of per-step scalars made by the rule's ``coefficients`` function:
everything that depends only on hyperparameters and the step count is computed there once per
parameter and step, in Python floats, exactly as torch.optim computes it, so that the element
loop does as little as possible and rounds as torch does.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ._fma import fma
from ._torch_sqrt import square_root

Group = Mapping[str, Any]

ELEMENTWISE: list[Callable] = []


def elementwise(function: Callable) -> Callable:
    """Mark ``function`` as element math: it must stay compilable by Numba for scalars.

    The fused executor compiles every function in :data:`ELEMENTWISE` (the rules' updates and
    the helpers they call); in Python the function is returned unchanged.
    """
    ELEMENTWISE.append(function)
    return function


@dataclass(frozen=True)
class Rule:
    """One algorithm: its element-wise math and everything needed to drive it.

    Attributes:
        name: the algorithm's name (the torch.optim class name).
        update: the element-wise math, ``update(p, g, *arrays, h) -> (p, *arrays)``.
        arrays: names of the per-parameter state arrays, in ``update``'s argument order; the
            names are torch.optim's state keys.
        coefficients: ``coefficients(group, state, scalar) -> h``; advances the parameter's
            scalar state (``state["step"]`` and the like) and returns this step's scalars.
            ``scalar`` is the type to compute them in (:func:`scalar_type`: ``float`` unless
            the group asks for float32 via ``scalar_dtype``); rules without per-step scalars
            ignore it.
        check: ``check(group)`` raises ValueError, with torch.optim's wording, for an invalid
            hyperparameter.
        scalars: the scalar state a parameter starts with.
        active: ``active(group) -> names`` of the arrays this group's options use; None: all.
        fill: ``fill(group) -> {name: value}`` for arrays that do not start at zero.
        eager: create every parameter's state when the optimizer is built (torch's Adagrad
            does), instead of at the parameter's first gradient.
        constant_flags: names of boolean fields of ``h`` that the fused executor compiles as
            constants, one kernel per value. For a flag that chooses between two formulas
            (:func:`root`'s ``divide_first``): LLVM's loop vectoriser turns a branch inside the
            loop into computing both arms and selecting, even when the condition is the same
            for every element.
        steady: ``steady(group) -> bool``, true where the group's coefficients read nothing of
            the scalar state, whose one entry ``step`` they only advance by one (RMSprop,
            Adadelta, Lion; AdaGrad without ``lr_decay``): ``h`` is then the same at every step
            while the hyperparameters stay, and a caller may keep it and count the steps
            itself. None: never (Adam's bias corrections read the step).
        neutral: float fields of ``h`` and the value at which their operation changes nothing
            (a decay factor of 1, an L2 weight of 0, an ε term of -0.0: ``x + -0.0`` is ``x``
            for every x, ``x + 0.0`` is not for x = -0.0). The fused executor compiles such a
            field as a constant while it holds that value, sign included, so LLVM drops the
            operation, or the branch it decides: a kernel for the defaults, another for other
            values. Only fields fixed by the hyperparameters belong here; one that moves with
            the step (a bias correction that reaches 1) would compile a new kernel mid-run.
            The values may be 0.0, -0.0 and 1.0.
    """

    name: str
    update: Callable[..., tuple]
    arrays: tuple[str, ...]
    coefficients: Callable[[Group, dict, type], NamedTuple]
    check: Callable[[Group], None]
    scalars: Mapping[str, int | float] = field(default_factory=lambda: {"step": 0})
    active: Callable[[Group], Collection[str]] | None = None
    fill: Callable[[Group], Mapping[str, float]] | None = None
    eager: bool = False
    constant_flags: tuple[str, ...] = ()
    steady: Callable[[Group], bool] | None = None
    neutral: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value in self.neutral.items():
            if value not in (0.0, 1.0):  # -0.0 == 0.0
                raise ValueError(f"{self.name}: neutral value {name}={value!r} is not 0.0, "
                                 "-0.0 or 1.0")
        if self.steady is not None and set(self.scalars) != {"step"}:
            raise ValueError(f"{self.name}: a steady rule's one scalar state is its step count, "
                             f"not {sorted(self.scalars)}")

    def is_steady(self, group: Group) -> bool:
        """Whether ``group``'s coefficients stay the same from step to step (see ``steady``)."""
        return self.steady is not None and self.steady(group)

    def active_arrays(self, group: Group) -> Collection[str]:
        return self.arrays if self.active is None else self.active(group)


@elementwise
def lerp(a, b, w: float, one: float):
    """``a + w (b - a)``, rounded as ``torch.lerp`` rounds it: ``fma(w, b − a, a)``, or
    ``fma(w − 1, b − a, b)`` from w = 0.5 on, so that w = 1 returns ``b`` exactly.

    ``one`` is 1 in the elements' type (a field of ``h``): ``w − 1`` is then exact and equal
    to torch's, which rounds w to the elements' type first. A float literal in element math
    would make Numba compute float32 elements in float64.
    """
    if w < 0.5:
        return fma(w, b - a, a)
    return fma(w - one, b - a, b)


@elementwise
def addcmul(c, value: float, a, b):
    """``c + value·a·b`` as torch's ``c.addcmul(a, b, value=value)`` rounds it: on the CPU
    ``fma(value·a, b, c)`` (see ``_fma``). On tensors the torch face calls that operation
    itself (``torch_math``): torch's CUDA kernel rounds it otherwise, and torch.optim's steps
    are written with it."""
    return fma(value * a, b, c)


@elementwise
def addcdiv(c, value: float, a, b):
    """``c + value·a / b`` as torch's ``c.addcdiv(a, b, value=value)`` rounds it: on the CPU
    three roundings, ``c + (value·a) / b``. On tensors the torch face calls that operation
    itself, as for :func:`addcmul` (torch's CUDA kernel rounds it otherwise)."""
    return c + value * a / b


@elementwise
def l2_gradient(p, g, maximize: bool, weight_decay: float):
    """The gradient the moments see: negated for ``maximize``, plus the L2 term ``λθ``.

    torch.optim negates first and then adds ``weight_decay * param``; the order matters for
    ``maximize=True`` with weight decay (the decay still pulls towards zero).
    """
    if maximize:
        g = -g
    if weight_decay != 0:
        g = fma(p, weight_decay, g)  # grad.add(param, alpha=weight_decay)
    return g


# the flag of h that chooses how a square root rounds (torch's or correctly), and the flags
# that choose root's form: compiled as constants (see Rule.constant_flags). Read at run time,
# torch_sqrt was tested at every vector of the torch face's AdaGrad loop (its assembly shows
# it), though it is the same for every element of a step.
SQRT_FLAGS = ("torch_sqrt",)
ROOT_FLAGS = ("divide_first", *SQRT_FLAGS)

# the values at which weight decay does nothing (Rule.neutral): no decoupled shrinking, no L2
# term (named ``weight_decay``, or ``l2`` in the Adam family's coefficients); and no ε inside the
# root (root_terms' -0.0)
NO_DECAY = {"decay": 1.0, "weight_decay": 0.0}
NO_L2_DECAY = {"decay": 1.0, "l2": 0.0}
NO_EPS_ROOT = {"eps_root": -0.0}


@elementwise
def root(v, h):
    """``√(v / divisor + eps_root) + eps`` or ``√v / divisor + eps`` (``h.divide_first``):
    every placement of ε in a denominator, chosen by the numbers :func:`root_terms` puts in
    ``h``.

    Two forms rather than one, because a division costs: ``√(v / 1 + 0) / √c + ε``, the one
    expression an earlier version had, left Adam's fused loop with three divisions an element
    to torch's two, and 25 % slower than torch's fused Adam on cache-resident parameters. For
    the same reason a rule using this lists :data:`ROOT_FLAGS` in its ``constant_flags``:
    vectorised, the test would compute both forms. Where ε is not inside the root,
    ``eps_root`` is -0.0, and adding it changes no value, -0.0 included: torch's rounding is
    kept where its placement is chosen, and the kernels drop the addition (``Rule.neutral``).
    """
    if h.divide_first:
        return square_root(v / h.divisor + h.eps_root, h) + h.eps
    return square_root(v, h) / h.divisor + h.eps


def root_terms(eps: float, placement: str, correction: float = 1.0,
               correction_sqrt: float = 1.0) -> dict[str, Any]:
    """``h``'s numbers for :func:`root`: ``divide_first``, ``divisor``, ``eps_root``, ``eps``.

    ``placement``: "outside" gives √v̂ + ε, "inside" √(v̂ + ε), "hat" √v + ε (the caller's
    step size then carries the bias correction), with v̂ = v / ``correction``.
    ``correction_sqrt`` (√correction) makes "outside" divide after the root, √v / √c + ε, as
    torch's Adam does; left at 1 the division comes first, √(v / c) + ε (torch's NAdam).
    """
    if placement == "inside":
        terms = {"divide_first": True, "divisor": correction, "eps_root": eps, "eps": 0.0}
    elif placement == "hat":
        terms = {"divide_first": False, "divisor": 1.0, "eps_root": -0.0, "eps": eps}
    elif correction_sqrt != 1.0:
        terms = {"divide_first": False, "divisor": correction_sqrt, "eps_root": -0.0,
                 "eps": eps}
    else:
        terms = {"divide_first": True, "divisor": correction, "eps_root": -0.0, "eps": eps}
    # correctly rounded roots; the torch face turns torch's rounding on (see _torch_sqrt)
    return {**terms, "torch_sqrt": False}


@elementwise
def uncorrected_root(v, h):
    """``√(v + eps_root) + eps``: :func:`root` for a rule without bias correction (AdaGrad,
    RMSprop), whose divisors are always 1. The same rounding, two divisions an element fewer:
    with them AdaGrad's fused step took about 10 % longer than torch's fused kernel."""
    return square_root(v + h.eps_root, h) + h.eps


def uncorrected_root_terms(eps: float, placement: str) -> dict[str, Any]:
    """``h``'s numbers for :func:`uncorrected_root`: ``eps_root``, ``eps``, ``torch_sqrt``."""
    terms = root_terms(eps, placement)
    return {name: terms[name] for name in ("eps_root", "eps", "torch_sqrt")}


# eps_placement for a root without bias correction (AdaGrad's, RMSprop's)
ROOT_PLACEMENTS = ("outside", "inside")


def lr_scales(group: Group) -> tuple[float, float]:
    """(step scale, gradient scale) for a momentum buffer, as ``lr_in_momentum`` chooses:
    torch (−lr, 1), θ ← θ − lr·b; Keras (−1, lr), the buffer already holds lr-scaled steps.

    Multiplying by 1 is exact, so torch's rounding is kept when lr stays outside.
    """
    lr = float(group["lr"])
    return (-1.0, lr) if group["lr_in_momentum"] else (-lr, 1.0)


# scalar_dtype: the type a step's scalars (βᵗ, the bias corrections, RAdam's ρ_t) are computed
# in. "float64": Python floats, as torch.optim computes them whatever the parameters' dtype.
# "param": the parameters' own dtype, with β rounded to it first, as optax (JAX's weak types)
# and Keras (ops.cast(beta, variable.dtype)) do. It changes float32 trajectories only, but
# there by up to 1.3e-5 relative per step: float32(0.999) is 0.99900001, so 1 − β₂ is 1.3e-5
# smaller than with β₂ = 0.999.
SCALAR_DTYPES = ("float64", "param")


def scalar_type(group: Group, dtype: np.dtype) -> type:
    """The type this group's step scalars are computed in for parameters of ``dtype``:
    ``float`` (IEEE double, torch's Python floats), or ``np.float32``."""
    if group.get("scalar_dtype", "float64") == "param" and dtype == np.float32:
        return np.float32
    return float


def power(beta: float, step: float, scalar: type) -> float:
    """βᵗ computed in ``scalar``: β rounded to it first, βᵗ rounded once.

    For float32 this is what XLA's pow (optax) and torch.pow on 0-dim tensors (Keras) return
    for β ∈ {0.9, 0.96, 0.99, 0.999} and every t up to 300 (tests/test_conventions.py
    compares it bit for bit with values recorded from both). NumPy's float32 power is not
    used: it is one unit in the last place off for 0.999ᵗ at t = 9, 20, ...
    """
    if scalar is float:
        return beta**step
    return float(scalar(float(scalar(beta)) ** step))


def bias_correction(beta: float, step: int, scalar: type) -> float:
    """1 − βᵗ computed in ``scalar`` (see :func:`power`)."""
    if scalar is float:
        return 1 - beta**step
    return float(scalar(1) - scalar(power(beta, step, scalar)))


def multiply_state(state: dict, key: str, factor: float, scalar: type) -> None:
    """``state[key] *= factor`` for a scalar kept across steps (NAdam's μ-product), computed in
    ``scalar`` and rounded the way the optimizer stores it.

    A face that keeps scalar state in lower precision gives its state mapping a ``rounding``
    function (the torch face: torch.optim's float32 0-dim tensors, whose in-place multiply
    rounds the factor to float32 first); a plain dict keeps Python floats.
    """
    rounding = getattr(state, "rounding", float)
    state[key] = rounding(float(scalar(state[key] * rounding(factor))))


def weight_decay_terms(group: Group) -> tuple[float, float]:
    """(coupled λ for :func:`l2_gradient`, decoupled factor ``1 − lr·λ``): one is neutral.

    ``decoupled_weight_decay`` chooses: L2 adds λθ to the gradient, so the decay passes through
    the moments and the adaptive scaling; decoupled decay shrinks θ by lr·λ before the step
    (torch's AdamW, and what Keras 3 does for every optimizer).
    """
    weight_decay = float(group["weight_decay"])
    if not group["decoupled_weight_decay"]:
        return weight_decay, 1.0
    return 0.0, (1.0 - float(group["lr"]) * weight_decay) if weight_decay != 0 else 1.0


# --- hyperparameter checks -----------------------------------------------------------------
#
# Each message starts with torch.optim's own wording (code that matches on torch's message
# keeps working) and goes on to name the argument and what it must be.


def check_lr(group: Group) -> None:
    at_least_zero(group, "lr", "Invalid learning rate: {}")


def check_eps(group: Group) -> None:
    # torch accepts ε = 0; we do not: it divides by zero wherever a moment is still 0 (the
    # first steps of a parameter whose gradient is 0 in places).
    value = group["eps"]
    if not _is_real(value) or not 0.0 < value < float("inf"):
        raise ValueError(f"Invalid epsilon value: {value} (eps must be a finite number > 0"
                         f"{_not_a_number(value)})")


def check_weight_decay(group: Group, switch: bool = True) -> None:
    """λ >= 0, and the ``decoupled_weight_decay`` switch a bool (``switch=False``: the rule has
    no such switch, as Lion, whose decay is always decoupled)."""
    at_least_zero(group, "weight_decay", "Invalid weight_decay value: {}")
    if switch:
        check_flag(group, "decoupled_weight_decay")


def check_betas(group: Group) -> None:
    betas = group["betas"]
    try:
        ok = len(betas) == 2
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"Invalid betas: {betas!r} (betas must be a pair of floats in [0, 1))")
    for i, beta in enumerate(betas):
        if not _is_real(beta) or not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {beta} "
                             f"(betas[{i}] must be in [0, 1))")


def check_choice(group: Group, name: str, choices: Collection[str]) -> None:
    """``group[name]`` one of the strings ``choices`` (a convention switch)."""
    value = group[name]
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"Invalid {name} value: {value!r} ({name} must be one of "
                         f"{', '.join(map(repr, choices))})")


def check_flag(group: Group, name: str) -> None:
    """``group[name]`` a bool (a switch: 0 or "yes" would be a mistake, not a choice)."""
    value = group[name]
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"Invalid {name} value: {value!r} ({name} must be True or False)")


def check_fraction(group: Group, name: str, message: str) -> None:
    """``group[name]`` in [0, 1] (Adadelta's ρ: 1 is allowed, as in torch)."""
    value = group[name]
    if not _is_real(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{message.format(value)} ({name} must be in [0, 1])")


def at_least_zero(group: Group, name: str, message: str) -> None:
    """``group[name]`` a finite number >= 0; ``message`` is torch's wording, ``{}`` the value.

    torch's test ``not 0 <= x`` also refuses NaN; we refuse infinity and non-numbers too,
    because either would silently turn every parameter into NaN at the first step.
    """
    value = group[name]
    if not _is_real(value) or not 0.0 <= value < float("inf"):
        raise ValueError(f"{message.format(value)} ({name} must be a finite number >= 0"
                         f"{_not_a_number(value)})")


def check_finite(group: Group, name: str) -> None:
    """``group[name]`` a finite number (for arguments torch leaves unchecked, as dampening)."""
    value = group[name]
    if not _is_real(value) or not abs(value) < float("inf"):
        raise ValueError(f"Invalid {name} value: {value} ({name} must be a finite number"
                         f"{_not_a_number(value)})")


def _not_a_number(x: Any) -> str:
    """", not a Tensor" and the like, for a value that is no number at all (a torch.Tensor lr
    prints like a float and would otherwise be refused with a puzzling message)."""
    return "" if _is_real(x) else f", not a {type(x).__name__}"


def _is_real(x: Any) -> bool:
    """A real number: Python or NumPy int or float, not a bool, a string or an array."""
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)
