"""Adadelta: steps whose units match the parameters', from two running averages."""

from __future__ import annotations

from typing import NamedTuple

from ._base import (
    NO_DECAY,
    SQRT_FLAGS,
    Group,
    Rule,
    addcmul,
    check_eps,
    check_fraction,
    check_lr,
    check_weight_decay,
    elementwise,
    fma,
    l2_gradient,
    square_root,
    weight_decay_terms,
)


class AdadeltaCoefficients(NamedTuple):
    neg_lr: float
    rho: float
    one_minus_rho: float
    eps: float
    torch_sqrt: bool  # √ as torch's CPU kernel rounds it (float32; see _torch_sqrt)
    maximize: bool
    weight_decay: float  # coupled L2 λ (0 when decoupled)
    decay: float  # decoupled factor 1 − lr·λ (1 when coupled)


@elementwise
def adadelta(p, g, square_avg, acc_delta, h: AdadeltaCoefficients):
    r"""Adadelta: ``θ ← θ − lr · Δ``, ``Δ = √(u + ε) / √(v + ε) · g``.

    Update (torch.optim.Adadelta):

        g ← g + λ θ                    (weight_decay λ; θ ← θ (1 − lr λ) if decoupled)
        v ← ρ v + (1 − ρ) g²                          (running average of squared gradients)
        Δ = √(u + ε) / √(v + ε) · g
        u ← ρ u + (1 − ρ) Δ²                          (running average of squared *updates*)
        θ ← θ − lr · Δ

    Defaults: lr = 1.0, ρ = 0.9, ε = 1e-6, λ = 0.

    Reference:
        Zeiler (2012), "ADADELTA: An Adaptive Learning Rate Method",
        https://arxiv.org/abs/1212.5701 (Algorithm 1: no learning rate, ρ = 0.95, ε = 1e-6).

    Where libraries differ:
        - torch adds an lr (default 1.0, which is the paper's rule) and uses ρ = 0.9.
        - Keras 3 ``Adadelta``: lr = 1e-3, ρ = 0.95, ε = 1e-7: with lr = 1e-3 it moves a
          thousand times slower than the paper's method.
        - optax ``adadelta``: lr has no default, ρ = 0.9, ε = 1e-6.
        All of them accumulate the *unscaled* Δ in u, so lr changes the step but not the
        accumulator.
        It is not Adam: there is no first moment and no bias correction (one of the seed
        articles gives Adam's equations under this name).
    """
    p = p * h.decay
    g = l2_gradient(p, g, h.maximize, h.weight_decay)
    # torch's operations, each rounded as torch rounds it (fma: see _fma)
    square_avg = addcmul(square_avg * h.rho, h.one_minus_rho, g, g)  # .mul_(ρ).addcmul_(g, g)
    std = square_root(square_avg + h.eps, h)
    delta = square_root(acc_delta + h.eps, h) / std * g
    acc_delta = addcmul(acc_delta * h.rho, h.one_minus_rho, delta, delta)
    return fma(delta, h.neg_lr, p), square_avg, acc_delta  # param.add_(delta, alpha=-lr)


def _coefficients(group: Group, state: dict, scalar: type = float) -> AdadeltaCoefficients:
    state["step"] += 1
    rho = float(group["rho"])
    l2, decay = weight_decay_terms(group)
    return AdadeltaCoefficients(
        neg_lr=-float(group["lr"]),
        rho=rho,
        one_minus_rho=1.0 - rho,
        eps=float(group["eps"]),
        torch_sqrt=False,
        maximize=bool(group["maximize"]),
        weight_decay=l2,
        decay=decay,
    )


def _check(group: Group) -> None:
    check_lr(group)
    check_fraction(group, "rho", "Invalid rho value: {}")
    check_eps(group)
    check_weight_decay(group)


RULE = Rule(
    name="Adadelta",
    update=adadelta,
    arrays=("square_avg", "acc_delta"),
    coefficients=_coefficients,
    check=_check,
    constant_flags=SQRT_FLAGS,
    steady=lambda group: True,
    neutral=NO_DECAY,
)
