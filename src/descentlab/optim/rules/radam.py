"""RAdam: Adam whose adaptive step is switched on once its variance is tractable."""

from __future__ import annotations

from typing import NamedTuple

from ._base import (
    NO_EPS_ROOT,
    NO_L2_DECAY,
    ROOT_FLAGS,
    Group,
    Rule,
    bias_correction,
    check_choice,
    check_finite,
    elementwise,
    power,
    root,
    root_terms,
    weight_decay_terms,
)
from .adam import adam_moments, check_adam_like

# below the threshold: a bias-corrected momentum step (torch, optax, the paper) or no step at
# all (the authors' code with degenerated_to_sgd=False)
RECTIFY_FALLBACKS = ("momentum", "none")


class RAdamCoefficients(NamedTuple):
    lr: float
    fallback_lr: float  # lr, or 0 for rectify_fallback="none"
    one_minus_beta1: float  # lerp's weight w for m
    one: float  # 1, for lerp and the reciprocal
    beta2: float
    one_minus_beta2: float
    bias_correction1: float  # 1 − β₁ᵗ
    adaptive_numerator: float  # √(1 − β₂ᵗ) for "hat" (torch), else 1
    rectify: bool  # ρ_t > rectify_threshold
    rect: float  # r_t
    divide_first: bool  # the adaptive lr is 1 / root(v, h) · adaptive_numerator
    divisor: float
    eps_root: float
    eps: float
    torch_sqrt: bool  # √ as torch's CPU kernel rounds it (float32; see _torch_sqrt)
    maximize: bool
    l2: float
    decay: float


@elementwise
def radam(p, g, exp_avg, exp_avg_sq, h: RAdamCoefficients):
    r"""RAdam: momentum SGD for the first steps, then Adam with a variance rectification.

    Update (torch.optim.RAdam), t counting this parameter's steps from 1:

        θ ← θ (1 − lr λ)                 if decoupled_weight_decay, else g ← g + λ θ
        m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²,   m̂ = m / (1 − β₁ᵗ)
        ρ∞ = 2/(1 − β₂) − 1,     ρ_t = ρ∞ − 2 t β₂ᵗ / (1 − β₂ᵗ)
        if ρ_t > 5:  r_t = √((ρ_t − 4)(ρ_t − 2) ρ∞ / ((ρ∞ − 4)(ρ∞ − 2) ρ_t))
                     θ ← θ − lr · m̂ · √(1 − β₂ᵗ)/(√v + ε) · r_t
        else:        θ ← θ − lr · m̂

    Switches: rectify_threshold (5) replaces the 5 above; rectify_fallback="none" makes no
    step below it (the moments still move); eps_placement is "hat" here, torch's form above,
    "outside" gives √(1 − β₂ᵗ)/(√v + ε) → 1/(√v̂ + ε) and "inside" 1/√(v̂ + ε);
    scalar_dtype="param" computes 1 − βᵗ, ρ_t and r_t in the parameters' dtype (optax).

    Defaults: lr = 1e-3, (β₁, β₂) = (0.9, 0.999), ε = 1e-8, λ = 0. With β₂ = 0.999 the
    rectified step starts at t = 6.

    Reference:
        Liu, Jiang, He, Chen, Liu, Gao & Han (2020), "On the Variance of the Adaptive Learning
        Rate and Beyond", ICLR, https://arxiv.org/abs/1908.03265.

    Where libraries differ:
        - The paper's Algorithm 2 switches at ρ_t > 4 and has no ε; torch and optax use 5.
        - torch adds ε to the uncorrected √v and multiplies by √(1 − β₂ᵗ); optax ``radam``
          adds ε to the bias-corrected √v̂ (so its ε is effectively larger early on) and also
          has ``eps_root``.
        - Keras 3 has no RAdam.
    """
    p, g, exp_avg, exp_avg_sq = adam_moments(p, g, exp_avg, exp_avg_sq, h)
    bias_corrected_exp_avg = exp_avg / h.bias_correction1
    if h.rectify:
        # torch writes c / tensor, which torch computes as tensor.reciprocal() * c
        adaptive_lr = h.one / root(exp_avg_sq, h) * h.adaptive_numerator
        p = p - bias_corrected_exp_avg * h.lr * adaptive_lr * h.rect
    else:
        p = p - bias_corrected_exp_avg * h.fallback_lr
    return p, exp_avg, exp_avg_sq


def _coefficients(group: Group, state: dict, scalar: type = float) -> RAdamCoefficients:
    state["step"] += 1
    step = state["step"]
    beta1, beta2 = (float(b) for b in group["betas"])
    bias_correction2 = bias_correction(beta2, step, scalar)
    # In float32 (scalar_dtype="param") ρ_t cancels badly, 1999 − 1998.x at t = 1 for
    # β₂ = 0.999; that is what optax computes, so ρ_t and r_t are computed in ``scalar``.
    rho_inf = scalar(2 / (1 - beta2) - 1)
    rho_t = rho_inf - 2 * step * scalar(power(beta2, step, scalar)) / scalar(bias_correction2)
    rectify = bool(rho_t > float(group["rectify_threshold"]))
    rect = (
        float(((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
              ** 0.5)
        if rectify
        else 1.0
    )
    l2, decay = weight_decay_terms(group)
    lr = float(group["lr"])
    return RAdamCoefficients(
        lr=lr,
        fallback_lr=lr if group["rectify_fallback"] == "momentum" else 0.0,
        one_minus_beta1=1 - beta1,
        one=1.0,
        beta2=beta2,
        one_minus_beta2=1 - beta2,
        bias_correction1=bias_correction(beta1, step, scalar),
        adaptive_numerator=bias_correction2**0.5 if group["eps_placement"] == "hat" else 1.0,
        rectify=rectify,
        rect=rect,
        **root_terms(float(group["eps"]), group["eps_placement"], bias_correction2),
        maximize=bool(group["maximize"]),
        l2=l2,
        decay=decay,
    )


def _check(group: Group) -> None:
    check_adam_like(group)
    check_finite(group, "rectify_threshold")
    if group["rectify_threshold"] < 4:
        # r_t has (ρ_t − 4) under its root: it is not a real number below ρ_t = 4
        raise ValueError(f"Invalid rectify_threshold value: {group['rectify_threshold']} "
                         "(rectify_threshold must be >= 4: the rectification r_t is not real "
                         "for ρ_t < 4)")
    check_choice(group, "rectify_fallback", RECTIFY_FALLBACKS)


RULE = Rule(
    name="RAdam",
    update=radam,
    arrays=("exp_avg", "exp_avg_sq"),
    coefficients=_coefficients,
    check=_check,
    constant_flags=ROOT_FLAGS,
    neutral={**NO_L2_DECAY, **NO_EPS_ROOT},
)
