"""Numba runs descentlab's parallel kernels on TBB where the ``tbb`` wheel is installed (a
dependency on x86-64): the threading layer that survives fork (test_fused's fork test)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys

import pytest

from descentlab.native import tbb_runtime

WHEEL_EXPECTED = platform.machine() in ("x86_64", "AMD64") and sys.platform == "linux"
NO_WHEEL = ("not x86-64 Linux: the tbb wheel is a dependency only there, so elsewhere Numba "
            "may run on another threading layer and there is no library to load")


def _has_wheel() -> bool:
    try:
        importlib.metadata.distribution("tbb")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not WHEEL_EXPECTED, reason=NO_WHEEL)
def test_a_step_runs_on_tbb_in_a_fresh_process():
    """In a new process (Numba picks its layer at its first parallel launch), an optimizer's
    parallel kernel runs on TBB, found where pip put the library."""
    assert _has_wheel(), "tbb, a dependency on x86-64, is not installed"
    code = ("import numpy as np, numba\n"
            "from descentlab import optim\n"
            "p = np.ones(1 << 17, np.float32)\n"
            "optim.Adam([p]).step([np.ones_like(p)])\n"
            "print(numba.threading_layer())\n")
    # NUMBA_THREADING_LAYER unset: the default order, TBB first where it loads
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "tbb"


@pytest.mark.skipif(not WHEEL_EXPECTED, reason=NO_WHEEL)
def test_load_finds_the_library_by_name_afterwards():
    """After ``load`` the library loads by the name Numba uses, whatever the loader's path."""
    import ctypes

    assert tbb_runtime.load() is not None
    ctypes.CDLL(tbb_runtime._NAMES[sys.platform])  # raises OSError if not found
