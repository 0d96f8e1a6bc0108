"""The optimizers for NumPy arrays, with torch.optim's names, signatures and defaults.

Each class only states its constructor; the math lives in ``rules`` (one definition per
algorithm) and the machinery in ``optimizer``. The algorithm's update, references and the
differences between torch.optim, optax and Keras are appended to each class's docstring from
its rule, so ``help(descentlab.optim.Adam)`` shows them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterable
from typing import Any

from . import conventions, rules
from .optimizer import Optimizer

Betas = tuple[float, float]

_CONVENTION_DOC = """
    Every optimizer also takes ``convention="torch" | "optax" | "keras"``: a preset that sets the
    switches and the defaults to what that library computes under the algorithm's name (see
    :mod:`descentlab.optim.conventions`); arguments passed explicitly win over the preset.
"""


def _documented(cls: type[Optimizer]) -> type[Optimizer]:
    """Append the rule's math to the class docstring, and let ``__init__`` take a convention.

    The wrapped ``__init__`` keeps its signature (``help`` and ``defaults_of`` show torch's
    defaults); with ``convention`` other than torch it fills every argument the caller did not
    pass from the preset of the class's own algorithm.
    """
    own = inspect.cleandoc(cls.__doc__ or "")
    cls.__doc__ = (f"{own}\n\n{inspect.cleandoc(_CONVENTION_DOC)}\n\n"
                   f"{inspect.cleandoc(cls.rule.update.__doc__ or '')}")
    init = cls.__init__
    signature = inspect.signature(init)
    algorithm = cls.__name__

    @functools.wraps(init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        given = signature.bind(self, *args, **kwargs).arguments
        kwargs.update(conventions.apply(algorithm, given.get("convention", "torch"), given))
        init(self, *args, **kwargs)

    cls.__init__ = __init__
    return cls


@_documented
class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    Plain gradient descent is this optimizer stepped with full-batch gradients.

    Example:
        >>> import numpy as np
        >>> from descentlab.optim import SGD
        >>> w = np.array([1.0, -2.0])
        >>> opt = SGD([w], lr=0.1, momentum=0.9)
        >>> opt.step([2 * w])          # gradient of |w|²
        >>> w
        array([ 0.8, -1.6])
    """

    rule = rules.SGD

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
        lr_in_momentum: bool = False,
        convention: str = "torch",
        executor: str = "fused",
        nonfinite: str = "raise",
    ) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      lr_in_momentum=lr_in_momentum), executor=executor,
                         nonfinite=nonfinite)


@_documented
class Adagrad(Optimizer):
    """AdaGrad: per-coordinate learning rates from the sum of squared gradients."""

    rule = rules.ADAGRAD

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
        eps_placement: str = "outside",
        convention: str = "torch",
        executor: str = "fused",
        nonfinite: str = "raise",
    ) -> None:
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      eps_placement=eps_placement), executor=executor,
                         nonfinite=nonfinite)


@_documented
class RMSprop(Optimizer):
    """RMSprop: steps scaled by a running root-mean-square of the gradients."""

    rule = rules.RMSPROP

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
        eps_placement: str = "outside",
        lr_in_momentum: bool = False,
        convention: str = "torch",
        executor: str = "fused",
        nonfinite: str = "raise",
    ) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      eps_placement=eps_placement,
                                      lr_in_momentum=lr_in_momentum),
                         executor=executor, nonfinite=nonfinite)


@_documented
class Adadelta(Optimizer):
    """Adadelta: unit-consistent steps from running averages of gradients and updates."""

    rule = rules.ADADELTA

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
        convention: str = "torch",
        executor: str = "fused",
        nonfinite: str = "raise",
    ) -> None:
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay),
                         executor=executor, nonfinite=nonfinite)


@_documented
class Adam(Optimizer):
    """Adam, with the AMSGrad and decoupled-weight-decay (AdamW) options."""

    rule = rules.ADAM

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: Betas = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
        eps_placement: str = "outside",
        amsgrad_max_of: str = "v",
        scalar_dtype: str = "float64",
        convention: str = "torch",
        executor: str = "fused",
        nonfinite: str = "raise",
    ) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      eps_placement=eps_placement,
                                      amsgrad_max_of=amsgrad_max_of,
                                      scalar_dtype=scalar_dtype),
                         executor=executor, nonfinite=nonfinite)


@_documented
class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay (``decoupled_weight_decay=True``, λ = 1e-2)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: Betas = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        eps_placement: str = "outside",
        amsgrad_max_of: str = "v",
        scalar_dtype: str = "float64",
        convention: str = "torch",
        executor: str = "fused",
        nonfinite: str = "raise",
    ) -> None:
        # every argument is passed on, so Adam's own preset adds nothing to AdamW's
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True,
                         eps_placement=eps_placement, amsgrad_max_of=amsgrad_max_of,
                         scalar_dtype=scalar_dtype,
                         convention=convention, executor=executor, nonfinite=nonfinite)


@_documented
class Adamax(Optimizer):
    """Adamax: Adam with an infinity-norm second moment."""

    rule = rules.ADAMAX

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: Betas = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
        eps_placement: str = "inside",
        scalar_dtype: str = "float64",
        convention: str = "torch",
        executor: str = "fused",
        nonfinite: str = "raise",
    ) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      eps_placement=eps_placement,
                                      scalar_dtype=scalar_dtype),
                         executor=executor, nonfinite=nonfinite)


@_documented
class NAdam(Optimizer):
    """NAdam: Adam with Nesterov momentum."""

    rule = rules.NADAM

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: Betas = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
        eps_placement: str = "outside",
        momentum_schedule: str = "dozat",
        scalar_dtype: str = "float64",
        convention: str = "torch",
        executor: str = "fused",
        nonfinite: str = "raise",
    ) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize, eps_placement=eps_placement,
                                      momentum_schedule=momentum_schedule,
                                      scalar_dtype=scalar_dtype),
                         executor=executor, nonfinite=nonfinite)


@_documented
class RAdam(Optimizer):
    """RAdam: rectified Adam."""

    rule = rules.RADAM

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: Betas = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
        eps_placement: str = "hat",
        rectify_threshold: float = 5.0,
        rectify_fallback: str = "momentum",
        scalar_dtype: str = "float64",
        convention: str = "torch",
        executor: str = "fused",
        nonfinite: str = "raise",
    ) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize, eps_placement=eps_placement,
                                      rectify_threshold=rectify_threshold,
                                      rectify_fallback=rectify_fallback,
                                      scalar_dtype=scalar_dtype),
                         executor=executor, nonfinite=nonfinite)


@_documented
class Lion(Optimizer):
    """Lion (EvoLved Sign Momentum). Not in torch.optim; defaults are the authors'."""

    rule = rules.LION

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-4,
        betas: Betas = (0.9, 0.99),
        weight_decay: float = 0,
        *,
        maximize: bool = False,
        convention: str = "torch",
        executor: str = "fused",
        nonfinite: str = "raise",
    ) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay,
                                      maximize=maximize), executor=executor,
                         nonfinite=nonfinite)


# keywords that choose how the algorithm runs or guards itself, not what it computes
IMPLEMENTATION = ("executor", "nonfinite")

OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.__name__: cls
    for cls in (SGD, Adagrad, RMSprop, Adadelta, Adam, AdamW, Adamax, NAdam, RAdam, Lion)
}


def defaults_of(cls: type[Optimizer]) -> dict[str, Any]:
    """The constructor's hyperparameters and their defaults (lr, betas, ...), in order."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(cls).parameters.items()
        if parameter.default is not inspect.Parameter.empty and name not in IMPLEMENTATION
    }
