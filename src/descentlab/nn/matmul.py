"""The Dense layers' three matrix products, compiled for this machine: ``x @ W`` (forward),
``x.T @ dy`` (weight gradient) and ``dy @ W.T`` (input gradient).

Why not NumPy's ``@``: at the lab's sizes (a batch of 64 by 256 units, float32) NumPy's
OpenBLAS takes 55-75 µs a product on the lab's 2-core machine, against 35-40 µs for torch's
MKL, and the products are most of a training step. OpenBLAS copies (packs) both operands into
its own buffers before every product, which at these sizes costs about as much as the
arithmetic. The operands here fit in a core's level-2 cache, so the kernels below read them
where they lie.

How: each product is cut into tiles of the output, and one tile is computed entirely in
vector registers by a micro-kernel emitted as LLVM vector instructions (a Numba intrinsic:
Numba's own loops cannot be made to keep a tile's accumulators in registers). Two tile shapes:

- ``_broadcast_tile`` (for ``x @ W`` and ``x.T @ dy``): ``rows`` output rows by ``vectors``
  vectors of columns. Per step of the inner dimension it loads ``vectors`` vectors of the
  right operand's row, broadcasts one number of the left operand per output row, and does
  ``rows * vectors`` fused multiply-adds. The left operand is read one number at a time, so
  it may be transposed (``x.T``) at no cost: only its two strides differ.
- ``_dot_tile`` (for ``dy @ W.T``): both operands are read along the inner dimension, whose
  rows are contiguous in both. Each of the tile's outputs keeps a vector of partial sums,
  and the vectors are added across lanes at the end by a tree of shuffles (``_REDUCTION``).

A product of the lab's sizes is shared with one helper thread (``team``: it takes a job in
about 0.2 µs, where Numba's TBB workers took about 20 µs to start) by column blocks of the
output: the caller computes the first half, the helper the second (the right operand's slice
that a block reads stays in that core's cache for all its rows). What the tiles do not
cover (fewer columns than a vector, an inner dimension the dot tile cannot take) NumPy
computes. Rounding: the sums run in a different order from OpenBLAS's, so results agree with
NumPy's to rounding, not bit for bit (each output is a plain sum of products, with fused
multiply-adds; tests bound the difference against a float64 product).

Results and the layers' weights are allocated at 64-byte boundaries (``aligned``).
"""

from __future__ import annotations

import functools

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, register_jitable

from ..native.addresses import array_at
from ..native.aligned import aligned_empty, aligned_like
from ..native.team import (
    ASLEEP,
    HELPER,
    IDLE,
    JOB,
    STATE,
    in_halves,
    load_acquire,
    may_split,
)

# The width of the vectors the kernels are written for: 64 bytes where the processor has
# AVX-512, otherwise 32 (AVX2's 16 registers could not hold a 64-byte tile's accumulators).
VECTOR_BYTES = 64 if llvm.get_host_cpu_features().get("avx512f", False) else 32

# Below this many multiply-adds NumPy is used: the Python around a kernel costs more than
# the kernel saves (e.g. the 10-class output layer).
_SMALL = 1 << 15
_SHARED = 1 << 18  # multiply-adds from which a product is shared with the helper thread


def _vector_type(dtype: types.Type) -> tuple[ir.Type, ir.VectorType, str, int]:
    """The element and vector types of ``dtype``, the name of the vector FMA and the
    element's size in bytes (the alignment a load may assume)."""
    if dtype == types.float32:
        element, name, size = ir.FloatType(), "f32", 4
    elif dtype == types.float64:
        element, name, size = ir.DoubleType(), "f64", 8
    else:
        raise numba.core.errors.TypingError(f"the products take float32 or float64, not {dtype}")
    lanes = VECTOR_BYTES // size
    return element, ir.VectorType(element, lanes), f"llvm.fma.v{lanes}{name}", size


def _index(builder, *terms):
    """Sum of products of (constant or value, value) pairs, as a 64-bit element index."""
    i64 = ir.IntType(64)
    total = ir.Constant(i64, 0)
    for factor, value in terms:
        if isinstance(factor, int):
            factor = ir.Constant(i64, factor)
        total = builder.add(total, builder.mul(factor, value))
    return total


def _vector_at(builder, base, index, vector):
    return builder.bitcast(builder.gep(base, [index]), vector.as_pointer())


