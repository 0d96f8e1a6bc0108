"""The rules' element math on torch tensors, for parameters that are not on the CPU.

A rule's update is written once with arithmetic, ``fma``, ``addcmul``, ``addcdiv``,
``square_root``, ``np.maximum``, ``np.abs`` and ``np.sign`` (see
``descentlab.optim.rules._base``). Here the same function objects are rebuilt with ``np`` bound
to torch's versions of those three, ``fma``, ``lerp``, ``addcmul``, ``addcdiv`` and
``square_root`` bound to the torch operations whose rounding they stand for (on any device:
CUDA's addcmul and addcdiv round otherwise than the CPU's, and torch.optim calls them), and
every other helper they call (``root``, ...) rebuilt the same way, so a tensor on any device
runs the very code the NumPy and Numba executors run: no second copy of the math to keep in
step.
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

    maximum = staticmethod(torch.maximum)
    abs = staticmethod(torch.abs)
    sign = staticmethod(torch.sign)


def _fma(a, b, c: torch.Tensor) -> torch.Tensor:
    """``a·b + c`` rounded once: the operations torch.optim calls, which round so (see
    ``descentlab.optim.rules._fma``)."""
    if not isinstance(a, torch.Tensor):
        return torch.add(c, b, alpha=a)
    if not isinstance(b, torch.Tensor):
        return torch.add(c, a, alpha=b)
    return torch.addcmul(c, a, b)


def _lerp(a: torch.Tensor, b: torch.Tensor, w: float, one: float) -> torch.Tensor:
    """torch.lerp itself: it rounds w to the tensors' type before forming w − 1 (a Python float
    ``w - one`` would round the difference instead)."""
    return torch.lerp(a, b, w)


def _square_root(x: torch.Tensor, h: NamedTuple) -> torch.Tensor:
    """torch.sqrt itself, except for a float32 tensor on the CPU when ``h.torch_sqrt`` is
    false (the face's ``fused=True``): torch.sqrt is MKL's there and not correctly rounded,
    so the root is taken in float64 and rounded to float32. MKL's float64 root is not always
    correctly rounded either, but its errors are far below float32's resolution: the float32
    result equals the correctly rounded root for every float32 in [1, 4), which covers every
    significand (``test_a_float32_root_through_float64_is_correctly_rounded``)."""
    if h.torch_sqrt or x.dtype != torch.float32 or x.device.type != "cpu":
        return torch.sqrt(x)
    return torch.sqrt(x.double()).float()


def _addcmul(c: torch.Tensor, value: float, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """torch.addcmul itself, with ``value`` as torch.optim passes it: how it rounds depends on
    the device (``fma(value·a, b, c)`` on the CPU, otherwise on CUDA)."""
    return torch.addcmul(c, a, b, value=float(value))


def _addcdiv(c: torch.Tensor, value: float, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """torch.addcdiv itself, with ``value`` as torch.optim passes it (see ``_addcmul``)."""
    return torch.addcdiv(c, a, b, value=float(value))


# element functions that are torch operations on tensors, not rebuilt
_REPLACED: dict[str, Callable] = {"fma": _fma, "lerp": _lerp, "square_root": _square_root,
                                  "addcmul": _addcmul, "addcdiv": _addcdiv}

_REBUILT: dict[Callable, Callable] = {}


def on_tensors(function: Callable) -> Callable:
    """``function`` (an element-math function) with NumPy's names bound to torch's."""
    found = _REBUILT.get(function)
    if found is not None:
        return found
    names = dict(function.__globals__)
    names["np"] = _TorchMath
    names.update((name, _REPLACED[name]) for name in function.__code__.co_names
                 if name in _REPLACED)
    rebuilt = types.FunctionType(function.__code__, names, function.__name__,
                                 function.__defaults__, function.__closure__)
    _REBUILT[function] = rebuilt
    # helpers are looked up in the globals when called, so rebinding them here suffices
    for name in function.__code__.co_names:
        value = function.__globals__.get(name)
        if name not in _REPLACED and any(value is f for f in ELEMENTWISE):
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
