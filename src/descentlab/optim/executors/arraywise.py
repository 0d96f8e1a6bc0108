"""The array-wise executor: the readable reference every faster executor must equal.

It calls the rule's update on whole arrays (NumPy makes a temporary for each intermediate) and
writes the results back into the caller's arrays.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import NamedTuple

import numpy as np

from ..rules import Rule
from .kernels import coefficients_as


def step_arrays(
    rule: Rule,
    param: np.ndarray,
    grad: np.ndarray,
    arrays: Sequence[np.ndarray | None],
    h: NamedTuple,
) -> None:
    """Apply one step of ``rule`` to ``param`` and its state ``arrays``, in place."""
    # the coefficients in the arrays' type, as the compiled kernels receive them: the element
    # math's scalar arithmetic (lerp's w − 1) then rounds as theirs does
    h = coefficients_as(h, param.dtype)
    new_param, *new_arrays = rule.update(param, grad, *arrays, h)
    param[...] = new_param
    for array, value in zip(arrays, new_arrays, strict=True):
        if array is not None:
            array[...] = value


def step_member(rule: Rule, h: NamedTuple, params: Sequence[np.ndarray],
                grads: Sequence[np.ndarray], columns: Sequence[Sequence[np.ndarray] | None],
                i: int) -> None:
    """Step member ``i`` of a batch laid out as ``Executor.run`` receives it."""
    step_arrays(rule, params[i], grads[i], [c[i] if c is not None else None for c in columns], h)


class ArrayWise:
    """Steps one parameter at a time with :func:`step_arrays`."""

    name = "arraywise"

    def forget(self) -> None:
        """Nothing is remembered between steps."""

    def run(
        self,
        rule: Rule,
        h: NamedTuple,
        key: Hashable,
        params: Sequence[np.ndarray],
        grads: Sequence[np.ndarray],
        columns: Sequence[Sequence[np.ndarray] | None],
    ) -> None:
        """Step ``params`` (all sharing the coefficients ``h``); see ``executors.Executor``."""
        for i in range(len(params)):
            step_member(rule, h, params, grads, columns, i)
