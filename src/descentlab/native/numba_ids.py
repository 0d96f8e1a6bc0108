"""Numba's function counter started at random in every process, and again after every fork.

Numba names compiled code after a function's qualified name and a counter
(``FunctionIdentity._unique_ids``) that starts at 1 in each process. Code loaded from the
on-disk cache keeps the names its compiling process gave it, so two different functions
compiled by two processes can carry one symbol, and a process that loads both links both to
the first it loaded: the second then silently runs the first's code (numba/numba#10486, met
here with the fused kernels; ``variant_names`` gives those distinct qualified names).

Names that ``variant_names`` cannot reach remain: the loops Numba generates for ``prange``
(``__numba_parfor_gufunc_<hash>``) are named after an object's address and the same counter,
and processes forked from one parent (a sweep's workers) share both the address layout and the
counter. Starting the counter at a random 48-bit offset in every process, and drawing a new one
in every forked child, makes two processes' numbers differ except with probability 2^-48 a
pair. Numba's cache does not key on the counter, so cached code still loads.
"""

from __future__ import annotations

import itertools
import os
import secrets

from numba.core import bytecode

# above any count a process reaches by itself, so a seeded counter can be told from Numba's own
OFFSET = 1 << 48


def reseed() -> None:
    """Start Numba's function counter at a random number of at least :data:`OFFSET`."""
    bytecode.FunctionIdentity._unique_ids = itertools.count(OFFSET + secrets.randbits(48))


reseed()
os.register_at_fork(after_in_child=reseed)
