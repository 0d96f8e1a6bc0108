"""``square_root``: the kernels' emulation of torch's float32 CPU sqrt, against torch itself.

The reference is ``torch.sqrt`` on this machine (torch 2.13's CPU build, MKL), the very
function whose results the torch face must reproduce; the correctly rounded root is NumPy's.
MKL runs one kernel on Intel processors with AVX-512 and another on AMD's, and the module
emulates each (``algorithm()``). These tests describe this machine kind's two processors: on
another processor or with another torch build the emulation is off (``available()`` / the
face's probe), and the exhaustive comparison below would fail, as it should, rather than pass
unchecked.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numba
import numpy as np
import pytest
from conftest import require_torch

from descentlab.optim.rules._torch_sqrt import algorithm, available, mkl_sqrt, square_root


class Flag(NamedTuple):
    torch_sqrt: bool


def floats(first: int, count: int) -> np.ndarray:
    """``count`` consecutive float32 values, from the one whose bits are ``first``."""
    return (np.arange(count, dtype=np.uint32) + np.uint32(first)).view(np.float32)


# every float32 of each range: [1, 4), 0 and the subnormals, the two smallest normal binades,
# 2^-66 to 2^-62 (around the avx512 kernel's scaling threshold 2^-64), the two largest binades
# (with the sse kernel's upper limit, 0x7F7FF000, and +inf)
RANGES = {
    "one_to_four": (0x3F800000, 1 << 24),
    "zero_and_subnormals": (0, 1 << 23),
    "smallest_normals": (0x00800000, 1 << 24),
    "scaling_threshold": (0x1E800000, 1 << 25),
    "largest": (0x7E800000, 1 << 24),
}


def torch_sqrt(x: np.ndarray) -> np.ndarray:
    torch = require_torch()
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the root is element-wise; one thread keeps memory use down
    try:
        return torch.sqrt(torch.from_numpy(x)).numpy()
    finally:
        torch.set_num_threads(before)


def differing(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.count_nonzero(a.view(np.uint32) != b.view(np.uint32)))


# the ranges where MKL's kernel gives the correctly rounded root: the sse kernel's special
# inputs (zero and subnormals); elsewhere torch's root differs from NumPy's, so the comparison
# of the emulation with torch can tell the two apart
CORRECTLY_ROUNDED = {"avx512": set(), "sse": {"zero_and_subnormals"}}

# the estimate each emulation's vector forms use
ESTIMATE = {"avx512": "vrsqrt14ps", "sse": "vrsqrtps"}


def test_the_emulation_is_compiled_in_on_this_machine():
    assert available(), ("no emulation of MKL's float32 root for this processor, or Numba "
                         "compiles for another one: roots are exact")


@pytest.mark.parametrize("vendor, avx512, expected", [
    ("GenuineIntel", True, "avx512"), ("GenuineIntel", False, None),
    ("AuthenticAMD", True, "sse"), ("AuthenticAMD", False, "sse"),
    (None, True, "avx512"), (None, False, None)])
def test_the_kernel_is_chosen_by_the_processor(monkeypatch, vendor, avx512, expected):
    """MKL's Intel kernel where the vendor is Intel's (or unknown, as before AMD's kernel was
    known) and the processor has AVX-512; its generic kernel on any other vendor's."""
    from descentlab.optim.rules import _torch_sqrt

    features = {"sse": True, "avx": True, "avx512f": avx512}
    monkeypatch.setattr(_torch_sqrt.llvm, "get_host_cpu_features", lambda: features)
    monkeypatch.setattr(_torch_sqrt, "_vendor", lambda: vendor)
    assert _torch_sqrt.algorithm.__wrapped__() == expected


@pytest.mark.parametrize("name", RANGES)
def test_equals_torchs_sqrt_on_every_float_of_the_range(name):
    x = floats(*RANGES[name])
    theirs = torch_sqrt(x)
    assert differing(mkl_sqrt(x), theirs) == 0
    if name in CORRECTLY_ROUNDED[algorithm()]:
        assert differing(np.sqrt(x), theirs) == 0
    else:
        assert differing(np.sqrt(x), theirs) > 0


def test_special_values_and_no_spurious_warnings():
    x = np.array([0.0, -0.0, np.inf, 1.0, 4.0, 2.0**-149, np.finfo(np.float32).max],
                 np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0·∞ inside would raise "invalid value"
        ours = mkl_sqrt(x)
    assert differing(ours, torch_sqrt(x)) == 0
    assert np.signbit(ours[1]) and ours[1] == 0  # √−0 = −0
    with np.errstate(invalid="ignore"):  # √−1 raises the flag in the sse kernel, as np.sqrt
        assert np.isnan(mkl_sqrt(np.array([np.nan, -1.0], np.float32))).all()


@numba.njit
def _roots(x, out, h):
    for i in range(x.size):
        out[i] = square_root(x[i], h)


def test_compiled_loop_is_vectorised_and_follows_the_flag():
    # an odd length: the vector body and the scalar remainder both run
    x = floats(0x3F800000, (1 << 20) + 13)
    out = np.empty_like(x)
    _roots(x, out, Flag(True))
    assert differing(out, torch_sqrt(x)) == 0
    _roots(x, out, Flag(False))
    assert differing(out, np.sqrt(x)) == 0
    assembly = "".join(_roots.inspect_asm().values())
    # the vector forms, not a call per element
    assert f"{ESTIMATE[algorithm()]}\t" in assembly


def test_array_form_follows_the_flag_and_leaves_float64_exact():
    x = floats(0x3F800000, 100_003)
    assert differing(square_root(x, Flag(True)), torch_sqrt(x)) == 0
    assert differing(square_root(x, Flag(False)), np.sqrt(x)) == 0
    wide = x.astype(np.float64)
    assert np.array_equal(square_root(wide, Flag(True)), np.sqrt(wide))


def test_the_faces_probe_notices_another_sqrt(monkeypatch):
    torch = require_torch()
    from descentlab.torch import roots

    assert roots.torch_float32_sqrt_emulated()
    # a torch whose root is correctly rounded: the emulation must not be trusted there
    monkeypatch.setattr(torch, "sqrt",
                        lambda t: torch.from_numpy(np.sqrt(t.numpy())))
    assert not roots.torch_float32_sqrt_emulated.__wrapped__()
