"""Non-finite gradients: ``nonfinite="raise"`` (the default) and ``"skip"``.

Either way nothing may change; with ``"skip"`` the run continues exactly as if the bad step had
never been taken (the reference is an optimizer that was never shown it), as optax's
``apply_if_finite`` does.
"""

from __future__ import annotations

import numpy as np
import pytest

import descentlab.optim as optim

EXECUTORS = ["fused", "arraywise"]
BAD_VALUES = [np.nan, np.inf, -np.inf]


def _problem(dtype):
    """Two groups, three parameters; the middle one is big enough to span many blocks."""
    rng = np.random.default_rng(0)
    shapes = [(3, 4), (70_000,), (5,)]
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(4)]
    return params, grads


def _make(name, params, **kwargs):
    groups = [{"params": params[:2]}, {"params": params[2:], "lr": 0.05}]
    return optim.OPTIMIZERS[name](groups, lr=0.01, **kwargs)


def _snapshot(opt, params):
    return ([p.tobytes() for p in params], opt.skipped_steps,
            {k: {n: (v.tobytes() if isinstance(v, np.ndarray) else v) for n, v in s.items()}
             for k, s in opt.state.items()})


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("name", list(optim.OPTIMIZERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_raise_names_the_parameter_and_changes_nothing(name, executor, dtype):
    params, grads = _problem(dtype)
    opt = _make(name, params, executor=executor)
    opt.step(grads[0])
    for value in BAD_VALUES:
        for position, where in [(1, "parameter 1 of group 0"), (2, "parameter 0 of group 1")]:
            bad = [g.copy() for g in grads[1]]
            bad[position].reshape(-1)[-1] = value  # the very last element of the last block
            before = _snapshot(opt, params)
            with pytest.raises(FloatingPointError, match=where):
                opt.step(bad)
            assert _snapshot(opt, params) == before


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("name", list(optim.OPTIMIZERS))
def test_skip_leaves_everything_as_if_the_step_never_came(name, executor):
    params, grads = _problem(np.float64)
    reference_params = [p.copy() for p in params]
    opt = _make(name, params, executor=executor, nonfinite="skip")
    reference = _make(name, reference_params, executor=executor)
    bad = [g.copy() for g in grads[1]]
    bad[0][1, 2] = np.nan
    bad[2][0] = np.inf
    opt.step(grads[0])
    reference.step(grads[0])
    before = _snapshot(opt, params)
    opt.step(bad)
    assert opt.skipped_steps == 1
    assert _snapshot(opt, params)[0] == before[0] and _snapshot(opt, params)[2] == before[2]
    for g in grads[2:]:
        opt.step(g)
        reference.step(g)
    for mine, theirs in zip(params, reference_params, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert opt.state_dict()["skipped_steps"] == 1


def test_non_contiguous_and_none_gradients_are_checked_too():
    params = [np.ones((4, 6)), np.ones(3)]
    opt = optim.SGD(params, lr=0.1)
    wide = np.ones((4, 12))
    wide[3, 10] = np.nan  # inside the strided view below
    with pytest.raises(FloatingPointError, match="parameter 0 of group 0"):
        opt.step([wide[:, ::2], None])
    wide[3, 10] = 1.0
    wide[3, 11] = np.nan  # outside it: not part of the gradient
    opt.step([wide[:, ::2], None])
    np.testing.assert_array_equal(params[0], np.full((4, 6), 0.9))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_finite_values_are_not_mistaken_for_non_finite(dtype):
    info = np.finfo(dtype)
    g = np.array([info.max, -info.max, info.tiny, info.smallest_subnormal, -0.0, 0.0], dtype)
    p = np.zeros_like(g)
    opt = optim.SGD([p], lr=1e-3)
    opt.step([g])  # no error
    np.testing.assert_array_equal(p, (-dtype(1e-3)) * g)


def test_many_small_gradients_one_bad():
    params = [np.ones(7, np.float32) for _ in range(1000)]
    grads = [np.ones(7, np.float32) for _ in range(1000)]
    grads[613][6] = np.nan
    opt = optim.Adam(params, lr=0.1)
    with pytest.raises(FloatingPointError,
                       match=r"^non-finite gradient \(NaN or infinity\) for parameter 613 of "
                             r"group 0; nothing was changed"):
        opt.step(grads)
    assert all(np.all(p == 1) for p in params) and opt.state == {}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_scan_finds_every_position_whatever_sizes_came_before(dtype):
    """The scan keeps its cut of the arrays into blocks per list of sizes: a different list
    must get its own blocks, also after the kept ones have been dropped."""
    from descentlab.optim.executors.finite import nonfinite_positions

    rng = np.random.default_rng(0)
    for trial in range(70):  # more lists of sizes than the scan keeps
        sizes = rng.integers(1, 70_000, size=3)
        grads = [np.ones(n, dtype) for n in sizes]
        where = trial % 3
        grads[where][rng.integers(sizes[where])] = np.inf if trial % 2 else np.nan
        assert nonfinite_positions(grads) == [where]
        grads[where][:] = 1
        assert nonfinite_positions(grads) == []


def test_skipped_steps_survive_a_state_dict_round_trip():
    p = np.ones(2)
    opt = optim.Adam([p], nonfinite="skip")
    opt.step([np.array([np.nan, 1.0])])
    copy = optim.Adam([np.ones(2)], nonfinite="skip")
    copy.load_state_dict(opt.state_dict())
    assert copy.skipped_steps == 1
    bad = opt.state_dict()
    bad["skipped_steps"] = -1
    with pytest.raises(ValueError, match="skipped_steps must be a count"):
        copy.load_state_dict(bad)
    assert copy.skipped_steps == 1


def test_off_lets_non_finite_gradients_through_as_torch_does():
    p = np.ones(3)
    opt = optim.SGD([p], lr=0.5, nonfinite="off")
    opt.step([np.array([1.0, np.nan, np.inf])])
    np.testing.assert_array_equal(p, [0.5, np.nan, -np.inf])
    assert opt.skipped_steps == 0
