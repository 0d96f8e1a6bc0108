"""The fused kernels on torch's own OpenMP thread pool.

Why: torch runs its CPU operations on an OpenMP team; when one ends, GNU OpenMP's worker
threads keep spinning for a few milliseconds before they sleep. A Numba kernel launched in
that window (an optimizer step right after ``loss.backward()``) shares the cores with the
spinning workers: on a 2-core machine a 2^25-element SGD step took 15.6 ms right after a torch
operation against 12.6 ms after a pause (``benchmarks/torch_face_steps.py``). Launching the
same compiled code as a team of torch's runtime instead reuses the workers that are already
awake, and the two libraries never hold more threads than torch was told to use
(``torch.set_num_threads`` governs both).

How: ``GOMP_parallel(function, data, threads, flags)`` — the entry point GNU OpenMP's
compiler-generated code calls for ``#pragma omp parallel``, also exported by LLVM's and Intel's
runtimes — runs ``function(data)`` on each thread of a team. ``function`` is a Numba ``cfunc``
per (rule, state arrays in use, dtype, coefficient type): it asks the runtime which thread it
is, takes its share of the work's blocks, and calls the rule's serial blocks loop
(``kernels.blocks_function_for``, the same per-element code as the Numba-pool kernel).

The step's coefficients travel as a one-row NumPy record and are copied into the rule's named
tuple before the loop: read from memory inside the loop they would be reloaded at every element
(the compiler cannot tell they are not written through the arrays' pointers), and the loop
would not vectorise (a 2^25 SGD step took 46 ms that way against 12 ms).

Used only where it can be checked: torch's parallel backend is OpenMP and the runtime torch
loaded from its own ``lib`` folder exports the four functions and reports torch's thread count.
Otherwise :func:`torch_launch` returns None and the fused executor keeps Numba's pool.

Like torch's own operations on GNU OpenMP, a team must not be started in a process forked from
one that already used it with more than one thread (the child's runtime waits for workers that
were not copied); torch's data-loader workers set one thread, which is safe.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import llvmlite.binding as llvm
import numba
import numpy as np
import torch
from numba import types
from numba.extending import register_jitable

from ..optim.executors.fused import Part, numba_launch
from ..optim.executors.kernels import (
    COLUMNS,
    blocks_function_for,
    check_coefficients,
    constant_flags,
)
from ..optim.executors.ndarray_fields import array_at
from ..optim.rules import Rule

# the runtime files a torch wheel may carry in torch/lib, GNU's first
_RUNTIMES = ("libgomp.so.1", "libiomp5.so", "libomp.so", "libomp.dylib")

# names under which the runtime's thread queries are known to compiled code
_THREAD_NUMBER = "descentlab_omp_get_thread_num"
_TEAM_SIZE = "descentlab_omp_get_num_threads"
_thread_number = types.ExternalFunction(_THREAD_NUMBER, types.intc())
_team_size = types.ExternalFunction(_TEAM_SIZE, types.intc())

_INT64 = np.zeros(1, np.int64)
ARGUMENTS = 5  # pointers' address, members, blocks' address, blocks, the coefficients' address


def find_runtime() -> tuple[ctypes.CDLL | None, str]:
    """torch's OpenMP runtime, and a line saying which it is or why there is none."""
    if "parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return None, "torch's parallel backend is not OpenMP"
    folder = Path(torch.__file__).parent / "lib"
    for name in _RUNTIMES:
        path = folder / name
        if not path.exists():
            continue
        try:
            library = ctypes.CDLL(str(path))
            functions = [getattr(library, f) for f in (
                "GOMP_parallel", "omp_get_thread_num", "omp_get_num_threads",
                "omp_get_max_threads")]
        except (OSError, AttributeError) as error:
            return None, f"{path} cannot be used: {error}"
        functions[3].restype = ctypes.c_int
        # the same runtime as torch's: it was told torch's thread count (by set_num_threads)
        if functions[3]() != torch.get_num_threads():
            return None, f"{path} is not the OpenMP runtime torch's operations use"
        return library, f"torch's OpenMP threads ({path.name})"
    return None, f"no OpenMP runtime found in {folder}"


class _Compiled(NamedTuple):
    function: Any  # the cfunc: kept, since it owns the machine code its address points to
    record: np.dtype  # the coefficients' layout it reads


class _Arguments(NamedTuple):
    """What a team member reads: ``ARGUMENTS`` int64 at ``address``."""

    function: _Compiled
    blocks: np.ndarray
    coefficients: np.ndarray  # one record of ``function.record``, written before each call
    arguments: np.ndarray
    address: int

    @classmethod
    def make(cls, function: _Compiled, part: Part, blocks: np.ndarray) -> _Arguments:
        coefficients = np.zeros(1, function.record)
        arguments = np.array([part.pointers.ctypes.data, len(part.pointers),
                              blocks.ctypes.data, len(blocks), coefficients.ctypes.data],
                             np.int64)
        return cls(function, blocks, coefficients, arguments, arguments.ctypes.data)


