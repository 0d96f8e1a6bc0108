"""Stochastic gradient descent, with heavy-ball or Nesterov momentum."""

from __future__ import annotations

from typing import NamedTuple

from ._base import (
    NO_DECAY,
    Group,
    Rule,
    at_least_zero,
    check_finite,
    check_flag,
    check_lr,
    check_weight_decay,
    elementwise,
    fma,
    l2_gradient,
    lr_scales,
    weight_decay_terms,
)


class SGDCoefficients(NamedTuple):
    step_scale: float  # −lr, or −1 when lr is already inside the buffer
    grad_scale: float  # 1, or lr when lr goes inside the buffer (lr_in_momentum)
    momentum: float
    one_minus_dampening: float
    nesterov: bool
    maximize: bool
    weight_decay: float  # coupled L2 λ (0 when decoupled)
    decay: float  # decoupled factor 1 − lr·λ (1 when coupled)
    first: bool  # the buffer starts as a copy of the first gradient, without dampening


@elementwise
def sgd(p, g, momentum_buffer, h: SGDCoefficients):
    r"""SGD: ``θ ← θ − lr · d``.

    Update (torch.optim.SGD), with g the gradient (negated if ``maximize``):

        g ← g + λ θ                    (weight_decay λ; θ ← θ (1 − lr λ) if decoupled)
        b ← g                          at the first step with momentum μ ≠ 0
        b ← μ b + (1 − τ) g            afterwards (dampening τ)
        d ← g + μ b  if nesterov,  else  d ← b   (d ← g when μ = 0)
        θ ← θ − lr · d

    With ``lr_in_momentum`` (Keras) the buffer holds steps already scaled by lr: g is replaced
    by lr·g above and θ ← θ − d. The two agree while lr is constant; when a schedule changes
    lr, torch's buffer takes the new lr at once, Keras's only for new gradients.

    Plain (full-batch) gradient descent is this rule with μ = 0, stepped with the gradient of
    the whole training set; mini-batch SGD is the same rule stepped with mini-batch gradients.

    Defaults: lr = 1e-3, μ = 0, τ = 0, λ = 0. Nesterov needs μ > 0 and τ = 0.

    References:
        Robbins & Monro (1951), "A stochastic approximation method",
        https://doi.org/10.1214/aoms/1177729586.
        Polyak (1964), heavy-ball momentum, https://doi.org/10.1016/0041-5553(64)90137-5.
        Sutskever, Martens, Dahl & Hinton (2013), "On the importance of initialization and
        momentum in deep learning", https://proceedings.mlr.press/v28/sutskever13.html.

    Where libraries differ:
        - torch.optim and optax's ``sgd`` (``trace`` of raw gradients, then scaled by lr)
          keep lr outside the buffer; Keras 3 puts it inside (``v ← μ v − lr g; θ ← θ + v``).
          They agree only while lr is constant: after a schedule changes lr, torch and optax
          apply the new lr to the whole buffer, Keras only to new gradients. optax has no
          dampening.
        - torch does not dampen the first step (b₁ = g₁); with τ > 0 the first step is larger
          than the steady-state formula suggests.
        - Sutskever et al. write Nesterov as a look-ahead gradient at θ + μ v; torch, Keras and
          optax use the equivalent reformulation d = g + μ b on the current parameters, which
          gives the same iterates only up to that change of variables.
    """
    p = p * h.decay
    g = l2_gradient(p, g, h.maximize, h.weight_decay) * h.grad_scale
    if h.momentum != 0:
        if h.first:
            momentum_buffer = g
        else:
            # buf.mul_(μ).add_(g, alpha=1 − dampening)
            momentum_buffer = fma(g, h.one_minus_dampening, momentum_buffer * h.momentum)
        g = fma(momentum_buffer, h.momentum, g) if h.nesterov else momentum_buffer
    return fma(g, h.step_scale, p), momentum_buffer  # param.add_(g, alpha=-lr)


def _coefficients(group: Group, state: dict, scalar: type = float) -> SGDCoefficients:
    step_scale, grad_scale = lr_scales(group)
    l2, decay = weight_decay_terms(group)
    return SGDCoefficients(
        step_scale=step_scale,
        grad_scale=grad_scale,
        momentum=float(group["momentum"]),
        one_minus_dampening=1.0 - float(group["dampening"]),
        nesterov=bool(group["nesterov"]),
        maximize=bool(group["maximize"]),
        weight_decay=l2,
        decay=decay,
        # torch creates the buffer on the first step that has momentum, from that gradient
        first="momentum_buffer" not in state,
    )


def _check(group: Group) -> None:
    check_lr(group)
    at_least_zero(group, "momentum", "Invalid momentum value: {}")
    check_finite(group, "dampening")
    check_weight_decay(group)
    check_flag(group, "lr_in_momentum")
    if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening (nesterov="
                         f"True with momentum={group['momentum']}, "
                         f"dampening={group['dampening']})")


RULE = Rule(
    name="SGD",
    update=sgd,
    arrays=("momentum_buffer",),
    coefficients=_coefficients,
    check=_check,
    active=lambda group: ("momentum_buffer",) if group["momentum"] != 0 else (),
    scalars={},  # torch's SGD counts no steps
    constant_flags=("nesterov",),
    neutral={**NO_DECAY, "grad_scale": 1.0, "momentum": 0.0},
)
