"""descentlab.nn.sigmoid_passes: σ(z + b) against a float64 σ, the backward pass and the bias
gradient against NumPy's own operations bit for bit, on the calling thread and shared with the
helper thread, and the layers that use them against the unfused path."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_torch
from team_waits import numba_threads, wait_for  # noqa: F401 (fixture)

from descentlab import nn
from descentlab.native import team as tm
from descentlab.nn import sigmoid_passes as sp
from descentlab.nn.underflow import flush_tiny

SHAPES = [(64, 256), (7, 37), (1, 5), (3, 100), (300, 64)]


@pytest.fixture
def helper(monkeypatch):
    """A helper that stays awake, so that every pass of the test is shared with it; and every
    pass, however small, worth sharing."""
    team = tm.Team(idle_cycles=1 << 62)
    team.wake()
    assert wait_for(lambda: team.board[tm.STATE] == tm.IDLE)
    monkeypatch.setattr(sp, "HELPER", team)
    monkeypatch.setattr(sp, "_SHARED", 1)
    yield team
    team.stop()


def ulps_from_float64_sigmoid(got: np.ndarray, z: np.ndarray) -> np.ndarray:
    """|got − σ(z)| in units of the last place of float32 at σ(z), σ computed in float64."""
    exact = 1 / (1 + np.exp(-z.astype(np.float64)))
    return np.abs(got.astype(np.float64) - exact) / np.spacing(exact.astype(np.float32))


def forward_of(z: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = z.copy()
    assert sp.forward(out, b)
    return out


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_is_within_two_and_a_half_units_of_a_float64_sigmoid(shape):
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    z = (rng.standard_normal(shape) * 8).astype(np.float32)
    b = rng.standard_normal(shape[1]).astype(np.float32)
    biased = z + b  # float32, rounded as NumPy rounds ``z += b``
    assert ulps_from_float64_sigmoid(forward_of(z, b), biased).max() <= 2.5


def test_forward_over_the_whole_range_and_at_its_edges():
    """Every float32 step between −100 and 100 for a stretch, then the edges: where e^−z
    overflows (σ = 0), where 1 + e^−z rounds to 1 (σ = 1), infinities and NaN."""
    z = np.linspace(-100, 100, 400_001, dtype=np.float32)[None, :]
    got = forward_of(z, np.zeros(z.shape[1], np.float32))
    exact = 1 / (1 + np.exp(-z.astype(np.float64)))
    normal = exact >= np.finfo(np.float32).tiny
    assert ulps_from_float64_sigmoid(got, z)[normal].max() <= 2.5
    # below the smallest normal, σ is a subnormal, until e^−z overflows float32 and σ is 0 (as
    # NumPy's): within two of a subnormal's steps
    overflows = -z.astype(np.float64) > np.log(np.finfo(np.float32).max)
    assert not np.any(got[overflows])
    assert np.abs(got - exact)[~normal & ~overflows].max() <= 2 * 2.0**-149
    edges = np.array([[-np.inf, -1e30, -104, -88.73, -88.72, 17.4, 20, 1e30, np.inf, np.nan]],
                     np.float32)
    got = forward_of(edges, np.zeros(edges.shape[1], np.float32))[0]
    with np.errstate(over="ignore"):
        numpy = (1 / (1 + np.exp(-edges)))[0]  # NumPy's float32 σ
    np.testing.assert_array_equal(got[[0, 1, 2, 3, 5, 6, 7, 8]], numpy[[0, 1, 2, 3, 5, 6, 7, 8]])
    assert got[0] == 0 and got[8] == 1 and np.isnan(got[9])
    assert ulps_from_float64_sigmoid(got[4:5], edges[0, 4:5]) <= 2.5


def backward_reference(dy, y, flush):
    """NumPy's operations, in the order the pass rounds them."""
    d = dy * y * (1 - y)
    if flush:
        flush_tiny(d)
    return d, np.sum(d, axis=0)


def backward_inputs(rng, shape, dtype):
    y = rng.uniform(0, 1, shape).astype(dtype)
    # magnitudes down to 1e-40: some products fall below the flush limit, some are subnormal
    dy = (rng.standard_normal(shape) * 10.0 ** rng.integers(-40, 2, shape)).astype(dtype)
    dy[0, 0] = np.nan  # a NaN is never flushed
    return dy, y


