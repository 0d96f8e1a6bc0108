"""Fields of many NumPy arrays at once, read from their C structs without a Python call per
array.

Stepping a thousand small parameters must not cost a Python call per array: asking NumPy for a
data address (``a.ctypes.data``) or even ``a.flags.c_contiguous`` costs a fraction of a
microsecond to a microsecond each, which for a thousand arrays is as long as the step itself.
Instead one compiled pass reads the fields where NumPy keeps them: the array object's C struct
(``PyArrayObject_fields`` in NumPy's headers: type, data, nd, dimensions, strides, base, descr,
flags), at fixed offsets from the object's address (``id(a)`` in CPython).

The offsets are not assumed: :func:`_find_offsets` finds each one on this interpreter by looking
for values NumPy reports for several distinct sample arrays (views, 0-d, Fortran-ordered), and
the fast paths are used only if every field was found. Otherwise callers fall back to NumPy's
Python attributes, which are slow but always right.

Callers must pass live objects and keep them alive during the call. :func:`gradients_agree`
accepts any objects (it reads only the type word of an object that is not an exact ndarray);
:func:`data_addresses` needs ndarrays.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numba import njit

from ...native.addresses import address_as_pointer

WORD = ctypes.sizeof(ctypes.c_void_p)
C_CONTIGUOUS = 0x1  # NPY_ARRAY_C_CONTIGUOUS
WRITEABLE = 0x400  # NPY_ARRAY_WRITEABLE


class Offsets(NamedTuple):
    """Byte offsets of the fields we read, from the start of an ndarray object."""

    type: int  # PyObject's ob_type: the address of the object's class
    data: int  # char *data
    nd: int  # int nd
    dimensions: int  # npy_intp *dimensions
    descr: int  # PyArray_Descr *descr: the dtype object (``a.dtype`` is it)
    flags: int  # int flags: ``a.flags.num``


def _word(address: int) -> int | None:
    return ctypes.c_void_p.from_address(address).value


def _int(address: int) -> int:
    return ctypes.c_int.from_address(address).value


def _shape_at(address: int | None, ndim: int) -> tuple[int, ...] | None:
    """The ``ndim`` integers at ``address``, if it can be a heap pointer (a wrong candidate
    offset holds a count, a flag word or NULL, which must not be followed)."""
    if address is None or address < 1 << 16 or address % WORD:
        return None
    return tuple(ctypes.c_ssize_t.from_address(address + WORD * k).value for k in range(ndim))


def _find_offsets() -> Offsets | None:
    if WORD != 8 or np.dtype(np.intp).itemsize != WORD:
        return None
    base = np.zeros((4, 6, 5))
    samples = [
        np.zeros(3, np.float32),
        base[1:3, ::2],  # a view: neither contiguous nor at its base's data address
        np.asfortranarray(np.zeros((2, 7), np.float64)),
        np.zeros((), np.uint8),
        base,
    ]
    size = np.ndarray.__basicsize__
    words = range(0, size - WORD + 1, WORD)
    ints = range(0, size - 4 + 1, 4)

    def first(candidates, value_at, expected) -> int | None:
        # ``all`` stops at the first sample that disagrees: the first sample is the one every
        # wrong candidate is tried on, and reading its fields is safe
        for offset in candidates:
            if all(value_at(id(a) + offset, a) == expected(a) for a in samples):
                return offset
        return None

    found = Offsets(
        type=first(words, lambda at, a: _word(at), lambda a: id(type(a))),
        data=first(words, lambda at, a: _word(at), lambda a: a.ctypes.data),
        nd=first(ints, lambda at, a: _int(at), lambda a: a.ndim),
        # a 0-d array may have no dimensions pointer at all: nothing to read
        dimensions=first(words, lambda at, a: _shape_at(_word(at), a.ndim) if a.ndim else (),
                         lambda a: a.shape),
        descr=first(words, lambda at, a: _word(at), lambda a: id(a.dtype)),
        flags=first(ints, lambda at, a: _int(at), lambda a: a.flags.num),
    )
    if None in found or len(set(found)) != len(found):
        return None
    return found


OFFSETS = _find_offsets()


def _find_list_items_offset() -> int | None:
    """Where a list object keeps the address of its array of item pointers (``ob_item``)."""
    samples = [[object(), 1.5, "x"], [np.zeros(2)] * 4, [None]]
    for offset in range(0, list.__basicsize__ - WORD + 1, WORD):
        if all(
            _shape_at(_word(id(s) + offset), len(s)) == tuple(map(id, s)) for s in samples
        ):
            return offset
    return None


LIST_ITEMS = _find_list_items_offset() if OFFSETS is not None else None


@njit(cache=True)
def _load_list(address, items_at, out):
    words = np.zeros(1, np.int64)
    items = address_as_pointer(address_as_pointer(address + items_at, words)[0], words)
    for i in range(out.size):
        out[i] = items[i]


def object_ids(objects: Sequence[object]) -> np.ndarray:
    """``id`` of every item of ``objects``, as int64; for an exact list, read from the list's
    own array of item pointers (no Python call per item)."""
    count = len(objects)
    if type(objects) is not list or LIST_ITEMS is None:
        return np.fromiter(map(id, objects), np.int64, count)
    out = np.empty(count, np.int64)
    if count:
        _load_list(id(objects), LIST_ITEMS, out)
    return out


@njit(cache=True)
def _load_fields(objects, data_offset, flags_offset, addresses, contiguous):
    words = np.zeros(1, np.int64)
    ints = np.zeros(1, np.int32)
    for i in range(objects.size):
        addresses[i] = address_as_pointer(objects[i] + data_offset, words)[0]
        flags = address_as_pointer(objects[i] + flags_offset, ints)[0]
        contiguous[i] = (flags & C_CONTIGUOUS) != 0


def data_addresses(arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The data addresses of ``arrays`` (int64) and whether each is C-contiguous (bool)."""
    count = len(arrays)
    if OFFSETS is None:
        return (np.fromiter((a.ctypes.data for a in arrays), np.int64, count),
                np.fromiter((a.flags.c_contiguous for a in arrays), np.bool_, count))
    addresses = np.empty(count, np.int64)
    contiguous = np.empty(count, np.bool_)
    _load_fields(object_ids(arrays), OFFSETS.data, OFFSETS.flags, addresses, contiguous)
    return addresses, contiguous


