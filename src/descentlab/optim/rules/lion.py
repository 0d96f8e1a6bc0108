"""Lion: the sign of an interpolated momentum, found by program search."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._base import Group, Rule, check_betas, check_lr, check_weight_decay, elementwise


class LionCoefficients(NamedTuple):
    neg_lr: float
    beta1: float
    one_minus_beta1: float
    beta2: float
    one_minus_beta2: float
    maximize: bool
    decay: float  # 1 − lr·λ


@elementwise
def lion(p, g, exp_avg, h: LionCoefficients):
    r"""Lion: ``θ ← θ (1 − lr λ) − lr · sign(β₁ m + (1 − β₁) g)``.

    Update (Chen et al. 2023, Algorithm 2, as in the authors' reference implementation):

        c = β₁ m + (1 − β₁) g
        θ ← θ (1 − lr λ) − lr · sign(c)              (decoupled weight decay λ)
        m ← β₂ m + (1 − β₂) g

    Every coordinate moves by exactly ±lr (or 0), so Lion needs a learning rate 3-10x
    smaller than AdamW's and a weight decay 3-10x larger for the same effective decay.

    Defaults: lr = 1e-4, (β₁, β₂) = (0.9, 0.99), λ = 0 (those of the authors' code).

    Reference:
        Chen, Liang, Huang, Real, Wang, Pham, Dong, Luong, Hsieh, Lu & Le (2023), "Symbolic
        Discovery of Optimization Algorithms", NeurIPS, https://arxiv.org/abs/2302.06675.

    Where libraries differ:
        - torch.optim has no Lion; ``maximize`` here follows torch's convention (negate g).
        - optax ``lion``: same update, weight_decay = 1e-3 by default.
        - Keras 3 ``Lion``: same update, lr = 1e-3, no weight decay unless set.
    """
    if h.maximize:
        g = -g
    p = p * h.decay
    c = exp_avg * h.beta1 + h.one_minus_beta1 * g
    p = p + h.neg_lr * np.sign(c)
    exp_avg = exp_avg * h.beta2 + h.one_minus_beta2 * g
    return p, exp_avg


def _coefficients(group: Group, state: dict, scalar: type = float) -> LionCoefficients:
    state["step"] += 1
    lr = float(group["lr"])
    beta1, beta2 = (float(b) for b in group["betas"])
    return LionCoefficients(
        neg_lr=-lr,
        beta1=beta1,
        one_minus_beta1=1 - beta1,
        beta2=beta2,
        one_minus_beta2=1 - beta2,
        maximize=bool(group["maximize"]),
        decay=1.0 - lr * float(group["weight_decay"]),
    )


def _check(group: Group) -> None:
    check_lr(group)
    check_betas(group)
    check_weight_decay(group, switch=False)


RULE = Rule(
    name="Lion",
    update=lion,
    arrays=("exp_avg",),
    coefficients=_coefficients,
    check=_check,
    steady=lambda group: True,
    neutral={"decay": 1.0},
)