@pytest.mark.parametrize("flush", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_and_the_bias_gradient_round_as_numpy(shape, dtype, flush):
    rng = np.random.default_rng(shape[1])
    dy, y = backward_inputs(rng, shape, dtype)
    db = np.full(shape[1], 7, dtype)
    d = sp.backward(dy, y, db, flush)
    expected, expected_db = backward_reference(dy, y, flush)
    assert d.dtype == dtype and np.array_equal(d, expected, equal_nan=True)
    assert np.array_equal(db, expected_db, equal_nan=True)
    assert d.ctypes.data % 64 == 0  # no cache line holds both threads' columns


@pytest.mark.usefixtures("numba_threads")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_shared_with_the_helper_the_passes_give_the_same_bits(helper, shape, dtype):
    """The helper takes the second half of the column blocks; every column is computed once,
    by one thread, so the results are those of the calling thread alone."""
    rng = np.random.default_rng(3)
    dy, y = backward_inputs(rng, shape, dtype)
    db = np.empty(shape[1], dtype)
    jobs = helper.board[tm.JOBS]
    d = sp.backward(dy, y, db, True)
    expected, expected_db = backward_reference(dy, y, True)
    assert np.array_equal(d, expected, equal_nan=True)
    assert np.array_equal(db, expected_db, equal_nan=True)
    if dtype == np.float32:
        z = (rng.standard_normal(shape) * 8).astype(np.float32)
        b = rng.standard_normal(shape[1]).astype(np.float32)
        alone = forward_of(z, b)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sp, "_SHARED", 1 << 60)
            assert np.array_equal(forward_of(z, b), alone)  # not shared
    units = -(-shape[1] // sp.block_columns(np.dtype(dtype).itemsize))
    if units > 1:  # one unit is not split
        assert helper.board[tm.JOBS] > jobs


@pytest.mark.parametrize("arrays", [
    lambda z, b: (z.astype(np.float64), b.astype(np.float64)),  # forward is float32 only
    lambda z, b: (z[:, ::2], b[::2]),  # not contiguous
    lambda z, b: (z, b[:-1]),  # the bias does not fit
    lambda z, b: (z.ravel(), b),  # not 2-d
])
def test_arrays_the_forward_pass_does_not_take_are_left_alone(arrays):
    rng = np.random.default_rng(4)
    z, b = arrays(rng.standard_normal((4, 8)).astype(np.float32),
                  rng.standard_normal(8).astype(np.float32))
    before = z.copy()
    assert not sp.forward(z, b)
    assert np.array_equal(z, before)


def test_arrays_the_backward_pass_does_not_take_are_left_alone():
    dy, y = backward_inputs(np.random.default_rng(5), (4, 8), np.float32)
    db = np.zeros(8, np.float32)
    assert sp.backward(dy.astype(np.float64), y, db, True) is None  # mixed dtypes
    assert sp.backward(dy[:, :4], y[:, :4], db[:4], True) is None  # not contiguous
    assert sp.backward(dy, y, db[:7], True) is None  # the bias gradient does not fit
    assert not np.any(db)


@pytest.mark.parametrize("residual", [False, True])
def test_a_float32_network_agrees_with_torch(residual):
    """The float32 layers (fused bias and σ, fused derivative, flush and bias gradient) against
    torch's float32 autograd for the same weights: loss and gradients agree to float32
    rounding."""
    torch = require_torch()
    spec = nn.MLPSpec(inputs=64, outputs=10, depth=4, width=256, activation="sigmoid",
                      init="glorot_uniform", residual=residual, dtype="float32")
    net = nn.MLP(spec, seed=1)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((64, 64)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    ours = net.loss_and_grad(x, y)
    weights = [torch.tensor(p, requires_grad=True) for p in net.params]
    h = torch.tensor(x)
    for i, layer in enumerate(net.layers):
        out = h @ weights[2 * i] + weights[2 * i + 1]
        if layer.activation is not None:
            out = torch.sigmoid(out)
            if layer.residual:
                out = h + out
        h = out
    loss = torch.nn.functional.cross_entropy(h, torch.tensor(y))
    loss.backward()
    assert ours == pytest.approx(loss.item(), rel=1e-5)
    for g, w in zip(net.grads, weights, strict=True):
        reference = w.grad.numpy()
        assert np.abs(g - reference).max() <= 1e-4 * np.abs(reference).max()