@njit(cache=True)
def _agree(params, grads, ndarray_type, type_at, data_at, nd_at, dimensions_at, descr_at,
           flags_at):
    words = np.zeros(1, np.int64)
    ints = np.zeros(1, np.int32)
    for i in range(params.size):
        p, g = params[i], grads[i]
        # the types first: only an exact ndarray has the other fields (and a parameter list
        # may have been edited since the optimizer checked it)
        if (address_as_pointer(g + type_at, words)[0] != ndarray_type
                or address_as_pointer(p + type_at, words)[0] != ndarray_type):
            return False
        if address_as_pointer(g + descr_at, words)[0] != address_as_pointer(p + descr_at,
                                                                           words)[0]:
            return False
        nd = address_as_pointer(g + nd_at, ints)[0]
        if nd != address_as_pointer(p + nd_at, ints)[0]:
            return False
        g_dims = address_as_pointer(address_as_pointer(g + dimensions_at, words)[0], words)
        p_dims = address_as_pointer(address_as_pointer(p + dimensions_at, words)[0], words)
        for k in range(nd):
            if g_dims[k] != p_dims[k]:
                return False
        if (address_as_pointer(g + flags_at, ints)[0] & C_CONTIGUOUS) == 0:
            return False
        if (address_as_pointer(p + flags_at, ints)[0] & WRITEABLE) == 0:
            return False
        # a gradient that may overlap its parameter (the very array, or a view of it) is
        # looked at closely: 8 bytes per element bounds every supported itemsize
        size = 1
        for k in range(nd):
            size *= p_dims[k]
        distance = (address_as_pointer(g + data_at, words)[0]
                    - address_as_pointer(p + data_at, words)[0])
        if abs(distance) < 8 * max(size, 1):
            return False
    return True


def gradients_agree(params: Sequence[object], grads: Sequence[object]) -> bool:
    """True when every ``params[i]`` is an exact, writeable ndarray and ``grads[i]`` an exact,
    C-contiguous ndarray with its shape and its very dtype object, whose memory is not near
    the parameter's.

    False means "look closer", not "invalid": a subclass, an equal but distinct dtype object,
    a non-contiguous gradient, a gradient next to its parameter in one buffer or ``None`` all
    answer False.
    """
    count = len(params)
    if len(grads) != count:
        return False
    if OFFSETS is None:
        return all(
            type(p) is type(g) is np.ndarray and g.shape == p.shape and g.dtype is p.dtype
            and g.flags.c_contiguous and p.flags.writeable and not np.may_share_memory(p, g)
            for p, g in zip(params, grads, strict=True)
        )
    o = OFFSETS
    return _agree(object_ids(params), object_ids(grads), id(np.ndarray), o.type, o.data, o.nd,
                  o.dimensions, o.descr, o.flags)


FLOAT32, FLOAT64, OTHER = 0, 1, -1


@njit(cache=True)
def _float_layout(objects, ndarray_type, float32, float64, o_type, o_data, o_nd,
                  o_dimensions, o_descr, o_flags, addresses, sizes, kinds):
    words = np.zeros(1, np.int64)
    ints = np.zeros(1, np.int32)
    for i in range(objects.size):
        a = objects[i]
        kinds[i] = OTHER
        sizes[i] = 0
        if address_as_pointer(a + o_type, words)[0] != ndarray_type:
            continue
        if (address_as_pointer(a + o_flags, ints)[0] & C_CONTIGUOUS) == 0:
            continue
        descr = address_as_pointer(a + o_descr, words)[0]
        if descr != float32 and descr != float64:
            continue
        nd = address_as_pointer(a + o_nd, ints)[0]
        size = 1
        if nd:
            dims = address_as_pointer(address_as_pointer(a + o_dimensions, words)[0], words)
            for k in range(nd):
                size *= dims[k]
        addresses[i] = address_as_pointer(a + o_data, words)[0]
        sizes[i] = size
        kinds[i] = FLOAT32 if descr == float32 else FLOAT64


def float_layout(arrays: Sequence[object]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Data address, element count and kind of each of ``arrays``: kind ``FLOAT32`` or
    ``FLOAT64`` for an exact, C-contiguous ndarray of NumPy's own float32 or float64 dtype
    object, ``OTHER`` (count 0) for anything else, ``None`` included."""
    count = len(arrays)
    addresses = np.zeros(count, np.int64)
    sizes = np.zeros(count, np.int64)
    kinds = np.full(count, OTHER, np.int8)
    if OFFSETS is None:
        for i, a in enumerate(arrays):
            if (type(a) is np.ndarray and a.flags.c_contiguous
                    and a.dtype in (np.dtype(np.float32), np.dtype(np.float64))):
                addresses[i], sizes[i] = a.ctypes.data, a.size
                kinds[i] = FLOAT32 if a.dtype == np.float32 else FLOAT64
        return addresses, sizes, kinds
    o = OFFSETS
    _float_layout(object_ids(arrays), id(np.ndarray), id(np.dtype(np.float32)),
                  id(np.dtype(np.float64)), o.type, o.data, o.nd, o.dimensions, o.descr,
                  o.flags, addresses, sizes, kinds)
    return addresses, sizes, kinds
