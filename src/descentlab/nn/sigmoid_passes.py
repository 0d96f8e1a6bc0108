"""Sigmoid's element-wise passes in a hidden layer, compiled and shared with the helper thread.

- forward: ``y = σ(z + b)`` in place of ``z`` (the product ``x W``), for float32;
- backward: ``d = flush(dy · y · (1 − y))`` and the bias gradient ``Σ_rows d``, for float32
  and float64.

Why: NumPy computed the forward pass in five passes over the batch (the bias, a negation,
``exp``, an addition, a reciprocal), about 25 µs for a 64 x 256 float32 batch on the lab's
2-core machine, on one core; the backward pass in three (the derivative, the flush, the bias
gradient's sum). Here each is one pass, cut by columns between this thread and the helper
(``native.team``) when the helper is awake, at the same column as the products' cut
(``matmul``), so that each thread reads the columns it has just written.

float32's exponential is computed here, not by NumPy (whose ``exp`` cannot be called from the
helper, and Numba's ``math.exp`` does not vectorise without Intel's SVML). The method is the
usual one: ``e^t = 2^k · e^r`` with ``k`` the nearest integer to ``t / ln 2`` and
``r = t − k ln 2`` (|r| ≤ ln 2 / 2, ``ln 2`` split in two parts as Cody and Waite do so that
``k ln 2`` is exact), ``e^r`` by its Taylor polynomial of degree 7 (truncation below 5e-9
relative), ``2^k`` made from its exponent bits. σ = 1 / (1 + e^−z) then has a few roundings
more: over 40 million inputs the error against a float64 σ was at most 2.48 units in the last
place, where NumPy's float32 ``1 / (1 + exp(−z))`` reached 3.68 (tests bound it at 2.5).
Outside [−20, 88.75] for ``−z`` the result does not depend on the exact exponential:
``1 + e^−z`` rounds to 1 below −17.3, and above 88.72 ``e^−z`` overflows and σ is 0, as
NumPy's. float64 keeps NumPy's exponential (the lab's float64 networks are checked against
torch to 1e-12).
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ..native.addresses import array_at
from ..native.aligned import aligned_like
from ..native.team import HELPER, JOB, in_halves, may_split
from ..optim.rules._fma import fma
from .matmul import block_columns
from .underflow import limit

# Below this many elements the pass stays on the calling thread: the helper's first look and
# the split cost more than half a pass saves.
_SHARED = 1 << 12

_LOG2E = np.float32(1 / math.log(2))
_ROUND = np.float32(1.5 * 2**23)  # adding and subtracting it rounds a float32 to an integer
_LN2_HIGH = np.float32(0.693359375)  # ln 2 in two parts: k · _LN2_HIGH is exact for |k| < 2^9
_LN2_LOW = np.float32(math.log(2) - 0.693359375)
_TAYLOR = tuple(np.float32(1 / math.factorial(n)) for n in range(8))
_ONE = np.float32(1)
_LOWEST, _HIGHEST = np.float32(-20.0), np.float32(88.75)  # the range of −z that matters
_BOUND32, _BOUND64 = np.float32(limit(np.float32)), np.float64(limit(np.float64))
_ZERO32, _ZERO64 = np.float32(0), np.float64(0)  # a bound that flushes nothing


@intrinsic
def _power_of_two(typingctx, k):
    """2^k for a float32 ``k`` that holds an integer in [−126, 127] (not a NaN), from its
    exponent bits."""
    if k != types.float32:
        return None

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        exponent = builder.add(builder.fptosi(args[0], i32), ir.Constant(i32, 127))
        return builder.bitcast(builder.shl(exponent, ir.Constant(i32, 23)), ir.FloatType())

    return types.float32(types.float32), codegen


@numba.njit(inline="always", error_model="numpy")
def sigmoid32(z):
    """σ(z) = 1 / (1 + e^−z) for a float32 (see the module's docstring)."""
    t = -z
    t = _LOWEST if t < _LOWEST else t  # a NaN passes both comparisons, and stays NaN
    t = _HIGHEST if t > _HIGHEST else t
    k = fma(t, _LOG2E, _ROUND) - _ROUND
    # a NaN ``k`` must not reach the conversion to an integer, whose result LLVM leaves
    # undefined ("poison"); the NaN stays in ``t``, and so in σ
    k = k if k == k else _ZERO32
    r = fma(k, -_LN2_HIGH, t)
    r = fma(k, -_LN2_LOW, r)
    c = _TAYLOR
    p = fma(fma(fma(fma(fma(fma(fma(c[7], r, c[6]), r, c[5]), r, c[4]), r, c[3]), r, c[2]),
                r, c[1]), r, c[0])
    half = p * _power_of_two(k - _ONE)  # 2^k in two factors: k reaches 128 at −z = 88.75
    return _ONE / (_ONE + (half + half))


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _forward_columns(z, b, first, last):
    """z[:, first:last] = σ(z + b) for those columns."""
    bias = b[first:last]
    for i in range(z.shape[0]):
        row = z[i, first:last]  # a 1-d slice: the loop over a 2-d index did not vectorise
        for j in range(last - first):
            row[j] = sigmoid32(row[j] + bias[j])


@numba.njit(nogil=True, cache=True)
def _backward_columns(dy, y, d, db, bound, first, last):
    """For those columns: d = dy · y · (1 − y) with magnitudes below ``bound`` set to 0
    (``underflow``; a NaN stays), and db = Σ_rows d, each rounded as NumPy's own operations
    round them: ``(dy · y) · (1 − y)``, then ``np.sum(d, axis=0)``, which adds the rows in
    order. The sums are kept here and written once: the other thread writes the next
    columns, and ``db``'s cache line at the cut, written at every row, went back and forth
    between the two cores (the pass took twice as long as on one thread)."""
    one, zero = y.dtype.type(1), y.dtype.type(0)
    total = np.empty(last - first, d.dtype)
    for i in range(d.shape[0]):
        g, s, out = dy[i, first:last], y[i, first:last], d[i, first:last]
        for j in range(last - first):
            v = g[j] * s[j] * (one - s[j])
            out[j] = zero if abs(v) < bound else v
        if i == 0:
            total[:] = out
        else:
            for j in range(last - first):
                total[j] += out[j]
    db[first:last] = total


# The helper's job: one function for both passes, whose arguments are eight integers: the pass,
# the element type (0 for float32), the rows and columns, then the arrays' data addresses
# (forward: z, b; backward, flushed or not: dy, y, d, db).
FORWARD, BACKWARD, BACKWARD_UNFLUSHED = 0, 1, 2
_ARGUMENTS = 8
_F32, _F64, _I64 = (np.zeros(1, t) for t in (np.float32, np.float64, np.int64))


@numba.njit(nogil=True, cache=True)
def _width(g):
    """Columns per unit of work: the products' column block (``matmul.block_columns``), so
    that both cut a layer at the same column."""
    return block_columns(4 if g[1] == 0 else 8)


@numba.njit(nogil=True, cache=True)
def _backward_of(like, bound, g, start, stop):
    rows, columns = g[2], g[3]
    _backward_columns(array_at(g[4], rows * columns, like).reshape((rows, columns)),
                      array_at(g[5], rows * columns, like).reshape((rows, columns)),
                      array_at(g[6], rows * columns, like).reshape((rows, columns)),
                      array_at(g[7], columns, like), bound, start, stop)


@numba.njit(nogil=True, cache=True)
def _units(g, first, last):
    """Units ``first`` to ``last`` of the pass ``g`` describes."""
    rows, columns = g[2], g[3]
    width = _width(g)
    start, stop = first * width, min(last * width, columns)
    if g[0] == FORWARD:  # float32 only
        _forward_columns(array_at(g[4], rows * columns, _F32).reshape((rows, columns)),
                         array_at(g[5], columns, _F32), start, stop)
    elif g[1] == 0:
        _backward_of(_F32, _BOUND32 if g[0] == BACKWARD else _ZERO32, g, start, stop)
    else:
        _backward_of(_F64, _BOUND64 if g[0] == BACKWARD else _ZERO64, g, start, stop)


@functools.cache
def _job():
    """The job, compiled (or loaded from Numba's cache) when first needed, as ``matmul``'s."""

    @numba.cfunc(JOB, nogil=True, cache=True)
    def job(arguments, first, last):
        _units(array_at(arguments, _ARGUMENTS, _I64), first, last)

    return job


@numba.njit(nogil=True, cache=True)
def _run(board, job, share, g):
    """The pass ``g`` describes over every column, the second half of the units on the helper
    when ``share`` and the helper is free."""
    width = _width(g)
    units = (g[3] + width - 1) // width
    if share and in_halves(board, job, g.ctypes.data, units):
        return
    _units(g, 0, units)


@numba.njit(nogil=True, cache=True)
def _forward(board, job, share, z, b):
    g = np.empty(_ARGUMENTS, np.int64)  # alive until the helper is done: ``in_halves`` waits
    g[0], g[1], g[2], g[3] = FORWARD, 0, z.shape[0], z.shape[1]
    g[4], g[5] = z.ctypes.data, b.ctypes.data
    _run(board, job, share, g)


@numba.njit(nogil=True, cache=True)
def _backward(board, job, share, dy, y, db, flush):
    d = aligned_like(y, y.shape[0], y.shape[1])  # no cache line holds both threads' columns
    g = np.empty(_ARGUMENTS, np.int64)
    g[0] = BACKWARD if flush else BACKWARD_UNFLUSHED
    g[1], g[2], g[3] = (0 if y.itemsize == 4 else 1), y.shape[0], y.shape[1]
    g[4], g[5], g[6], g[7] = dy.ctypes.data, y.ctypes.data, d.ctypes.data, db.ctypes.data
    _run(board, job, share, g)
    return d


_FLOAT32, _FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)