class _TorchTeam:
    """A ``Launch`` for the fused executor: each part's blocks on a team of torch's runtime."""

    def __init__(self, library: ctypes.CDLL) -> None:
        for symbol, name in ((_THREAD_NUMBER, "omp_get_thread_num"),
                             (_TEAM_SIZE, "omp_get_num_threads")):
            llvm.add_symbol(symbol, ctypes.cast(getattr(library, name), ctypes.c_void_p).value)
        self._parallel = library.GOMP_parallel
        self._parallel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint,
                                   ctypes.c_uint]
        self._parallel.restype = None
        self._functions: dict[tuple, _Compiled] = {}
        self._compiling = threading.Lock()

    def __call__(self, rule: Rule, part: Part, blocks: np.ndarray, h: NamedTuple) -> None:
        key = (rule.name, part.active, part.dtype, type(h), constant_flags(rule, h))
        found = self._functions.get(key)
        if found is None:
            with self._compiling:
                found = self._functions.get(key) or self._compile(rule, part, h)
                self._functions[key] = found
        # the arguments stay with the part from call to call (each ``.ctypes.data`` costs ~1 µs,
        # and a small model's whole step ~50 µs); only the coefficients change
        kept = part.scratch.get("torch team")
        if kept is None or kept.function is not found or kept.blocks is not blocks:
            kept = part.scratch["torch team"] = _Arguments.make(found, part, blocks)
        kept.coefficients[0] = h  # the record's float fields round h's floats to the dtype
        threads = min(torch.get_num_threads(), len(blocks))
        # ctypes lets go of the GIL for the call; every array it reads is alive until it returns
        self._parallel(found.function.address, kept.address, threads, 0)

    @staticmethod
    def _compile(rule: Rule, part: Part, h: NamedTuple) -> _Compiled:
        check_coefficients(h)
        record = np.dtype([(name, np.bool_ if isinstance(value, bool) else part.dtype)
                           for name, value in zip(h._fields, h, strict=True)], align=True)
        function = _team_member(blocks_function_for(rule, part.active, h), _unpacker(type(h)),
                                np.zeros(1, part.dtype), np.zeros(1, record))
        return _Compiled(function, record)


def _team_member(kernel: Callable, unpack: Callable, like: np.ndarray,
                 record_like: np.ndarray):
    """The function each thread of a team runs: its share of the blocks, with ``kernel``."""
    columns = COLUMNS

    # GOMP_parallel passes a void *; on the 64-bit ABIs torch supports it arrives in the same
    # register as an int64, which is how the address is used here.
    @numba.cfunc(types.void(types.int64), cache=True, nogil=True, error_model="numpy")
    def member(address):
        arguments = array_at(address, ARGUMENTS, _INT64)
        members, count = arguments[1], arguments[3]
        pointers = array_at(arguments[0], members * columns, _INT64).reshape((members, columns))
        blocks = array_at(arguments[2], count * 3, _INT64).reshape((count, 3))
        thread, threads = _thread_number(), _team_size()
        first = count * thread // threads
        last = count * (thread + 1) // threads
        h = unpack(array_at(arguments[4], 1, record_like)[0])
        kernel(pointers, blocks, first, last, h, like)

    return member


_UNPACKERS: dict[type, Callable] = {}


def _unpacker(coefficients: type) -> Callable:
    """A compiled function turning a record with ``coefficients``' fields into that named
    tuple (generated, as ``collections.namedtuple`` generates its methods: Numba cannot build a
    tuple from a record's fields in a loop)."""
    if coefficients not in _UNPACKERS:
        source = (f"def unpack(record):\n    return coefficients("
                  f"{', '.join(f'record.{name}' for name in coefficients._fields)})\n")
        namespace = {"coefficients": coefficients}
        exec(source, namespace)  # noqa: S102 - the source is built from field names only
        _UNPACKERS[coefficients] = register_jitable(inline="always")(namespace["unpack"])
    return _UNPACKERS[coefficients]


_LIBRARY, _FOUND = find_runtime()
_TEAM = _TorchTeam(_LIBRARY) if _LIBRARY is not None else None
# which threads descentlab.torch's fused steps run on, for benchmarks and bug reports
DESCRIPTION = _FOUND if _TEAM is not None else f"Numba's thread pool ({_FOUND})"


def torch_launch():
    """The fused executor's launch for descentlab.torch: torch's OpenMP team where found,
    else Numba's thread pool (:data:`DESCRIPTION` says which and why)."""
    return _TEAM if _TEAM is not None else numba_launch
