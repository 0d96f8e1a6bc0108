"""Data addresses of many NumPy arrays at once, without a Python call per array.

The fused executor hands one compiled call the data addresses of every array of a parameter
group. Asking NumPy for them (``a.ctypes.data``, ``a.__array_interface__``) costs about a
microsecond per array, which for a thousand small parameters is as long as the step itself.
Instead we read them where NumPy keeps them: the data pointer is a field of the array object's C
struct, at a fixed offset from the object's address (``id(a)`` in CPython). The offset is not
assumed: :func:`_find_data_offset` finds it on this interpreter by looking for known data
addresses in fresh arrays, and checks it on several; if that fails we fall back to
``ctypes``, which is slow but always right.

Callers must only pass live ``numpy.ndarray`` objects (and keep them alive during the call).
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

WORD = ctypes.sizeof(ctypes.c_void_p)


@intrinsic
def address_as_pointer(typingctx, address, like):
    """``address`` (an int64) as a pointer to elements of ``like``'s dtype (Numba only)."""
    signature = types.CPointer(like.dtype)(address, like)

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], context.get_value_type(sig.return_type))

    return signature, codegen


@njit(cache=True)
def _load_words(addresses, offset, out):
    like = np.zeros(1, np.int64)
    for i in range(addresses.size):
        out[i] = address_as_pointer(addresses[i] + offset, like)[0]


def _find_data_offset() -> int | None:
    samples = [np.zeros(n, dtype) for n, dtype in ((3, np.float32), (5, np.float64), (1, "u1"))]
    samples.append(np.zeros((4, 6))[1:3])  # a view: its data is not at its base's address
    for offset in range(WORD, np.ndarray.__basicsize__ - WORD + 1, WORD):  # inside the struct
        if all(
            ctypes.c_void_p.from_address(id(a) + offset).value == a.ctypes.data for a in samples
        ):
            return offset
    return None


DATA_OFFSET = _find_data_offset()


def data_addresses(arrays: Iterable[np.ndarray], count: int) -> np.ndarray:
    """The data addresses of ``count`` arrays, as an int64 array."""
    if DATA_OFFSET is None:
        return np.fromiter((a.ctypes.data for a in arrays), np.int64, count)
    objects = np.fromiter(map(id, arrays), np.int64, count)
    out = np.empty(count, np.int64)
    _load_words(objects, DATA_OFFSET, out)
    return out
