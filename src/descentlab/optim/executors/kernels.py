"""The compiled loops of the fused executor: each rule's update, inlined into one serial pass
over a share of a batch's blocks.

A blocks function (:func:`blocks_function_for`) steps blocks ``first`` to ``last - 1`` of a
batch on the calling thread. It receives

- ``pointers``: int64 ``(members, 5)``, the data addresses of each member's parameter,
  gradient and up to three state arrays (columns a rule does not use repeat the parameter's
  address and are never read);
- ``blocks``: int64 ``(blocks, 3)``, rows ``(member, first element, element count)``: the work,
  cut so that big arrays are shared between threads and small ones cost one row each;
- ``h``: the rule's per-step coefficients, floats already of the arrays' dtype;
- ``like``: a one-element zero array of that dtype (it fixes the element type).

Every element is read once and written once, in registers; nothing is allocated. The rule's
flags that choose which state arrays exist are compile-time constants (one loop per
combination), so the inner loop holds no test for them and vectorises; so are the coefficient
flags the rule names in ``constant_flags``, and its ``neutral`` coefficients while they hold
their neutral value, both taken from ``h`` when the loop is looked up (:func:`constants`).

Every pool runs this one loop: ``shares`` wraps it in a function other threads call by its
address (Numba's pool, the helper thread, torch's OpenMP team). Its machine code comes from
compiling that wrapper, on first use; Numba's on-disk cache keeps it, so a second process loads
it instead of compiling. Numba's cache does not notice an edited rule in another file, so the
code of every element function is part of each loop's cache key (``_FINGERPRINT``).
"""

from __future__ import annotations

import hashlib
import math
import operator
import struct
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numba import types
from numba.extending import intrinsic, register_jitable

from ...native import inlined_calls
from ...native.addresses import array_at
from ...native.inlined_calls import call_inlined
from ...native.variant_names import code_bytes, variant_named
from ..rules import Rule, _torch_sqrt
from ..rules._base import ELEMENTWISE

MAX_ARRAYS = 3  # the most state arrays any rule keeps (Adam with AMSGrad, RMSprop)
COLUMNS = 2 + MAX_ARRAYS

for _function in ELEMENTWISE:
    register_jitable(_function)

# the compiled form of every element function (bytecode, constants, names), of the square
# root's emulation and of the inlined call: an edited rule changes it, and with it every
# kernel's cache key
_FINGERPRINT = hashlib.sha256(b"".join(code_bytes(f.__code__) for f in ELEMENTWISE)
                              + _torch_sqrt.fingerprint()
                              + inlined_calls.fingerprint()).hexdigest()

# (rule, active arrays, constants) -> blocks function
_LOOPS: dict[tuple[str, tuple[bool, ...], int], Callable] = {}


def blocks_function_for(rule: Rule, active: tuple[bool, ...], h: NamedTuple) -> Callable:
    """``rule``'s serial loop ``(pointers, blocks, first, last, h, like)`` with the state arrays
    flagged in ``active`` in use and the fields of ``h`` that :func:`constants` finds compiled
    as constants: it steps blocks ``first`` to ``last - 1`` on the calling thread. A jitable
    function, compiled into the callers that run it on the threads of a pool."""
    key = (rule.name, active, constants(rule, h))
    found = _LOOPS.get(key)
    if found is None:
        found = _LOOPS[key] = _make_loop(rule.update, len(rule.arrays), active, key[2],
                                         _FINGERPRINT)
    return found


# a field's code in ``constants``: read at run time, or the constant it is compiled as
_RUN_TIME, _FALSE_OR_ZERO, _TRUE_OR_ONE, _MINUS_ZERO = range(4)
_CODE_BITS = 2
_NEUTRAL_CODES = {(0.0, 1.0): _FALSE_OR_ZERO, (1.0, 1.0): _TRUE_OR_ONE,
                  (0.0, -1.0): _MINUS_ZERO}  # (value, its sign) -> code
_CONSTANT_VALUES = {_FALSE_OR_ZERO: (False, 0.0), _TRUE_OR_ONE: (True, 1.0),
                    _MINUS_ZERO: (None, -0.0)}  # code -> (as a bool, as a float)


def constants(rule: Rule, h: NamedTuple) -> int:
    """Which of ``h``'s fields the kernel compiles as constants, and as what: two bits a field
    (bits 2i and 2i+1 for field i), 0 for a field read at run time, else the code of its
    constant (False or 0.0, True or 1.0, -0.0).

    Every one of the rule's ``constant_flags`` is a constant (one kernel per value); each of
    its ``neutral`` fields is one only while it holds its neutral value, sign included (a
    decay factor of 1, an L2 weight of 0, an ε term of -0.0), so that LLVM removes the
    operation or the branch it feeds. Both are taken from ``h`` when the kernel is looked up,
    at every step of a rule whose coefficients change (Adam's), so the answer is kept by the
    fields' bit patterns: 0.4 µs a lookup, against 1.7 µs for reading the fields one by one
    (and 0.7 µs for the flags alone, before neutral fields). A flag that is not a bool is
    refused where its pattern is first seen (1 packs as True does, and means the same).
    """
    layout = _layout(rule, type(h))
    try:
        key = layout.pack(*layout.fields(h))  # bit patterns: -0.0 and 0.0 differ, as they must
    except struct.error:  # a field that is not a number: the slow path names it
        return _constants(rule, h, layout)
    code = layout.codes.get(key)
    if code is None:
        if len(layout.codes) >= _KEPT_CODES:  # a decay factor that an lr schedule moves
            layout.codes.clear()
        code = layout.codes[key] = _constants(rule, h, layout)
    return code