def _tile_start(builder, dtype, addresses, rows, width):
    """What both tiles begin with: the element and vector types, the vector FMA, the
    alignment a load may assume, the operands' addresses as pointers, and ``rows`` x
    ``width`` accumulators set to zero (allocas in the entry block, which LLVM turns into
    registers)."""
    element, vector, fma_name, align = _vector_type(dtype)
    fma = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(vector, [vector] * 3), fma_name)
    pointers = tuple(builder.inttoptr(p, element.as_pointer()) for p in addresses)
    zero = ir.Constant(vector, [0.0] * vector.count)
    sums = [[cgutils.alloca_once_value(builder, zero) for _ in range(width)]
            for _ in range(rows)]
    return element, vector, fma, align, pointers, sums


def _broadcast_tile(rows: int, vectors: int):
    """An intrinsic computing C[r, v·L + l] = Σ_k A[r·sar + k·sak] · B[k·sb + v·L + l] for
    r < rows, v < vectors, l < L (the lanes), overwriting C (row stride sc). Pointers are
    addresses (integers); ``like`` is any array of the element type, for typing."""

    @intrinsic
    def tile(typingctx, like, a, b, c, depth, sar, sak, sb, sc):
        intp = types.intp
        signature = types.void(like, intp, intp, intp, intp, intp, intp, intp, intp)

        def codegen(context, builder, sig, args):
            _, a, b, c, depth, sar, sak, sb, sc = args
            _, vector, fma, align, (a, b, c), sums = _tile_start(
                builder, sig.args[0].dtype, (a, b, c), rows, vectors)
            lanes = vector.count
            one = ir.Constant(ir.IntType(64), 1)
            undefined = ir.Constant(vector, ir.Undefined)
            first_lane = ir.Constant(ir.IntType(32), 0)
            splat = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
            with cgutils.for_range(builder, depth) as loop:
                k = loop.index
                row = _index(builder, (sb, k))
                right = [builder.load(_vector_at(builder, b, _index(builder, (one, row),
                                                                    (v * lanes, one)), vector),
                                      align=align) for v in range(vectors)]
                for r in range(rows):
                    number = builder.load(builder.gep(a, [_index(builder, (r, sar), (sak, k))]))
                    spread = builder.shuffle_vector(
                        builder.insert_element(undefined, number, first_lane), undefined, splat)
                    for v in range(vectors):
                        total = builder.load(sums[r][v])
                        builder.store(builder.call(fma, [spread, right[v], total]), sums[r][v])
            for r in range(rows):
                for v in range(vectors):
                    where = _vector_at(builder, c, _index(builder, (r, sc), (v * lanes, one)),
                                       vector)
                    builder.store(builder.load(sums[r][v]), where, align=align)
            return context.get_dummy_value()

        return signature, codegen

    return tile


def _reduction_plan(lanes: int) -> tuple[list[tuple[list[int], list[int]]], list[int]]:
    """How ``lanes`` vectors of partial sums become one vector of their totals.

    Each stage pairs up the vectors and adds, lane for lane, two shuffles of each pair: the
    first half of every block of lanes (of both vectors) to the second half. After the first
    stage a vector holds two totals-in-progress in blocks of lanes/2, after the last it holds
    all ``lanes`` totals, one per lane. Returns the stages' two shuffle masks and, for each
    original vector, the lane its total ends in (found by following labels through the
    stages)."""
    labels = [[n] * lanes for n in range(lanes)]
    stages = []
    half = lanes // 2
    while len(labels) > 1:
        low, high = [], []
        for block in range(0, lanes, 2 * half):
            low += [block + t for t in range(half)] + [lanes + block + t for t in range(half)]
            high += ([block + half + t for t in range(half)]
                     + [lanes + block + half + t for t in range(half)])
        merged = []
        for m in range(0, len(labels), 2):
            pair = labels[m] + labels[m + 1]
            assert [pair[i] for i in low] == [pair[i] for i in high]
            merged.append([pair[i] for i in low])
        labels = merged
        stages.append((low, high))
        half //= 2
    return stages, [labels[0].index(n) for n in range(lanes)]


