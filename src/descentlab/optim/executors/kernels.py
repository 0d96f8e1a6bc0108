"""The compiled loops of the fused executor: each rule's update, inlined into one parallel pass.

A kernel steps a whole batch of parameters in one call. It receives

- ``pointers``: int64 ``(members, 5)``, the data addresses of each member's parameter,
  gradient and up to three state arrays (columns a rule does not use repeat the parameter's
  address and are never read);
- ``blocks``: int64 ``(blocks, 3)``, rows ``(member, first element, element count)``: the work,
  cut so that big arrays are shared between threads and small ones cost one row each;
- ``h``: the rule's per-step coefficients, floats already of the arrays' dtype;
- ``like``: a one-element zero array of that dtype (it fixes the element type).

Every element is read once and written once, in registers; nothing is allocated. The rule's
flags that choose which state arrays exist are compile-time constants (one kernel per
combination), so the inner loop holds no test for them and vectorises; so are the coefficient
flags the rule names in ``constant_flags``, whose value is taken from ``h`` when the kernel is
looked up.

Kernels are compiled on first use and kept in Numba's on-disk cache, so a second process loads
them instead of compiling. Numba's cache does not notice an edited rule in another file, so the
code of every element function is part of each kernel's cache key (``_FINGERPRINT``).
"""

from __future__ import annotations

import hashlib
import marshal
from collections.abc import Callable
from typing import NamedTuple

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic, register_jitable

from ...native import inlined_calls
from ...native.addresses import array_at
from ...native.inlined_calls import call_inlined
from ...native.variant_names import variant_named
from ..rules import Rule, _torch_sqrt
from ..rules._base import ELEMENTWISE

MAX_ARRAYS = 3  # the most state arrays any rule keeps (Adam with AMSGrad, RMSprop)
COLUMNS = 2 + MAX_ARRAYS

for _function in ELEMENTWISE:
    register_jitable(_function)

# the compiled form of every element function (bytecode, constants, names), of the square
# root's emulation and of the inlined call: an edited rule changes it, and with it every
# kernel's cache key
_FINGERPRINT = hashlib.sha256(b"".join(marshal.dumps(f.__code__) for f in ELEMENTWISE)
                              + _torch_sqrt.fingerprint()
                              + inlined_calls.fingerprint()).hexdigest()

# (rule, active arrays, constant flags' mask and values) -> (kernel, blocks function)
_KERNELS: dict[tuple[str, tuple[bool, ...], int, int], tuple[Callable, Callable]] = {}


def kernel_for(rule: Rule, active: tuple[bool, ...], h: NamedTuple) -> Callable:
    """The kernel for ``rule`` with the state arrays flagged in ``active`` in use and the
    values ``h`` has in the rule's ``constant_flags``: it steps every block on Numba's thread
    pool."""
    return _kernels(rule, active, h)[0]


def blocks_function_for(rule: Rule, active: tuple[bool, ...], h: NamedTuple) -> Callable:
    """The same rule's serial loop ``(pointers, blocks, first, last, h, like)``, stepping blocks
    ``first`` to ``last - 1`` on the calling thread: a jitable function, for compiled code that
    runs on the threads of another pool."""
    return _kernels(rule, active, h)[1]


def constant_flags(rule: Rule, h: NamedTuple) -> tuple[int, int]:
    """``(mask, values)``: bit i of ``mask`` is set for each of ``h``'s fields the rule compiles
    as a constant, and the same bit of ``values`` is that field's value in ``h``."""
    mask = values = 0
    for name in rule.constant_flags:
        value = getattr(h, name)
        if not isinstance(value, bool):
            raise TypeError(f"{rule.name}'s constant flag {name}={value!r} is not a bool")
        bit = 1 << h._fields.index(name)
        mask |= bit
        if value:
            values |= bit
    return mask, values


def _kernels(rule: Rule, active: tuple[bool, ...], h: NamedTuple) -> tuple[Callable, Callable]:
    key = (rule.name, active, *constant_flags(rule, h))
    if key not in _KERNELS:
        _KERNELS[key] = _make_kernels(rule.update, len(rule.arrays), active, key[2], key[3],
                                      _FINGERPRINT)
    return _KERNELS[key]


