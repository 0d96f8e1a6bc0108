"""The memory-bandwidth floor: a STREAM triad measured in the same process as the steps.

The triad ``c = a + s·b`` over three distinct arrays moves 3 × itemsize bytes per element
(McCalpin's STREAM counts it so; the write-allocate read of ``c`` is not counted). An
optimizer step moves ``bytes_per_element`` (see ``steps.bytes_per_element``) and its floor is
that divided by the triad's bandwidth. Measured with the same threads as the steps, and in turns
with them (``steps.interleaved``), so that both see the same state of a shared machine.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(parallel=True, cache=True, nogil=True)
def _triad(a, b, c, s):
    for i in numba.prange(a.size):
        c[i] = a[i] + s * b[i]


def triad_bytes(size: int, dtype: np.dtype) -> int:
    """The bytes STREAM counts for a triad over ``size`` elements: 3 × itemsize × size."""
    return 3 * np.dtype(dtype).itemsize * size


def triad_step(size: int, dtype: np.dtype):
    """A function running the triad over new arrays of ``size`` elements, and the bytes it
    counts (:func:`triad_bytes`)."""
    rng = np.random.default_rng(0)
    a = rng.random(size).astype(dtype)
    b = rng.random(size).astype(dtype)
    c = np.zeros(size, dtype)
    s = np.dtype(dtype).type(3.0)
    return (lambda: _triad(a, b, c, s)), triad_bytes(size, dtype)
