"""The rules' element math on torch tensors, for parameters that are not on the CPU.

A rule's update is written once with arithmetic and ``np.sqrt``, ``np.maximum``, ``np.abs``
and ``np.sign`` (see ``descentlab.optim.rules._base``). Here the same function objects are
rebuilt with ``np`` bound to torch's versions of those four, and with every helper they call
(``lerp``, ``root``, ...) rebuilt the same way, so a tensor on any device runs the very code the
NumPy and Numba executors run: no second copy of the math to keep in step.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

from ..optim.rules import Rule
from ..optim.rules._base import ELEMENTWISE


class _TorchMath:
    """What the rules use of NumPy, on tensors."""

    sqrt = staticmethod(torch.sqrt)
    maximum = staticmethod(torch.maximum)
    abs = staticmethod(torch.abs)
    sign = staticmethod(torch.sign)


_REBUILT: dict[Callable, Callable] = {}


def on_tensors(function: Callable) -> Callable:
    """``function`` (an element-math function) with NumPy's names bound to torch's."""
    found = _REBUILT.get(function)
    if found is not None:
        return found
    names = dict(function.__globals__)
    names["np"] = _TorchMath
    rebuilt = types.FunctionType(function.__code__, names, function.__name__,
                                 function.__defaults__, function.__closure__)
    _REBUILT[function] = rebuilt
    # helpers are looked up in the globals when called, so rebinding them here suffices
    for name in function.__code__.co_names:
        value = function.__globals__.get(name)
        if value is not None and any(value is f for f in ELEMENTWISE):
            names[name] = on_tensors(value)
    return rebuilt


def step_tensors(rule: Rule, h: NamedTuple, param: torch.Tensor, grad: torch.Tensor,
                 arrays: Sequence[torch.Tensor | None]) -> None:
    """One step of ``rule`` on ``param`` and its state ``arrays``, in place, with torch ops."""
    new_param, *new_arrays = on_tensors(rule.update)(param, grad, *arrays, h)
    param.copy_(new_param)
    for array, value in zip(arrays, new_arrays, strict=True):
        if array is not None and value is not array:
            array.copy_(value)
