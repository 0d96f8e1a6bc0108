"""Executors run a rule over a parameter's elements.

The array-wise executor is the readable reference: it calls the rule's update on whole arrays
(NumPy makes temporaries for each intermediate) and writes the results back into the caller's
arrays. Faster executors must produce the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .rules import Rule


def arraywise(
    rule: Rule,
    param: np.ndarray,
    grad: np.ndarray,
    arrays: Sequence[np.ndarray | None],
    h: NamedTuple,
) -> None:
    """Apply one step of ``rule`` to ``param`` and its state ``arrays``, in place."""
    new_param, *new_arrays = rule.update(param, grad, *arrays, h)
    param[...] = new_param
    for array, value in zip(arrays, new_arrays, strict=True):
        if array is not None:
            array[...] = value
