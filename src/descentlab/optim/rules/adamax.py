"""Adamax: Adam with the infinity norm in place of the second moment."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._base import Group, Rule, elementwise, l2_gradient, lerp
from .adam import check_adam_like


class AdamaxCoefficients(NamedTuple):
    neg_clr: float  # −lr / (1 − β₁ᵗ)
    one_minus_beta1: float  # lerp's weight w for m
    beta1_lerp: float  # 1 − w, lerp's complement (may differ from β₁ in the last bit)
    beta2: float
    eps: float
    maximize: bool
    weight_decay: float


@elementwise
def adamax(p, g, exp_avg, exp_inf, h: AdamaxCoefficients):
    r"""Adamax: ``θ ← θ − lr / (1 − β₁ᵗ) · m / u``.

    Update (torch.optim.Adamax):

        g ← g + λ θ                                  (weight_decay λ, coupled L2)
        m ← β₁ m + (1 − β₁) g
        u ← max(β₂ u, |g| + ε)
        θ ← θ − lr / (1 − β₁ᵗ) · m / u

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
    g = l2_gradient(p, g, h.maximize, h.weight_decay)
    exp_avg = lerp(exp_avg, g, h.one_minus_beta1, h.beta1_lerp)
    exp_inf = np.maximum(exp_inf * h.beta2, np.abs(g) + h.eps)
    return p + h.neg_clr * exp_avg / exp_inf, exp_avg, exp_inf


def _coefficients(group: Group, state: dict) -> AdamaxCoefficients:
    state["step"] += 1
    beta1, beta2 = (float(b) for b in group["betas"])
    return AdamaxCoefficients(
        neg_clr=-(float(group["lr"]) / (1 - beta1 ** state["step"])),
        one_minus_beta1=1 - beta1,
        beta1_lerp=1 - (1 - beta1),
        beta2=beta2,
        eps=float(group["eps"]),
        maximize=bool(group["maximize"]),
        weight_decay=float(group["weight_decay"]),
    )


RULE = Rule(
    name="Adamax",
    update=adamax,
    arrays=("exp_avg", "exp_inf"),
    coefficients=_coefficients,
    check=check_adam_like,
)
