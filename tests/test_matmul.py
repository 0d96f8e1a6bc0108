"""descentlab.nn.matmul: the compiled products against float64 products, over the shapes
whose edges the tiles handle differently."""

from __future__ import annotations

import numpy as np
import pytest
from team_waits import numba_threads, shared_product  # noqa: F401 (a fixture)

from descentlab.native import team as tm
from descentlab.nn import matmul as mm

# (rows, inner, columns): whole tiles; every remainder of rows (8-row, 4-row and 1-row tiles);
# columns that end in a one-vector block or in a fringe NumPy computes; an inner dimension
# the dot tile cannot take; the lab's network (batch 64 and the last batch of 53)
SHAPES = [(64, 256, 256), (53, 256, 256), (64, 64, 256), (13, 96, 200), (9, 160, 48),
          (1, 512, 64), (7, 40, 50), (31, 200, 112), (360, 256, 256), (64, 256, 10),
          (2, 1024, 32)]


def bound(a, b, dtype):
    """The rounding error a sum of products may make: inner size × eps × Σ|a||b|."""
    scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    return a.shape[1] * np.finfo(dtype).eps * scale + np.finfo(dtype).tiny


def operands(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_the_three_products_agree_with_float64_products(m, k, n, dtype):
    rng = np.random.default_rng(m * 1000 + k + n)
    x, w = operands(rng, (m, k), dtype), operands(rng, (k, n), dtype)
    got = mm.matmul(x, w)
    exact = x.astype(np.float64) @ w.astype(np.float64)
    assert got.dtype == dtype and got.shape == (m, n)
    assert np.all(np.abs(got - exact) <= bound(x, w, dtype))

    dy = operands(rng, (m, n), dtype)
    out = mm.aligned_empty((k, n), dtype)
    out[...] = np.nan  # every element must be written
    assert mm.matmul_tn(x, dy, out) is out
    exact = x.T.astype(np.float64) @ dy.astype(np.float64)
    assert np.all(np.abs(out - exact) <= bound(x.T, dy, dtype))

    # the input gradient dy @ W.T, W of shape (k, n)
    got = mm.matmul_nt(dy, w)
    exact = dy.astype(np.float64) @ w.T.astype(np.float64)
    assert got.shape == (m, k)
    assert np.all(np.abs(got - exact) <= bound(dy, w.T, dtype))


@pytest.mark.usefixtures("numba_threads")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_kernels_compute_the_lab_networks_products(monkeypatch, dtype):
    """The shapes of the 10 x 256 network go through the compiled kernels, on the calling
    thread alone and shared with the helper thread, and not through NumPy: np.matmul is made
    to fail inside the module. Each shared product is repeated until the helper took half of
    it (its job count grew)."""
    def refuse(*args, **kwargs):
        raise AssertionError("NumPy computed a product the kernels should have")

    rng = np.random.default_rng(1)
    x, w, dy = (operands(rng, s, dtype) for s in [(64, 256), (256, 256), (64, 256)])
    expected = [x @ w, x.T @ dy, dy @ w.T]
    out = mm.aligned_empty((256, 256), dtype)
    products = [lambda: mm.matmul(x, w), lambda: mm.matmul_tn(x, dy, out),
                lambda: mm.matmul_nt(dy, w)]
    tolerance = 1e-4 if dtype == np.float32 else 1e-12
    for shared in (False, True):
        monkeypatch.setattr(mm, "_SHARED", 1 if shared else 1 << 60)
        monkeypatch.setattr(mm.np, "matmul", refuse)
        jobs = tm.HELPER.board[tm.JOBS]
        for product, e in zip(products, expected, strict=True):
            out[...] = np.nan
            g = shared_product(product, tm.HELPER.board) if shared else product()
            np.testing.assert_allclose(g, e, rtol=tolerance, atol=tolerance)
        if not shared:
            assert tm.HELPER.board[tm.JOBS] == jobs  # the helper did nothing
        monkeypatch.undo()


def test_operands_the_kernels_cannot_take_go_to_numpy():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 512))[:, ::2]  # not contiguous
    w = rng.standard_normal((256, 256))
    np.testing.assert_allclose(mm.matmul(x, w), x @ w, rtol=1e-12)
    ints = np.arange(64 * 256).reshape(64, 256) % 7
    assert np.array_equal(mm.matmul(ints, ints.T), ints @ ints.T)
    mixed = mm.matmul(x.astype(np.float32), w)  # float32 by float64: NumPy's promotion
    assert mixed.dtype == np.float64


@pytest.mark.parametrize("shape,dtype", [((64, 256), np.float32), ((3, 5), np.float64),
                                         ((1,), np.float32), ((0, 4), np.float64)])
def test_aligned_arrays_start_at_64_bytes(shape, dtype):
    for _ in range(5):
        a = mm.aligned_empty(shape, dtype)
        assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous
        assert a.__array_interface__["data"][0] % 64 == 0 or a.size == 0
    x = np.ones((64, 256), np.float32)
    assert mm.matmul(x, np.ones((256, 256), np.float32)).__array_interface__["data"][0] % 64 == 0


@pytest.mark.parametrize("lanes", [4, 8, 16])
def test_the_reduction_plan_adds_each_vector_into_its_own_lane(lanes):
    """Following the plan's shuffles with numbers: every vector's lanes add up in the lane the
    plan names for it."""
    stages, lane_of = mm._reduction_plan(lanes)
    rng = np.random.default_rng(lanes)
    vectors = [rng.standard_normal(lanes) for _ in range(lanes)]
    current = vectors
    for low, high in stages:
        current = [np.concatenate([current[m], current[m + 1]])[low]
                   + np.concatenate([current[m], current[m + 1]])[high]
                   for m in range(0, len(current), 2)]
    (totals,) = current
    assert sorted(lane_of) == list(range(lanes))
    for n, vector in enumerate(vectors):
        assert totals[lane_of[n]] == pytest.approx(vector.sum(), rel=1e-12)
