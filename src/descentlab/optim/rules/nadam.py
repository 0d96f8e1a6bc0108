"""NAdam: Adam with Nesterov momentum and a warming-up momentum schedule."""

from __future__ import annotations

from typing import NamedTuple

from ._base import (
    NO_EPS_ROOT,
    NO_L2_DECAY,
    ROOT_FLAGS,
    Group,
    Rule,
    addcdiv,
    at_least_zero,
    bias_correction,
    check_choice,
    elementwise,
    multiply_state,
    power,
    root,
    root_terms,
    weight_decay_terms,
)
from .adam import adam_moments, check_adam_like

# μ_t = β₁ (1 − ½ · 0.96^{t ψ}) (Dozat's schedule: torch with ψ = momentum_decay, Keras with
# ψ = 1), or μ_t = β₁ throughout (optax's nesterov Adam)
MOMENTUM_SCHEDULES = ("dozat", "constant")


class NAdamCoefficients(NamedTuple):
    grad_coef: float  # −lr (1 − μ_t) / (1 − Π_t)   (times √(1 − β₂ᵗ) for "hat")
    avg_coef: float  # −lr μ_{t+1} / (1 − Π_t μ_{t+1})   (likewise)
    one_minus_beta1: float  # lerp's weight w for m
    one: float  # 1, for lerp
    beta2: float
    one_minus_beta2: float
    divide_first: bool  # d = root(v, h), see _base.root_terms
    divisor: float
    eps_root: float
    eps: float
    torch_sqrt: bool  # √ as torch's CPU kernel rounds it (float32; see _torch_sqrt)
    maximize: bool
    l2: float
    decay: float


@elementwise
def nadam(p, g, exp_avg, exp_avg_sq, h: NAdamCoefficients):
    r"""NAdam: Adam whose step looks one momentum step ahead.

    Update (torch.optim.NAdam), t counting this parameter's steps from 1, ψ = momentum_decay:

        θ ← θ (1 − lr λ)                 if decoupled_weight_decay, else g ← g + λ θ
        μ_t = β₁ (1 − ½ · 0.96^{t ψ}),   Π_t = μ₁ μ₂ … μ_t   (kept in the state as mu_product)
        m ← β₁ m + (1 − β₁) g
        v ← β₂ v + (1 − β₂) g²
        d = √(v / (1 − β₂ᵗ)) + ε
        θ ← θ − lr (1 − μ_t)/(1 − Π_t) · g/d − lr μ_{t+1}/(1 − Π_t μ_{t+1}) · m/d

    Switches: momentum_schedule="constant" sets μ_t = β₁ for every t (Π_t = β₁ᵗ);
    eps_placement="inside" makes d = √(v / (1 − β₂ᵗ) + ε), "hat" d = (√v + ε)/√(1 − β₂ᵗ);
    scalar_dtype="param" computes μ_t, Π_t and 1 − β₂ᵗ in the parameters' dtype (Keras).

    Defaults: lr = 2e-3, (β₁, β₂) = (0.9, 0.999), ε = 1e-8, λ = 0, ψ = 4e-3.

    Reference:
        Dozat (2016), "Incorporating Nesterov Momentum into Adam", ICLR workshop,
        https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ.

    Where libraries differ:
        - Keras 3 ``Nadam`` uses μ_t = β₁ (1 − ½ · 0.96^t), without ψ: its momentum reaches
          β₁ within a few dozen steps instead of thousands; lr = 1e-3, ε = 1e-7.
        - optax ``nadam`` is ``adam(nesterov=True)``: no μ schedule (μ_t = β₁ throughout), the
          momentum term bias-corrected by 1 − β₁^{t+1}.
        - torch stores Π_t as a tensor of the default dtype (float32 unless changed); here it
          is a Python float (float64), so float64 runs match torch exactly when torch's default
          dtype is float64, and to about 1e-8 relative otherwise.
        - Dozat's paper has no decoupled weight decay; torch adds it as an option (NAdamW).
    """
    p, g, exp_avg, exp_avg_sq = adam_moments(p, g, exp_avg, exp_avg_sq, h)
    denom = root(exp_avg_sq, h)
    p = addcdiv(p, h.grad_coef, g, denom)  # param.addcdiv_(g, denom, value=...), twice
    p = addcdiv(p, h.avg_coef, exp_avg, denom)
    return p, exp_avg, exp_avg_sq


def _dozat(beta1: float, exponent: float, scalar: type) -> float:
    """μ = β₁ (1 − ½ · 0.96^exponent), computed in ``scalar`` (as Keras does in float32)."""
    if scalar is float:
        return beta1 * (1.0 - 0.5 * (0.96**exponent))
    return float(scalar(beta1) * (1 - scalar(0.5) * scalar(power(0.96, exponent, scalar))))


def _coefficients(group: Group, state: dict, scalar: type = float) -> NAdamCoefficients:
    state["step"] += 1
    step = state["step"]
    lr = float(group["lr"])
    beta1, beta2 = (float(b) for b in group["betas"])
    momentum_decay = float(group["momentum_decay"])
    if group["momentum_schedule"] == "constant":
        mu = mu_next = beta1
    else:
        mu = _dozat(beta1, step * momentum_decay, scalar)
        mu_next = _dozat(beta1, (step + 1) * momentum_decay, scalar)
    multiply_state(state, "mu_product", mu, scalar)
    mu_product = state["mu_product"]
    l2, decay = weight_decay_terms(group)
    bias_correction2 = bias_correction(beta2, step, scalar)
    # "hat": d = √v + ε, so both coefficients carry the correction √(1 − β₂ᵗ)
    scale = bias_correction2**0.5 if group["eps_placement"] == "hat" else 1.0
    return NAdamCoefficients(
        grad_coef=-lr * (1.0 - mu) / (1.0 - mu_product) * scale,
        avg_coef=(-lr * mu_next) / (1.0 - mu_product * mu_next) * scale,
        one_minus_beta1=1 - beta1,
        one=1.0,
        beta2=beta2,
        one_minus_beta2=1 - beta2,
        **root_terms(float(group["eps"]), group["eps_placement"], bias_correction2,
                     _foreach_correction_sqrt(group, bias_correction2)),
        maximize=bool(group["maximize"]),
        l2=l2,
        decay=decay,
    )


def _foreach_correction_sqrt(group: Group, bias_correction2: float) -> float:
    """√(1 − β₂ᵗ) for a torch group with ``foreach=True``, else 1 (see :func:`root_terms`).

    torch.optim's two NAdam steps place the bias correction differently: the single-tensor
    step (the default on the CPU, and this rule's) takes √(v / (1 − β₂ᵗ)), the foreach step
    √v / √(1 − β₂ᵗ). The difference is a rounding, but a model's loop amplifies it: a float32
    CNN drifted 9e-4 from torch's foreach NAdam in 50 steps. Only the torch face's groups
    have the flag."""
    return bias_correction2**0.5 if group.get("foreach") else 1.0


def _check(group: Group) -> None:
    check_adam_like(group)
    at_least_zero(group, "momentum_decay", "Invalid momentum_decay value: {}")
    check_choice(group, "momentum_schedule", MOMENTUM_SCHEDULES)


RULE = Rule(
    name="NAdam",
    update=nadam,
    arrays=("exp_avg", "exp_avg_sq"),
    coefficients=_coefficients,
    check=_check,
    constant_flags=ROOT_FLAGS,
    neutral={**NO_L2_DECAY, **NO_EPS_ROOT},
    scalars={"step": 0, "mu_product": 1.0},
)
