"""AdaGrad: per-coordinate steps scaled by the accumulated squared gradients."""

from __future__ import annotations

from typing import NamedTuple

from ._base import (
    NO_DECAY,
    NO_EPS_ROOT,
    ROOT_PLACEMENTS,
    SQRT_FLAGS,
    Group,
    Rule,
    addcdiv,
    at_least_zero,
    check_choice,
    check_eps,
    check_lr,
    check_weight_decay,
    elementwise,
    fma,
    l2_gradient,
    uncorrected_root,
    uncorrected_root_terms,
    weight_decay_terms,
)


class AdagradCoefficients(NamedTuple):
    neg_clr: float
    eps_root: float  # the denominator is uncorrected_root(s, h), see _base
    eps: float
    torch_sqrt: bool  # √ as torch's CPU kernel rounds it (float32; see _torch_sqrt)
    maximize: bool
    weight_decay: float  # coupled L2 λ (0 when decoupled)
    decay: float  # decoupled factor 1 − lr·λ (1 when coupled)


@elementwise
def adagrad(p, g, sum, h: AdagradCoefficients):  # noqa: A002 - torch's state key is "sum"
    r"""AdaGrad: ``θ ← θ − lr_t · g / (√s + ε)``.

    Update (torch.optim.Adagrad), t counting this parameter's steps from 1:

        g ← g + λ θ                    (weight_decay λ; θ ← θ (1 − lr λ) if decoupled)
        s ← s + g²                                   (s₀ = initial_accumulator_value)
        lr_t = lr / (1 + (t − 1) · lr_decay)
        θ ← θ − lr_t · g / (√s + ε)     (eps_placement="inside": θ ← θ − lr_t · g / √(s + ε))

    Defaults: lr = 1e-2, lr_decay = 0, λ = 0, initial_accumulator_value = 0, ε = 1e-10.

    Reference:
        Duchi, Hazan & Singer (2011), "Adaptive Subgradient Methods for Online Learning and
        Stochastic Optimization", JMLR 12, https://jmlr.org/papers/v12/duchi11a.html.

    Where libraries differ:
        - The paper adds δ outside the square root (diag(G)^{1/2} + δI), as torch does.
        - optax ``adagrad``: s₀ = 0.1 and ε = 1e-7 *inside* the root, √(s + ε).
        - Keras 3 ``Adagrad``: s₀ = 0.1, ε = 1e-7 inside the root, lr = 1e-3.
        - The lr_decay schedule exists only in torch.
        Early steps differ most: with s₀ = 0.1 the first step is g/√(0.1 + g²), not ≈ sign(g).
    """
    p = p * h.decay
    g = l2_gradient(p, g, h.maximize, h.weight_decay)
    sum = fma(g, g, sum)  # state_sum.addcmul_(g, g, value=1)
    # param.addcdiv_(g, std, value=−clr)
    return addcdiv(p, h.neg_clr, g, uncorrected_root(sum, h)), sum


def _coefficients(group: Group, state: dict, scalar: type = float) -> AdagradCoefficients:
    state["step"] += 1
    clr = float(group["lr"]) / (1 + (state["step"] - 1) * float(group["lr_decay"]))
    l2, decay = weight_decay_terms(group)
    return AdagradCoefficients(
        neg_clr=-clr,
        **uncorrected_root_terms(float(group["eps"]), group["eps_placement"]),
        maximize=bool(group["maximize"]),
        weight_decay=l2,
        decay=decay,
    )


def _check(group: Group) -> None:
    check_lr(group)
    at_least_zero(group, "lr_decay", "Invalid lr_decay value: {}")
    check_weight_decay(group)
    at_least_zero(group, "initial_accumulator_value",
                  "Invalid initial_accumulator_value value: {}")
    check_eps(group)
    check_choice(group, "eps_placement", ROOT_PLACEMENTS)


RULE = Rule(
    name="Adagrad",
    update=adagrad,
    arrays=("sum",),
    coefficients=_coefficients,
    check=_check,
    fill=lambda group: {"sum": float(group["initial_accumulator_value"])},
    eager=True,
    constant_flags=SQRT_FLAGS,
    steady=lambda group: float(group["lr_decay"]) == 0,
    neutral={**NO_DECAY, **NO_EPS_ROOT},
)
