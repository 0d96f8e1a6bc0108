"""``native.numba_ids``: every process, and every child forked from one, numbers Numba's
compiled functions from its own random start, so that code two processes compiled and cached
never shares a symbol (see the module, and test_variant_names.py for the case that did)."""

from __future__ import annotations

import subprocess
import sys

from descentlab.native.numba_ids import OFFSET

# the next number Numba would give a function, in a fresh process that imported ``module``
_NEXT = """
import {module}
from numba.core import bytecode
print(next(bytecode.FunctionIdentity._unique_ids))
"""

# the same in a process and in a child it forks
_FORKED = """
import os
import descentlab.optim
from numba.core import bytecode
read, write = os.pipe()
if os.fork() == 0:
    os.write(write, str(next(bytecode.FunctionIdentity._unique_ids)).encode())
    os._exit(0)
os.wait()
print(next(bytecode.FunctionIdentity._unique_ids), os.read(read, 64).decode())
"""


def run(script: str) -> list[int]:
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout
    return [int(word) for word in out.split()]


def test_each_process_numbers_functions_from_its_own_random_start():
    # the packages whose code Numba compiles (the command line imports them when it needs them)
    for module in ("descentlab.optim", "descentlab.nn", "descentlab.bench"):
        first, second = (run(_NEXT.format(module=module))[0] for _ in range(2))
        assert first >= OFFSET and second >= OFFSET  # Numba's own counter starts at 1
        assert first != second, module


def test_a_forked_child_draws_a_new_start():
    parent, child = run(_FORKED)
    assert child >= OFFSET
    assert child != parent  # without a new draw the child continues the parent's count
