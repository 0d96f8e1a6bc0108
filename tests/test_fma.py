"""``fma``: a·b + c rounded once, against exact rational arithmetic, in every implementation."""

from __future__ import annotations

from fractions import Fraction

import numba
import numpy as np
import pytest
from conftest import require_torch

from descentlab.optim.rules._fma import fma

N = 2000


def exact_fma(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """a·b + c computed exactly with fractions, then rounded once to the arrays' dtype
    (``float(Fraction)`` rounds to the nearest float64, ties to even)."""
    out = np.empty_like(a)
    for i, (x, y, z) in enumerate(zip(a.tolist(), b.tolist(), c.tolist(), strict=True)):
        exact = Fraction(x) * Fraction(y) + Fraction(z)
        if a.dtype == np.float64:
            out[i] = float(exact)
        else:
            out[i] = _round_to_float32(exact)
    return out


def _round_to_float32(exact: Fraction) -> np.float32:
    """Round to nearest float32, ties to even, from the exact value (going through float64
    would round twice)."""
    near = np.float32(float(exact))  # within one float32 step of the answer
    candidates = {near, np.nextafter(near, np.float32(np.inf)),
                  np.nextafter(near, np.float32(-np.inf))}
    return min(candidates, key=lambda v: (abs(Fraction(float(v)) - exact),
                                          int(np.array(v).view(np.int32)) & 1))


def operands(dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    a, b, c = (rng.standard_normal(N).astype(dtype) for _ in range(3))
    c[: N // 4] = -(a[: N // 4] * b[: N // 4])  # near-cancellation, where rounding twice errs most
    return a, b, c


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_arrays_round_once(dtype):
    a, b, c = operands(dtype)
    expected = exact_fma(a, b, c)
    got = fma(a, b, c)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, expected)
    # the test data can tell the difference: rounding twice misses in many elements
    assert np.count_nonzero(a * b + c != expected) > N // 20


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_element_math_rounds_once(dtype):
    @numba.njit
    def loop(a, b, c, out):
        for i in range(a.size):
            out[i] = fma(a[i], b[i], c[i])

    a, b, c = operands(dtype)
    out = np.empty_like(a)
    loop(a, b, c, out)
    np.testing.assert_array_equal(out, exact_fma(a, b, c))


def test_a_python_float_takes_the_arrays_type():
    a, b, c = operands(np.float32)
    got = fma(0.1, b, c)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, exact_fma(np.full(N, 0.1, np.float32), b, c))


def test_torch_operations_round_once():
    torch = require_torch()
    from descentlab.torch.torch_math import _fma

    for dtype in (np.float32, np.float64):
        a, b, c = operands(dtype)
        expected = exact_fma(a, b, c)
        ta, tb, tc = (torch.from_numpy(x) for x in (a, b, c))
        np.testing.assert_array_equal(_fma(ta, tb, tc).numpy(), expected)
        scalar = float(a[0])
        np.testing.assert_array_equal(_fma(scalar, tb, tc).numpy(),
                                      exact_fma(np.full(N, a[0]), b, c))
        np.testing.assert_array_equal(_fma(tb, scalar, tc).numpy(),
                                      exact_fma(b, np.full(N, a[0]), c))



@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("w", [0.1, 0.5, 0.7, 0.9, 1.0])
def test_lerp_rounds_as_torch_lerp(dtype, w):
    """Both of torch.lerp's formulas (the switch is at w = 0.5), with w rounded to the
    elements' type first as torch rounds it, on arrays and in compiled element math."""
    torch = require_torch()
    import descentlab.optim.executors.kernels  # noqa: F401 - makes the element math jitable
    from descentlab.optim.rules._base import lerp

    a, b, _ = operands(dtype)
    expected = torch.lerp(torch.from_numpy(a), torch.from_numpy(b), w).numpy()
    w_, one = dtype(w), dtype(1.0)  # as the executors pass the coefficients

    @numba.njit
    def loop(a, b, w, one, out):
        for i in range(a.size):
            out[i] = lerp(a[i], b[i], w, one)

    out = np.empty_like(a)
    loop(a, b, w_, one, out)
    np.testing.assert_array_equal(lerp(a, b, w_, one), expected)
    np.testing.assert_array_equal(out, expected)
