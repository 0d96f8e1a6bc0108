"""RMSprop: steps divided by a running root-mean-square of recent gradients."""

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
    addcmul,
    at_least_zero,
    check_choice,
    check_eps,
    check_flag,
    check_lr,
    check_weight_decay,
    elementwise,
    fma,
    l2_gradient,
    lerp,
    lr_scales,
    uncorrected_root,
    uncorrected_root_terms,
    weight_decay_terms,
)


class RMSpropCoefficients(NamedTuple):
    step_scale: float  # −lr, or −1 when lr is already inside the buffer
    grad_scale: float  # 1, or lr when lr goes inside the buffer (lr_in_momentum)
    alpha: float
    one_minus_alpha: float
    one: float  # 1, for lerp
    eps_root: float  # d = uncorrected_root(v̄, h), see _base
    eps: float
    torch_sqrt: bool  # √ as torch's CPU kernel rounds it (float32; see _torch_sqrt)
    momentum: float
    centered: bool
    maximize: bool
    weight_decay: float  # coupled L2 λ (0 when decoupled)
    decay: float  # decoupled factor 1 − lr·λ (1 when coupled)


@elementwise
def rmsprop(p, g, square_avg, grad_avg, momentum_buffer, h: RMSpropCoefficients):
    r"""RMSprop: ``θ ← θ − lr · g / (√v + ε)``.

    Update (torch.optim.RMSprop):

        g ← g + λ θ                    (weight_decay λ; θ ← θ (1 − lr λ) if decoupled)
        v ← α v + (1 − α) g²
        centered:  ḡ ← α ḡ + (1 − α) g,   v̄ = v − ḡ²    (else v̄ = v)
        d = √v̄ + ε                                   (eps_placement="inside": d = √(v̄ + ε))
        momentum μ > 0:  b ← μ b + g / d,  θ ← θ − lr · b
        otherwise:       θ ← θ − lr · g / d

    With ``lr_in_momentum`` (Keras, optax) the buffer holds steps already scaled by lr:
    b ← μ b + lr · g / d and θ ← θ − b. Equal to torch's while lr is constant.

    Defaults: lr = 1e-2, α = 0.99, ε = 1e-8, λ = 0, μ = 0, centered = False.

    References:
        Hinton, Srivastava & Swersky (2012), Neural Networks for Machine Learning, lecture 6e,
        https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf (no paper;
        decay 0.9, no ε).
        Graves (2013), "Generating Sequences With Recurrent Neural Networks", eq. 38-41,
        https://arxiv.org/abs/1308.0850 (the centered variant, with momentum).

    Where libraries differ:
        - torch: α = 0.99 and ε outside the root.
        - optax ``rmsprop``: decay = 0.9, ε = 1e-8 *inside* the root (√(v + ε); recent
          versions have ``eps_in_sqrt=False`` for torch's placement), and its momentum trace
          accumulates updates already scaled by lr.
        - Keras 3 ``RMSprop``: ρ = 0.9, ε = 1e-7 inside the root, lr = 1e-3, and lr inside the
          momentum buffer (b ← μ b + lr g/d), which differs from torch once lr changes.
        With α = 0.99 the first step is about 10 g/|g| = 10·sign(g) times lr; with 0.9 it is
        about 3.2·sign(g): the two defaults give visibly different starts.
    """
    p = p * h.decay
    g = l2_gradient(p, g, h.maximize, h.weight_decay)
    # torch's operations, each rounded as torch rounds it (fma: see _fma)
    square_avg = addcmul(square_avg * h.alpha, h.one_minus_alpha, g, g)  # .mul_(α).addcmul_(g, g)
    if h.centered:
        grad_avg = lerp(grad_avg, g, h.one_minus_alpha, h.one)
        variance = addcmul(square_avg, -h.one, grad_avg, grad_avg)  # v.addcmul(ḡ, ḡ, value=-1)
    else:
        variance = square_avg
    avg = uncorrected_root(variance, h)
    # multiplying by grad_scale = 1.0 is exact: torch's rounding is kept when lr stays outside
    if h.momentum > 0:
        momentum_buffer = addcdiv(momentum_buffer * h.momentum, h.grad_scale, g, avg)
        p = fma(momentum_buffer, h.step_scale, p)  # param.add_(buf, alpha=-lr)
    else:
        p = addcdiv(p, h.step_scale, h.grad_scale * g, avg)  # param.addcdiv_(g, avg, value=-lr)
    return p, square_avg, grad_avg, momentum_buffer


def _coefficients(group: Group, state: dict, scalar: type = float) -> RMSpropCoefficients:
    state["step"] += 1
    alpha = float(group["alpha"])
    step_scale, grad_scale = lr_scales(group)
    l2, decay = weight_decay_terms(group)
    return RMSpropCoefficients(
        step_scale=step_scale,
        grad_scale=grad_scale,
        alpha=alpha,
        one_minus_alpha=1.0 - alpha,
        one=1.0,
        **uncorrected_root_terms(float(group["eps"]), group["eps_placement"]),
        momentum=float(group["momentum"]),
        centered=bool(group["centered"]),
        maximize=bool(group["maximize"]),
        weight_decay=l2,
        decay=decay,
    )


def _check(group: Group) -> None:
    check_lr(group)
    check_eps(group)
    at_least_zero(group, "momentum", "Invalid momentum value: {}")
    check_weight_decay(group)
    at_least_zero(group, "alpha", "Invalid alpha value: {}")
    check_choice(group, "eps_placement", ROOT_PLACEMENTS)
    check_flag(group, "lr_in_momentum")


def _active(group: Group) -> tuple[str, ...]:
    names = ["square_avg"]
    if group["centered"]:
        names.append("grad_avg")
    if group["momentum"] > 0:
        names.append("momentum_buffer")
    return tuple(names)


RULE = Rule(
    name="RMSprop",
    update=rmsprop,
    arrays=("square_avg", "grad_avg", "momentum_buffer"),
    coefficients=_coefficients,
    check=_check,
    active=_active,
    constant_flags=(*SQRT_FLAGS, "centered"),
    steady=lambda group: True,
    neutral={**NO_DECAY, **NO_EPS_ROOT, "grad_scale": 1.0, "momentum": 0.0},
)