def _share(elements: int) -> bool:
    return elements >= _SHARED and may_split()


def forward(z: np.ndarray, b: np.ndarray) -> bool:
    """``z`` overwritten with σ(z + b), if the pass takes these arrays: float32, C-contiguous,
    ``z`` (rows, columns) and ``b`` (columns,). Whether it did (else nothing changed)."""
    if not (z.dtype == _FLOAT32 and b.dtype == _FLOAT32 and z.ndim == 2 and b.ndim == 1
            and b.shape[0] == z.shape[1] and z.flags.c_contiguous and b.flags.c_contiguous
            and z.flags.writeable):
        return False
    _forward(HELPER.board, _job().address, _share(z.size), z, b)
    return True


def backward(dy: np.ndarray, y: np.ndarray, db: np.ndarray, flush: bool) -> np.ndarray | None:
    """The gradient before σ, ``dy · y · (1 − y)`` (a new array), with magnitudes below
    ``underflow.limit`` set to 0 if ``flush``, and its column sums written into ``db``; or
    None (and nothing written) if the pass does not take these arrays: ``dy`` and ``y`` 2-d
    of one shape, ``db`` of their columns, all of one dtype (float32 or float64) and
    C-contiguous."""
    kind = y.dtype
    if not ((kind == _FLOAT32 or kind == _FLOAT64) and dy.dtype == kind and db.dtype == kind
            and y.ndim == 2 and dy.shape == y.shape and db.shape == (y.shape[1],)
            and y.flags.c_contiguous and dy.flags.c_contiguous and db.flags.c_contiguous
            and db.flags.writeable):
        return None
    return _backward(HELPER.board, _job().address, _share(y.size), dy, y, db, flush)
