"""Adam and the variants that share its state: AMSGrad and AdamW."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._base import (
    NO_EPS_ROOT,
    NO_L2_DECAY,
    ROOT_FLAGS,
    SCALAR_DTYPES,
    Group,
    Rule,
    addcdiv,
    addcmul,
    bias_correction,
    check_betas,
    check_choice,
    check_eps,
    check_lr,
    check_weight_decay,
    elementwise,
    l2_gradient,
    lerp,
    root,
    root_terms,
    weight_decay_terms,
)

# Where ε goes in the denominator √v̂ + ε of Adam-like steps (v̂ = v / (1 − β₂ᵗ)):
#   "outside": √v̂ + ε (torch's Adam and NAdam, optax), "inside": √(v̂ + ε) (optax's eps_root),
#   "hat": √v + ε̂, the bias correction √(1 − β₂ᵗ) moved into the step size (Keras's Adam,
#   torch's RAdam, the paper's section 2).
EPS_PLACEMENTS = ("outside", "inside", "hat")
AMSGRAD_MAX_OF = ("v", "v_hat")


class AdamCoefficients(NamedTuple):
    neg_step_size: float  # −lr / (1 − β₁ᵗ), times √(1 − β₂ᵗ) for eps_placement="hat"
    one_minus_beta1: float  # lerp's weight w for m
    one: float  # 1, for lerp
    beta2: float
    one_minus_beta2: float
    # the denominator √v̂ + ε is ``root(v, h)``, with ε where eps_placement puts it
    divide_first: bool
    divisor: float
    eps_root: float
    eps: float
    torch_sqrt: bool  # √ as torch's CPU kernel rounds it (float32; see _torch_sqrt)
    amsgrad: bool
    max_divisor: float  # v_max ← max(v_max, v / max_divisor): 1, or 1 − β₂ᵗ for "v_hat"
    maximize: bool
    l2: float  # coupled weight decay (0 when decoupled)
    decay: float  # decoupled weight decay factor 1 − lr·λ (1 when coupled)


@elementwise
def adam(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, h: AdamCoefficients):
    r"""Adam: ``θ ← θ − lr · m̂ / (√v̂ + ε)``.

    Update (torch.optim.Adam / AdamW), t counting this parameter's steps from 1:

        θ ← θ (1 − lr λ)                 if decoupled_weight_decay (AdamW), else g ← g + λ θ
        m ← β₁ m + (1 − β₁) g
        v ← β₂ v + (1 − β₂) g²
        amsgrad:  v_max ← max(v_max, v), and v_max replaces v below
        θ ← θ − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)

    Switches (each library's choice in :mod:`descentlab.optim.conventions`):
        eps_placement="inside":  θ ← θ − lr / (1 − β₁ᵗ) · m / √(v / (1 − β₂ᵗ) + ε)
        eps_placement="hat":     θ ← θ − lr √(1 − β₂ᵗ) / (1 − β₁ᵗ) · m / (√v + ε)
        amsgrad_max_of="v_hat":  v_max ← max(v_max, v / (1 − β₂ᵗ)), used without further
                                 correction (not combinable with "hat")
        scalar_dtype="param":    1 − β₁ᵗ and 1 − β₂ᵗ computed in the parameters' dtype from β
                                 rounded to it (optax, Keras), not in float64 (torch)

    Defaults: lr = 1e-3, (β₁, β₂) = (0.9, 0.999), ε = 1e-8, λ = 0 (AdamW: λ = 1e-2).

    References:
        Kingma & Ba (2015), "Adam: A Method for Stochastic Optimization",
        https://arxiv.org/abs/1412.6980.
        Reddi, Kale & Kumar (2018), "On the Convergence of Adam and Beyond" (AMSGrad),
        https://openreview.net/forum?id=ryQu7f-RZ.
        Loshchilov & Hutter (2019), "Decoupled Weight Decay Regularization" (AdamW),
        https://arxiv.org/abs/1711.05101.

    Where libraries differ:
        - ε: torch and the paper's Algorithm 1 add ε to the bias-corrected √v̂. Keras 3 uses the
          paper's "ε̂" form from section 2: α_t = lr √(1 − β₂ᵗ)/(1 − β₁ᵗ), θ ← θ − α_t m/(√v + ε̂),
          with ε̂ = 1e-7, i.e. ε is not bias-corrected. optax ``adam`` adds ε outside like torch
          and has an extra ``eps_root`` (default 0) inside the root.
        - AMSGrad: torch keeps the max of the raw v and bias-corrects it afterwards; optax takes
          the max of the bias-corrected v̂; Reddi et al. use no bias correction and no ε.
        - Weight decay: torch's Adam adds λθ to the gradient (L2, it then passes through the
          moments); AdamW decays θ by lr·λ before the moments. Loshchilov & Hutter scale the
          decay by the schedule multiplier η_t, not by lr. optax ``adamw`` adds λθ to the
          update before scaling by lr (same as torch for a constant lr) with λ = 1e-4 by
          default; Keras 3 ``AdamW`` uses λ = 0.004; torch's AdamW λ = 1e-2.
    """
    p, g, exp_avg, exp_avg_sq = adam_moments(p, g, exp_avg, exp_avg_sq, h)
    if h.amsgrad:
        max_exp_avg_sq = np.maximum(max_exp_avg_sq, exp_avg_sq / h.max_divisor)
        denom = root(max_exp_avg_sq, h)
    else:
        denom = root(exp_avg_sq, h)
    # param.addcdiv_(exp_avg, denom, value=−step_size)
    return addcdiv(p, h.neg_step_size, exp_avg, denom), exp_avg, exp_avg_sq, max_exp_avg_sq


@elementwise
def adam_moments(p, g, exp_avg, exp_avg_sq, h):
    """What Adam, NAdam and RAdam share: weight decay (decoupled factor ``h.decay`` or L2
    ``h.l2``, one of them neutral), then both moment estimates, in torch's order and rounding.

    Returns ``(p, g, exp_avg, exp_avg_sq)``: ``g`` as the moments saw it.
    """
    p = p * h.decay
    g = l2_gradient(p, g, h.maximize, h.l2)
    exp_avg = lerp(exp_avg, g, h.one_minus_beta1, h.one)
    # exp_avg_sq.mul_(β₂).addcmul_(g, g, value=1 − β₂)
    exp_avg_sq = addcmul(exp_avg_sq * h.beta2, h.one_minus_beta2, g, g)
    return p, g, exp_avg, exp_avg_sq


def _coefficients(group: Group, state: dict, scalar: type = float) -> AdamCoefficients:
    state["step"] += 1
    step = state["step"]
    beta1, beta2 = (float(b) for b in group["betas"])
    l2, decay = weight_decay_terms(group)
    lr = float(group["lr"])
    bias_correction1 = bias_correction(beta1, step, scalar)
    bias_correction2 = bias_correction(beta2, step, scalar)
    placement = group["eps_placement"]
    of_v_hat = bool(group["amsgrad"]) and group["amsgrad_max_of"] == "v_hat"
    # the max of v̂ is already corrected: its root divides by nothing more
    terms = (root_terms(float(group["eps"]), placement) if of_v_hat else
             root_terms(float(group["eps"]), placement, bias_correction2, bias_correction2**0.5))
    return AdamCoefficients(
        neg_step_size=(-(lr * bias_correction2**0.5 / bias_correction1) if placement == "hat"
                       else -(lr / bias_correction1)),
        one_minus_beta1=1 - beta1,
        one=1.0,
        beta2=beta2,
        one_minus_beta2=1 - beta2,
        **terms,
        amsgrad=bool(group["amsgrad"]),
        max_divisor=bias_correction2 if of_v_hat else 1.0,
        maximize=bool(group["maximize"]),
        l2=l2,
        decay=decay,
    )


def check_adam_like(group: Group, eps_placements: tuple[str, ...] = EPS_PLACEMENTS) -> None:
    check_lr(group)
    check_eps(group)
    check_betas(group)
    check_weight_decay(group)
    check_choice(group, "eps_placement", eps_placements)
    check_choice(group, "scalar_dtype", SCALAR_DTYPES)


def _check(group: Group) -> None:
    check_adam_like(group)
    check_choice(group, "amsgrad_max_of", AMSGRAD_MAX_OF)
    if group["amsgrad_max_of"] == "v_hat" and group["eps_placement"] == "hat":
        raise ValueError("amsgrad_max_of='v_hat' cannot be combined with eps_placement='hat' "
                         "(the hat form corrects v in the step size, after the max)")


RULE = Rule(
    name="Adam",
    update=adam,
    arrays=("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    coefficients=_coefficients,
    check=_check,
    constant_flags=(*ROOT_FLAGS, "amsgrad"),
    neutral={**NO_L2_DECAY, **NO_EPS_ROOT},
    active=lambda group: (
        ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
        if group["amsgrad"]
        else ("exp_avg", "exp_avg_sq")
    ),
)
