"""Shared test helpers.

Tests that compare against torch.optim live need torch. CI installs it and sets
DESCENTLAB_REQUIRE_TORCH=1, which turns a missing torch into a failure instead of a skip, so
a broken install can never pass as green.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))  # optim_cases, reference_torch

# In CI the property tests draw the same examples every run, so a red build is reproducible;
# locally they explore new ones. DESCENTLAB_HYPOTHESIS_SCALE=10 runs ten times as many.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")


def examples(n: int) -> int:
    """``n`` hypothesis examples, scaled by DESCENTLAB_HYPOTHESIS_SCALE."""
    return n * int(os.environ.get("DESCENTLAB_HYPOTHESIS_SCALE", "1"))


def outputs_of_two_processes(script: str, cache_dir: Path) -> list[list[str]]:
    """The words ``script`` prints in each of two fresh Python processes run one after the
    other on the Numba cache folder ``cache_dir`` (the first fills it, the second reads it)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    return [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                           text=True, check=True).stdout.split() for _ in range(2)]


def require_torch():
    if os.environ.get("DESCENTLAB_REQUIRE_TORCH") == "1":
        import torch  # an ImportError here fails the test, as it should in CI

        return torch
    return pytest.importorskip("torch", reason="torch is not installed (pip install torch)")


def max_relative_difference(ours: np.ndarray, ref: np.ndarray, scale: float | None = None) -> float:
    """max |ours − ref| divided by a scale: max |ref| unless ``scale`` is given.

    Relative to a whole array (or a whole trajectory, via ``scale``) rather than element by
    element, so that an element passing near zero does not turn an ordinary rounding
    difference into a huge ratio. NaNs must sit in the same places in both.
    """
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    if ref.size == 0 or np.isnan(ref).all():
        return 0.0
    if scale is None:
        scale = float(np.nanmax(np.abs(ref)))
    diff = float(np.nanmax(np.abs(ours - ref)))
    return diff / scale if scale > 0 else diff