def _dot_tile(rows: int):
    """An intrinsic computing C[r·sc + j] = Σ_k A[r·sa + k] · B[j·sb + k] for r < rows and
    j < L / rows (L lanes), overwriting C. ``depth`` must be a multiple of L."""

    @intrinsic
    def tile(typingctx, like, a, b, c, depth, sa, sb, sc):
        intp = types.intp
        signature = types.void(like, intp, intp, intp, intp, intp, intp, intp)

        def codegen(context, builder, sig, args):
            _, a, b, c, depth, sa, sb, sc = args
            columns = _vector_type(sig.args[0].dtype)[1].count // rows
            element, vector, fma, align, (a, b, c), sums = _tile_start(
                builder, sig.args[0].dtype, (a, b, c), rows, columns)
            lanes = vector.count
            stages, lane_of = _reduction_plan(lanes)
            i64, i32 = ir.IntType(64), ir.IntType(32)
            one = ir.Constant(i64, 1)
            with cgutils.for_range(builder, builder.udiv(depth, ir.Constant(i64, lanes))) as loop:
                k = builder.mul(loop.index, ir.Constant(i64, lanes))
                left = [builder.load(_vector_at(builder, a, _index(builder, (r, sa), (one, k)),
                                                vector), align=align) for r in range(rows)]
                for j in range(columns):
                    right = builder.load(_vector_at(builder, b, _index(builder, (j, sb),
                                                                       (one, k)), vector),
                                         align=align)
                    for r in range(rows):
                        total = builder.load(sums[r][j])
                        builder.store(builder.call(fma, [left[r], right, total]), sums[r][j])
            partial = [builder.load(sums[r][j]) for r in range(rows) for j in range(columns)]
            for low, high in stages:
                masks = [ir.Constant(ir.VectorType(i32, lanes), m) for m in (low, high)]
                partial = [builder.fadd(builder.shuffle_vector(partial[m], partial[m + 1],
                                                               masks[0]),
                                        builder.shuffle_vector(partial[m], partial[m + 1],
                                                               masks[1]))
                           for m in range(0, len(partial), 2)]
            totals = partial[0]
            row_vector = ir.VectorType(element, columns)
            for r in range(rows):
                mask = ir.Constant(ir.VectorType(i32, columns),
                                   [lane_of[r * columns + j] for j in range(columns)])
                row = builder.shuffle_vector(totals, totals, mask)
                where = builder.bitcast(builder.gep(c, [_index(builder, (r, sc))]),
                                        row_vector.as_pointer())
                builder.store(row, where, align=align)
            return context.get_dummy_value()

        return signature, codegen

    return tile


# tiles of 8 rows (16 accumulators: half of AVX-512's registers, the rest hold the loads),
# and of 4 and 1 for the last rows; two vectors wide, or one for the last columns
_TILE_8x2, _TILE_4x2, _TILE_1x2 = (_broadcast_tile(rows, 2) for rows in (8, 4, 1))
_TILE_8x1, _TILE_4x1, _TILE_1x1 = (_broadcast_tile(rows, 1) for rows in (8, 4, 1))
_DOT_ROWS = 2  # the dot tile: 2 rows by L/2 columns, L accumulators
_DOT_2 = _dot_tile(_DOT_ROWS)