@register_jitable
def with_constant_flags(h, mask, values):
    """``h`` with each field whose bit is set in ``mask`` replaced by the constant bit of
    ``values`` (both compile-time constants): LLVM then removes the branches on those fields
    before it vectorises.

    A function rather than the intrinsic itself, because a kernel's closure refers to it: the
    cache key pickles it by name, where an intrinsic would pickle with a new id per process.
    """
    return _with_constant_flags(h, mask, values)


@intrinsic
def _with_constant_flags(typingctx, h, mask, values):
    if not isinstance(mask, types.IntegerLiteral) or not isinstance(values, types.IntegerLiteral):
        return None  # Numba asks again with the closure's integers as literals

    def codegen(context, builder, signature, args):
        fixed = args[0]
        for i, kind in enumerate(h.types):
            if mask.literal_value >> i & 1:
                value = context.get_constant(kind, bool(values.literal_value >> i & 1))
                fixed = builder.insert_value(fixed, value, i)
        return fixed

    return h(h, mask, values), codegen


def _make_kernels(update: Callable, n: int, active: tuple[bool, ...], mask: int, values: int,
                  fingerprint: str):
    # The closure's variables are constants to Numba: branches on them are removed at compile
    # time, and they are part of the on-disk cache key. The helpers are jitable functions, not
    # dispatchers: a dispatcher among a cached function's closure variables would change the
    # cache key in every process (it pickles with a random id).
    a0, a1, a2 = (*active, False, False, False)[:MAX_ARRAYS]

    def step_block(pointers, blocks, b, h, like):
        h = with_constant_flags(h, mask, values)
        zero = like[0]
        k = blocks[b, 0]
        skip = blocks[b, 1] * like.itemsize
        count = blocks[b, 2]
        p = array_at(pointers[k, 0] + skip, count, like)
        g = array_at(pointers[k, 1] + skip, count, like)
        s0 = array_at(pointers[k, 2] + skip, count, like)
        s1 = array_at(pointers[k, 3] + skip, count, like)
        s2 = array_at(pointers[k, 4] + skip, count, like)
        for i in range(count):
            x0 = s0[i] if a0 else zero
            x1 = s1[i] if a1 else zero
            x2 = s2[i] if a2 else zero
            if n == 1:
                p[i], x0 = update(p[i], g[i], x0, h)
            elif n == 2:
                p[i], x0, x1 = update(p[i], g[i], x0, x1, h)
            else:
                p[i], x0, x1, x2 = update(p[i], g[i], x0, x1, x2, h)
            if a0:
                s0[i] = x0
            if a1:
                s1[i] = x1
            if a2:
                s2[i] = x2

    # each function below is one variant of a factory's, named for it (native.variant_names):
    # step_block by the element functions' code too, which its closure records by name only
    variant_named(step_block, fingerprint, marshal.dumps(update.__code__))
    # not inlined by Numba: LLVM vectorises it in its own pass, and its callers inline it through
    # call_inlined (native.inlined_calls says why a plain call is not enough)
    register_jitable(step_block)

    def step_blocks(pointers, blocks, first, last, h, like):
        fingerprint  # noqa: B018 - referenced so that it is part of the cache key
        for b in range(first, last):
            call_inlined(step_block, (pointers, blocks, b, h, like))

    register_jitable(variant_named(step_blocks))

    def kernel(pointers, blocks, h, like):
        fingerprint  # noqa: B018
        for b in numba.prange(blocks.shape[0]):
            call_inlined(step_block, (pointers, blocks, b, h, like))

    return numba.njit(parallel=True, cache=True, nogil=True)(variant_named(kernel)), step_blocks


def coefficients_as(h, dtype: np.dtype):
    """``h`` with its floats converted to ``dtype``; flags left as they are.

    NumPy computes ``float32_array * python_float`` in float32 (the float is cast first). Both
    the kernels and the array-wise reference receive ``h`` converted here, so scalar
    arithmetic inside the element math (``lerp``'s ``w - one``) rounds alike in both.
    """
    check_coefficients(h)
    scalar = dtype.type
    return type(h)(*(v if isinstance(v, bool) else scalar(v) for v in h))


def check_coefficients(h) -> None:
    """Refuse coefficients a kernel cannot take: each must be a Python float or bool (an int
    would compile another kernel, and other types none)."""
    for name, value in zip(h._fields, h, strict=True):
        if not isinstance(value, bool | float):
            raise TypeError(f"coefficient {name}={value!r} of type {type(value).__name__} is "
                            "not supported (a kernel takes floats and bools)")