_KEPT_CODES = 256  # bit patterns kept per layout


def _constants(rule: Rule, h: NamedTuple, layout: _Layout) -> int:
    """:func:`constants`, read field by field; refuses a constant flag that is not a bool."""
    code = 0
    for i in layout.flags:
        value = h[i]
        if not isinstance(value, bool):
            raise TypeError(f"{rule.name}'s constant flag {h._fields[i]}={value!r} is not a "
                            "bool")
        code |= (_TRUE_OR_ONE if value else _FALSE_OR_ZERO) << _CODE_BITS * i
    for i, neutral, sign, field_code in layout.neutral:
        value = h[i]
        if value == neutral and math.copysign(1.0, value) == sign:
            code |= field_code << _CODE_BITS * i
    return code


class _Layout:
    """Where a rule's constant flags and neutral fields sit in its coefficients type, and the
    codes found so far by their bit patterns."""

    def __init__(self, rule: Rule, kind: type) -> None:
        self.rule = rule  # kept, so that the id in ``_LAYOUTS``' key is not reused
        position = kind._fields.index
        self.flags = tuple(position(name) for name in rule.constant_flags)
        # (index, neutral value, its sign, its code)
        self.neutral = tuple((position(name), value, math.copysign(1.0, value),
                              _NEUTRAL_CODES[value, math.copysign(1.0, value)])
                             for name, value in rule.neutral.items())
        indices = (*self.flags, *(entry[0] for entry in self.neutral))
        # one C call that returns the fields as a tuple (itemgetter of one index returns the
        # field alone)
        getter = operator.itemgetter(*indices) if indices else (lambda h: ())
        self.fields = getter if len(indices) != 1 else (lambda h: (getter(h),))
        # flags pack as 0 or 1, floats as their float64 bits
        self.pack = struct.Struct(f"<{len(indices)}d").pack
        self.codes: dict[bytes, int] = {}


_LAYOUTS: dict[tuple[int, type], _Layout] = {}  # (id of the rule, coefficients type) -> layout


def _layout(rule: Rule, kind: type) -> _Layout:
    found = _LAYOUTS.get((id(rule), kind))
    if found is None:
        found = _LAYOUTS[id(rule), kind] = _Layout(rule, kind)
    return found


@register_jitable
def with_constants(h, codes):
    """``h`` with each field that ``codes`` (a compile-time constant, see :func:`constants`)
    names replaced by its constant: LLVM then removes the branches on those fields before it
    vectorises, and the operations a neutral value makes exact (``x * 1``, ``x + -0.0``).

    A function rather than the intrinsic itself, because a loop's closure refers to it: the
    cache key pickles it by name, where an intrinsic would pickle with a new id per process.
    """
    return _with_constants(h, codes)


@intrinsic
def _with_constants(typingctx, h, codes):
    if not isinstance(codes, types.IntegerLiteral):
        return None  # Numba asks again with the closure's integer as a literal

    def codegen(context, builder, signature, args):
        fixed = args[0]
        for i, kind in enumerate(h.types):
            code = codes.literal_value >> _CODE_BITS * i & (1 << _CODE_BITS) - 1
            if code != _RUN_TIME:
                as_bool, as_float = _CONSTANT_VALUES[code]
                value = as_bool if isinstance(kind, types.Boolean) else as_float
                fixed = builder.insert_value(fixed, context.get_constant(kind, value), i)
        return fixed

    return h(h, codes), codegen


def _make_loop(update: Callable, n: int, active: tuple[bool, ...], codes: int,
               fingerprint: str) -> Callable:
    # The closure's variables are constants to Numba: branches on them are removed at compile
    # time, and they are part of the on-disk cache key. The helpers are jitable functions, not
    # dispatchers: a dispatcher among a cached function's closure variables would change the
    # cache key in every process (it pickles with a random id).
    a0, a1, a2 = (*active, False, False, False)[:MAX_ARRAYS]

    def step_block(pointers, blocks, b, h, like):
        h = with_constants(h, codes)
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
    variant_named(step_block, fingerprint, code_bytes(update.__code__))
    # not inlined by Numba: LLVM vectorises it in its own pass, and its caller inlines it through
    # call_inlined (native.inlined_calls says why a plain call is not enough)
    register_jitable(step_block)

    def step_blocks(pointers, blocks, first, last, h, like):
        fingerprint  # noqa: B018 - referenced so that it is part of the cache key
        for b in range(first, last):
            call_inlined(step_block, (pointers, blocks, b, h, like))

    return register_jitable(variant_named(step_blocks))


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