@register_jitable
def block_columns(itemsize):
    """The columns of one block of ``_broadcast_blocks``, the unit a product is cut in between
    the threads (two vectors); sigmoid's passes cut a layer in the same units."""
    return 2 * (VECTOR_BYTES // itemsize)


@numba.njit(nogil=True, cache=True)
def _broadcast_blocks(like, a, sar, sak, b, sb, c, sc, rows, columns, depth, first, last):
    """Output columns blocks ``first`` to ``last`` (two vectors wide, the last one possibly
    one) of C = A @ B, all rows; A's element (i, k) is at ``a + (i·sar + k·sak)`` elements,
    B's (k, j) at ``b + k·sb + j``, C's (i, j) at ``c + i·sc + j`` (addresses in bytes).

    Walks down the rows, and along the blocks for each tile of rows: the tile's rows of A
    then stay in the level-1 cache while the blocks of B pass by (the other way round, down
    one block of B at a time, measured slower)."""
    size = like.itemsize
    width = block_columns(size)
    i = 0
    while i < rows:
        height = 8 if i + 8 <= rows else (4 if i + 4 <= rows else 1)
        at_a, at_c = a + i * sar * size, c + i * sc * size
        for block in range(first, last):
            column = block * width
            at_b, at_cj = b + column * size, at_c + column * size
            if column + width <= columns:
                if height == 8:
                    _TILE_8x2(like, at_a, at_b, at_cj, depth, sar, sak, sb, sc)
                elif height == 4:
                    _TILE_4x2(like, at_a, at_b, at_cj, depth, sar, sak, sb, sc)
                else:
                    _TILE_1x2(like, at_a, at_b, at_cj, depth, sar, sak, sb, sc)
            elif height == 8:
                _TILE_8x1(like, at_a, at_b, at_cj, depth, sar, sak, sb, sc)
            elif height == 4:
                _TILE_4x1(like, at_a, at_b, at_cj, depth, sar, sak, sb, sc)
            else:
                _TILE_1x1(like, at_a, at_b, at_cj, depth, sar, sak, sb, sc)
        i += height


@numba.njit(nogil=True, cache=True)
def _dot_rows(like, a, sa, b, sb, c, sc, rows, first, last, depth):
    size = like.itemsize
    width = (VECTOR_BYTES // size) // _DOT_ROWS
    for block in range(first, last):
        j = block * width
        for i in range(0, rows - _DOT_ROWS + 1, _DOT_ROWS):
            _DOT_2(like, a + i * sa * size, b + j * sb * size, c + (i * sc + j) * size,
                   depth, sa, sb, sc)


# What the helper thread computes (see ``team``): one job function for both loops, whose
# arguments are twelve integers: the loop, the element type (0 for float32) and ten more.
BROADCAST, DOT = 0, 1  # the loops: ``_broadcast_blocks``, ``_dot_rows``
_F32, _F64, _I64 = (np.zeros(1, t) for t in (np.float32, np.float64, np.int64))
_ARGUMENTS = 12


@numba.njit(nogil=True, cache=True)
def _job_of(like, g, first, last):
    if g[0] == BROADCAST:
        _broadcast_blocks(like, g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11],
                          first, last)
    else:
        _dot_rows(like, g[2], g[3], g[4], g[5], g[6], g[7], g[8], first, last, g[9])


@functools.cache
def _job():
    """The job, compiled (or loaded from Numba's cache) when first needed: a ``cfunc`` is
    compiled when it is defined, and at import that cost ``import descentlab.nn`` 0.4 s. Its
    address is passed to the compiled drivers as an argument, not read as a global: Numba
    would bake it into cached machine code, and another process loads the function
    elsewhere."""

    @numba.cfunc(JOB, nogil=True, cache=True)
    def job(arguments, first, last):
        g = array_at(arguments, _ARGUMENTS, _I64)
        if g[1] == 0:
            _job_of(_F32, g, first, last)
        else:
            _job_of(_F64, g, first, last)

    return job


@numba.njit(nogil=True, cache=True)
def _run(like, board, job, share, kind, g2, g3, g4, g5, g6, g7, g8, g9, g10, g11, units):
    """The loop ``kind`` with its ten integer arguments over ``units`` column blocks, the
    second half of them on the helper thread when ``share`` and the helper is free. Returns
    the helper's state when it was not used (ASLEEP: the caller should wake it), else IDLE."""
    g = np.empty(_ARGUMENTS, np.int64)  # alive until the helper is done: ``in_halves`` waits
    g[0], g[1] = kind, (0 if like.itemsize == 4 else 1)
    g[2], g[3], g[4], g[5], g[6], g[7] = g2, g3, g4, g5, g6, g7
    g[8], g[9], g[10], g[11] = g8, g9, g10, g11
    if share and in_halves(board, job, g.ctypes.data, units):
        return IDLE
    _job_of(like, g, 0, units)
    return load_acquire(board, STATE) if share else IDLE


@numba.njit(nogil=True, cache=True)
def _broadcast(like, board, job, share, a, sar, sak, b, sb, c, sc, rows, columns, depth):
    """All of C = A @ B's column blocks (see ``_broadcast_blocks``), shared as ``_run``
    says; the helper's state."""
    width = block_columns(like.itemsize)
    blocks = (columns + width - 1) // width
    return _run(like, board, job, share, BROADCAST, a, sar, sak, b, sb, c, sc, rows, columns,
                depth, blocks)


@numba.njit(nogil=True, cache=True)
def _forward(x, w, columns, board, job, share):
    """x @ w for w's first ``columns`` columns (a multiple of the lanes), the rest left
    uninitialised; and the helper's state (``_broadcast``)."""
    rows, depth = x.shape
    n = w.shape[1]
    out = aligned_like(x, rows, n)
    state = _broadcast(x, board, job, share, x.ctypes.data, depth, 1, w.ctypes.data, n,
                       out.ctypes.data, n, rows, columns, depth)
    return out, state


@numba.njit(nogil=True, cache=True)
def _weight_gradient(x, dy, out, columns, board, job, share):
    depth, rows = x.shape
    n = dy.shape[1]
    return _broadcast(x, board, job, share, x.ctypes.data, 1, rows, dy.ctypes.data, n,
                      out.ctypes.data, n, rows, columns, depth)


@numba.njit(nogil=True, cache=True)
def _input_gradient(dy, w, board, job, share):
    """dy @ w.T for dy's rows in whole tiles (the rest left uninitialised), and the helper's
    state (as ``_run``)."""
    rows, depth = dy.shape
    n = w.shape[0]
    out = aligned_like(dy, rows, n)
    blocks = n // ((VECTOR_BYTES // dy.itemsize) // _DOT_ROWS)
    state = _run(dy, board, job, share, DOT, dy.ctypes.data, depth, w.ctypes.data, depth,
                 out.ctypes.data, n, rows, depth, 0, 0, blocks)
    return out, state


def _share(work: int) -> bool:
    """Whether a product of ``work`` multiply-adds is shared with the helper thread: not
    when Numba is limited to one thread, nor for small products, where the helper's first
    look and the split cost more than half the arithmetic saves."""
    return work >= _SHARED and may_split()


def _woken(state: int) -> None:
    if state == ASLEEP:
        HELPER.wake()


def _compiled(*arrays: np.ndarray) -> bool:
    """Whether the kernels can take these operands (else NumPy computes the product)."""
    first = arrays[0]
    return (first.dtype in (np.float32, np.float64)
            and all(x.dtype == first.dtype and x.flags.c_contiguous for x in arrays))


def matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x @ w`` for 2-D ``x`` (m, k) and ``w`` (k, n), in a new 64-byte-aligned array."""
    (m, k), n = x.shape, w.shape[1]
    lanes = VECTOR_BYTES // x.itemsize
    done = n - n % lanes
    if not _compiled(x, w) or m * n * k < _SMALL or not done:
        out = aligned_empty((m, n), np.result_type(x, w))
        np.matmul(x, w, out=out)
        return out
    out, state = _forward(x, w, done, HELPER.board, _job().address, _share(m * done * k))
    _woken(state)
    if done < n:
        out[:, done:] = x @ w[:, done:]
    return out


def matmul_tn(x: np.ndarray, dy: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``x.T @ dy`` into ``out`` (the weight gradient): ``x`` (k, m), ``dy`` (k, n)."""
    k, m = x.shape
    n = dy.shape[1]
    lanes = VECTOR_BYTES // x.itemsize
    done = n - n % lanes
    if not _compiled(x, dy, out) or m * n * k < _SMALL or not done:
        return np.matmul(x.T, dy, out=out)
    _woken(_weight_gradient(x, dy, out, done, HELPER.board, _job().address,
                            _share(m * done * k)))
    if done < n:
        out[:, done:] = x.T @ dy[:, done:]
    return out


def matmul_nt(dy: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``dy @ w.T`` (the input gradient) for ``dy`` (m, k) and ``w`` (n, k), in a new
    64-byte-aligned array."""
    m, k = dy.shape
    n = w.shape[0]
    lanes = VECTOR_BYTES // dy.itemsize
    if (not _compiled(dy, w) or m * n * k < _SMALL or k % lanes
            or n % (lanes // _DOT_ROWS) or m < _DOT_ROWS):
        out = aligned_empty((m, n), np.result_type(dy, w))
        np.matmul(dy, w.T, out=out)
        return out
    out, state = _input_gradient(dy, w, HELPER.board, _job().address, _share(m * n * k))
    _woken(state)
    done = m - m % _DOT_ROWS
    if done < m:
        out[done:] = dy[done:] @ w.T
    return out
