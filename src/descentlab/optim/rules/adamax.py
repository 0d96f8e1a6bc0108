"""Adamax: Adam with the infinity norm in place of the second moment."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._base import (
    NO_DECAY,
    Group,
    Rule,
    addcdiv,
    bias_correction,
    elementwise,
    l2_gradient,
    lerp,
    weight_decay_terms,
)
from .adam import check_adam_like

# ε inside the max, u ← max(β₂ u, |g| + ε) (torch, optax), or added after it (Keras)
EPS_PLACEMENTS = ("inside", "outside")


class AdamaxCoefficients(NamedTuple):
    neg_clr: float  # −lr / (1 − β₁ᵗ)
    one_minus_beta1: float  # lerp's weight w for m
    one: float  # 1, for lerp
    beta2: float
    eps_in_max: float  # u ← max(β₂ u, |g| + eps_in_max): ε inside the max, or 0
    eps_after_max: float  # the step divides by u + eps_after_max: ε outside the max, or 0
    maximize: bool
    weight_decay: float  # coupled L2 λ (0 when decoupled)
    decay: float  # decoupled factor 1 − lr·λ (1 when coupled)


@elementwise
def adamax(p, g, exp_avg, exp_inf, h: AdamaxCoefficients):
    r"""Adamax: ``θ ← θ − lr / (1 − β₁ᵗ) · m / u``.

    Update (torch.optim.Adamax):

        g ← g + λ θ                    (weight_decay λ; θ ← θ (1 − lr λ) if decoupled)
        m ← β₁ m + (1 − β₁) g
        u ← max(β₂ u, |g| + ε)
        θ ← θ − lr / (1 − β₁ᵗ) · m / u

    eps_placement="outside" (Keras): u ← max(β₂ u, |g|) and θ ← θ − lr / (1 − β₁ᵗ) · m / (u + ε).
    scalar_dtype="param": 1 − β₁ᵗ computed in the parameters' dtype (optax, Keras).

    Defaults: lr = 2e-3, (β₁, β₂) = (0.9, 0.999), ε = 1e-8, λ = 0.

    Reference:
        Kingma & Ba (2015), "Adam: A Method for Stochastic Optimization", section 7.1,
        https://arxiv.org/abs/1412.6980 (no ε: u ← max(β₂ u, |g|)).

    Where libraries differ:
        - torch and optax ``adamax`` put ε inside the max, so u ≥ ε always and the division
          is safe.
        - Keras 3 ``Adamax`` keeps u = max(β₂ u, |g|) and puts ε outside:
          θ ← θ − lr m / ((1 − β₁ᵗ)(u + ε)), ε = 1e-7, lr = 1e-3.
        They differ only where |g| stays near ε, e.g. for parameters whose gradient is zero.
    """
    p = p * h.decay
    g = l2_gradient(p, g, h.maximize, h.weight_decay)
    exp_avg = lerp(exp_avg, g, h.one_minus_beta1, h.one)
    # one expression for both placements (adding 0 is exact): no test in the fused loop
    exp_inf = np.maximum(exp_inf * h.beta2, np.abs(g) + h.eps_in_max)
    # param.addcdiv_(exp_avg, exp_inf, value=−clr)
    return addcdiv(p, h.neg_clr, exp_avg, exp_inf + h.eps_after_max), exp_avg, exp_inf


def _coefficients(group: Group, state: dict, scalar: type = float) -> AdamaxCoefficients:
    state["step"] += 1
    beta1, beta2 = (float(b) for b in group["betas"])
    l2, decay = weight_decay_terms(group)
    return AdamaxCoefficients(
        neg_clr=-(float(group["lr"]) / bias_correction(beta1, state["step"], scalar)),
        one_minus_beta1=1 - beta1,
        one=1.0,
        beta2=beta2,
        eps_in_max=0.0 if group["eps_placement"] == "outside" else float(group["eps"]),
        eps_after_max=float(group["eps"]) if group["eps_placement"] == "outside" else 0.0,
        maximize=bool(group["maximize"]),
        weight_decay=l2,
        decay=decay,
    )


def _check(group: Group) -> None:
    check_adam_like(group, EPS_PLACEMENTS)


RULE = Rule(
    name="Adamax",
    update=adamax,
    arrays=("exp_avg", "exp_inf"),
    coefficients=_coefficients,
    check=_check,
    neutral=NO_DECAY,
)
