"""Which gradients hold a NaN or an infinity: one compiled, multithreaded pass over all of them.

``Optimizer.step`` asks this before it changes anything (``nonfinite="raise"`` or ``"skip"``),
so the pass must be cheap next to the step itself: it reads each gradient once, in blocks
shared between threads as the fused executor's are (with the helper thread when it is awake,
as the step, see ``launches``), and tests the exponent bits, an integer test (all ones:
infinity or NaN) that vectorises where a floating-point comparison with NaN would not reduce.
Arrays the compiled pass cannot read directly (non-contiguous views, other dtype objects) are
tested with NumPy.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numba
import numpy as np

from ...native.addresses import array_at
from ...native.team import HELPER, JOB, in_halves, may_split
from .fused import cut
from .ndarray_fields import FLOAT32, OTHER, float_layout

_EXPONENT32 = np.uint32(0x7F800000)
_EXPONENT64 = np.uint64(0x7FF0000000000000)


@numba.njit(cache=True, nogil=True)
def _scan_blocks(addresses, kinds, blocks, bad, first, last):
    """Sets ``bad[b]`` for blocks ``first`` to ``last - 1``: whether the block holds an
    element whose exponent bits are all ones."""
    bits32 = np.zeros(1, np.uint32)
    bits64 = np.zeros(1, np.uint64)
    for b in range(first, last):
        k = blocks[b, 0]
        start = blocks[b, 1]
        count = blocks[b, 2]
        if kinds[k] == FLOAT32:
            x = array_at(addresses[k] + 4 * start, count, bits32)
            most = np.uint32(0)
            for i in range(count):
                # Numba widens ``&`` of 32-bit integers to 64 bits: cast back, or the loop
                # zero-extends every element and reduces 4 of them per instruction, not 8
                # (15 GB/s from memory instead of 18; half the speed from the cache)
                exponent = np.uint32(x[i] & _EXPONENT32)
                most = exponent if exponent > most else most
            bad[b] = most == _EXPONENT32
        else:
            y = array_at(addresses[k] + 8 * start, count, bits64)
            most64 = np.uint64(0)
            for i in range(count):
                exponent64 = y[i] & _EXPONENT64
                most64 = exponent64 if exponent64 > most64 else most64
            bad[b] = most64 == _EXPONENT64


@numba.njit(parallel=True, cache=True, nogil=True)
def _scan(addresses, kinds, blocks, bad):
    """Every block, on Numba's thread pool."""
    for b in numba.prange(blocks.shape[0]):
        _scan_blocks(addresses, kinds, blocks, bad, b, b + 1)


# The scan as the helper thread's job (``native.team``): its arguments are the addresses of
# ``addresses``, ``kinds``, ``blocks`` and ``bad``, the number of gradients and of blocks.
_INT64, _INT8, _BOOL = (np.zeros(1, t) for t in (np.int64, np.int8, np.bool_))


@functools.cache
def _scan_job():
    """The job, compiled (or loaded from Numba's cache) when first needed: a ``cfunc`` is
    compiled when it is defined, and at import that cost ``import descentlab.optim`` 0.5 s."""

    @numba.cfunc(JOB, cache=True, nogil=True)
    def scan_job(arguments, first, last):
        a = array_at(arguments, 6, _INT64)
        members, count = a[4], a[5]
        _scan_blocks(array_at(a[0], members, _INT64), array_at(a[1], members, _INT8),
                     array_at(a[2], 3 * count, _INT64).reshape((count, 3)),
                     array_at(a[3], count, _BOOL), first, last)

    return scan_job


def nonfinite_positions(grads: Sequence[np.ndarray | None]) -> list[int]:
    """Positions of the gradients that hold a NaN or an infinity (``None`` entries are
    skipped). The caller keeps ``grads`` alive during the call."""
    addresses, sizes, kinds = float_layout(grads)
    found: set[int] = set()
    blocks = _blocks(sizes)
    if len(blocks):
        bad = np.zeros(len(blocks), np.bool_)
        if not (len(blocks) > 1 and may_split()
                and _on_helper(addresses, kinds, blocks, bad)):
            _scan(addresses, kinds, blocks, bad)
        if bad.any():
            found.update(np.unique(blocks[bad, 0]).tolist())
    others = kinds == OTHER
    if others.any():
        for i in np.flatnonzero(others).tolist():
            g = grads[i]
            if g is not None and not np.isfinite(g).all():
                found.add(i)
    return sorted(found)


def _on_helper(addresses, kinds, blocks, bad) -> bool:
    """The scan done by this thread and the helper thread, half each, if the helper is awake
    and free (whether it was). The halves are cut at the same block as the step's
    (``launches.helper_launch``), so each thread then steps the gradients it has just read."""
    arguments = np.array([addresses.ctypes.data, kinds.ctypes.data, blocks.ctypes.data,
                          bad.ctypes.data, len(addresses), len(blocks)], np.int64)
    # the address is an argument of the compiled call, not a global in it: Numba would bake it
    # into cached machine code, and another process loads the function elsewhere
    return in_halves(HELPER.board, _scan_job().address, arguments.ctypes.data, len(blocks))


_BLOCKS: dict[bytes, np.ndarray] = {}


def _blocks(sizes: np.ndarray) -> np.ndarray:
    """``cut(sizes)``, kept for the sizes seen last: an optimizer asks for the same sizes at
    every step, and cutting costs more than scanning a small model's gradients."""
    key = sizes.tobytes()
    blocks = _BLOCKS.get(key)
    if blocks is None:
        if len(_BLOCKS) >= 64:  # many optimizers, or changing sizes: start again
            _BLOCKS.clear()
        blocks = _BLOCKS[key] = cut(sizes)
        blocks.flags.writeable = False
    return blocks
