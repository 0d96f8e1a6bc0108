"""Numba's TBB threading layer, found where pip put it.

descentlab depends on the ``tbb`` wheel so that Numba runs its parallel kernels on TBB, which
survives ``fork``: GNU OpenMP, Numba's other threading layer on Linux, ends a forked child that
steps an optimizer (a process pool's worker) with "fork() called from a process already using
GNU OpenMP". pip puts the wheel's ``libtbb.so.12`` in the environment's ``lib`` folder, where
the dynamic loader does not look for a virtual environment's libraries; Numba then finds no
TBB and falls back on OpenMP without a word (seen on a fresh machine: the fork test failed).

:func:`load` loads the library once by its path, before Numba first starts its threads: the
process then knows the library by its name, and Numba's own loading by name finds it. Where
the loader finds TBB by itself (a system or conda TBB), nothing is done.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import sys

# the file Numba loads by name (numba.np.ufunc.parallel), per platform
_NAMES = {"linux": "libtbb.so.12", "darwin": "libtbb.12.dylib"}


def load() -> str | None:
    """Make TBB loadable by name for Numba; returns where it was found ("system" when the
    loader finds it by itself), or None where there is none (Numba then uses another layer)."""
    name = _NAMES.get(sys.platform)
    if name is None:
        return None
    try:
        ctypes.CDLL(name)
        return "system"
    except OSError:
        pass
    try:
        files = importlib.metadata.distribution("tbb").files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == name:
            path = str(file.locate())
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            except OSError:
                return None
            return path
    return None


load()  # at import: Numba picks its threading layer at its first parallel launch, later
