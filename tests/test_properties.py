"""Properties every optimizer must have, over the whole configuration table.

Random shapes (0-d and size-0 included), dtypes, gradient sequences with missing gradients,
drawn by hypothesis; each property compares two runs that must agree exactly.
"""

from __future__ import annotations

import numpy as np
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from optim_cases import CASES

import descentlab.optim as optim

PROPERTY_SETTINGS = settings(max_examples=examples(60), deadline=None)


@st.composite
def problems(draw, min_params: int = 1):
    """(case, dtype, params, grad sequence) with None for some gradients."""
    case = draw(st.sampled_from(CASES))
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    shapes = draw(st.lists(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
                           min_size=min_params, max_size=4))
    elements = st.floats(-100, 100, width=dtype.itemsize * 8, allow_subnormal=True)
    params = [draw(hnp.arrays(dtype, shape, elements=elements)) for shape in shapes]
    steps = draw(st.integers(1, 8))
    grads = [
        [draw(st.none() | hnp.arrays(dtype, shape, elements=elements)) for shape in shapes]
        for _ in range(steps)
    ]
    return case, dtype, params, grads


def build(case, params, **overrides):
    return getattr(optim, case.algorithm)(params, **{**case.kwargs, **overrides})


def copies(arrays):
    return [a.copy() for a in arrays]


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].keys() == b[key].keys()
        for name, value in a[key].items():
            if isinstance(value, np.ndarray):
                assert value.tobytes() == b[key][name].tobytes(), (key, name)
            else:
                assert value == b[key][name], (key, name)


@PROPERTY_SETTINGS
@given(problems())
def test_maximize_equals_descending_the_negated_gradient(problem):
    case, _, params, grads = problem
    up, down = copies(params), copies(params)
    opt_up = build(case, up, maximize=True)
    opt_down = build(case, down, maximize=False)
    for row in grads:
        opt_up.step(row)
        opt_down.step([None if g is None else -g for g in row])
    for a, b in zip(up, down, strict=True):
        assert a.tobytes() == b.tobytes()
    assert_same_state(opt_up.state, opt_down.state)


@PROPERTY_SETTINGS
@given(problems())
def test_zero_learning_rate_leaves_parameters_unchanged(problem):
    case, _, params, grads = problem
    moved = copies(params)
    opt = build(case, moved, lr=0.0)
    for row in grads:
        opt.step(row)
    for before, after in zip(params, moved, strict=True):
        np.testing.assert_array_equal(after, before)  # values: 0.0 and -0.0 count as equal


@PROPERTY_SETTINGS
@given(problems(min_params=2), st.data())
def test_two_groups_behave_like_two_optimizers(problem, data):
    case, _, params, grads = problem
    split = data.draw(st.integers(1, len(params) - 1))
    other = {"lr": case.kwargs["lr"] * data.draw(st.sampled_from([0.5, 2.0]))}
    together = copies(params)
    opt = getattr(optim, case.algorithm)(
        [{"params": together[:split]}, {"params": together[split:], **other}], **case.kwargs)
    first, second = copies(params[:split]), copies(params[split:])
    opt_first, opt_second = build(case, first), build(case, second, **other)
    for row in grads:
        opt.step(row)
        opt_first.step(row[:split])
        opt_second.step(row[split:])
    for a, b in zip(together, first + second, strict=True):
        assert a.tobytes() == b.tobytes()


@PROPERTY_SETTINGS
@given(problems(), st.data())
def test_state_dict_round_trip_continues_bit_identically(problem, data):
    case, _, params, grads = problem
    cut = data.draw(st.integers(0, len(grads)))
    original = copies(params)
    opt = build(case, original)
    for row in grads[:cut]:
        opt.step(row)
    saved = opt.state_dict()
    resumed_params = copies(original)
    resumed = build(case, resumed_params, lr=123.0)  # hyperparameters come from the state dict
    resumed.load_state_dict(saved)
    assert resumed.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    for row in grads[cut:]:
        opt.step(row)
        resumed.step(row)
    for a, b in zip(original, resumed_params, strict=True):
        assert a.tobytes() == b.tobytes()
    assert_same_state(opt.state, resumed.state)


def test_state_dict_is_a_copy():
    w = np.ones(3)
    opt = optim.Adam([w], lr=0.1)
    opt.step([np.ones(3)])
    saved = opt.state_dict()
    before = saved["state"][0]["exp_avg"].copy()
    opt.step([np.ones(3)])
    np.testing.assert_array_equal(saved["state"][0]["exp_avg"], before)
    assert saved["state"][0]["step"] == 1
