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
is and steps its share of the work's blocks (``optim.executors.shares``, whose ``data`` it
receives).

Used only where it can be checked: torch's parallel backend is OpenMP and the runtime torch
loaded from its own ``lib`` folder exports the four functions and reports torch's thread count.
Otherwise :func:`torch_launch` returns None and the fused executor keeps Numba's pool.

Like torch's own operations on GNU OpenMP, a team must not be started in a process forked from
one that already used it with more than one thread (the child's runtime waits for workers that
were not copied); torch's data-loader workers set one thread, which is safe.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import llvmlite.binding as llvm
import numpy as np
import torch
from numba import types

from ..native.addresses import array_at
from ..optim.executors.fused import Part
from ..optim.executors.launches import numba_launch
from ..optim.executors.shares import ARGUMENTS, StepArguments, compiled_wrapper
from ..optim.rules import Rule

# the runtime files a torch wheel may carry in torch/lib, GNU's first
_RUNTIMES = ("libgomp.so.1", "libiomp5.so", "libomp.so", "libomp.dylib")

# names under which the runtime's thread queries are known to compiled code
_THREAD_NUMBER = "descentlab_omp_get_thread_num"
_TEAM_SIZE = "descentlab_omp_get_num_threads"
_thread_number = types.ExternalFunction(_THREAD_NUMBER, types.intc())
_team_size = types.ExternalFunction(_TEAM_SIZE, types.intc())
_INT64 = np.zeros(1, np.int64)

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

    def __call__(self, rule: Rule, part: Part, blocks: np.ndarray, h: NamedTuple) -> None:
        kept = StepArguments.kept("torch team", rule, part, blocks, h, _team_member)
        threads = min(torch.get_num_threads(), len(blocks))
        # ctypes lets go of the GIL for the call; every array it reads is alive until it returns
        self._parallel(kept.function, kept.address, threads, 0)


def _team_member(share: Callable):
    """The function each thread of a team runs: its share of the blocks."""

    # GOMP_parallel passes a void *; on the 64-bit ABIs torch supports it arrives in the same
    # register as an int64, which is how the address is used here.
    def member(address):
        count = array_at(address, ARGUMENTS, _INT64)[3]
        thread, threads = _thread_number(), _team_size()
        share(address, count * thread // threads, count * (thread + 1) // threads)

    return compiled_wrapper(member, types.void(types.int64))


_LIBRARY, _FOUND = find_runtime()
_TEAM = _TorchTeam(_LIBRARY) if _LIBRARY is not None else None
# which threads descentlab.torch's fused steps run on, for benchmarks and bug reports
DESCRIPTION = _FOUND if _TEAM is not None else f"Numba's thread pool ({_FOUND})"


def torch_launch():
    """The fused executor's launch for descentlab.torch: torch's OpenMP team where found,
    else Numba's thread pool (:data:`DESCRIPTION` says which and why)."""
    return _TEAM if _TEAM is not None else numba_launch
