"""Gradient clipping equals torch.nn.utils.clip_grad_norm_ / clip_grad_value_."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import examples, max_relative_difference, require_torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from descentlab.optim import clip_grad_norm_, clip_grad_value_

TOLERANCE = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}


@st.composite
def gradient_lists(draw):
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    shapes = draw(st.lists(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=5),
                           min_size=1, max_size=4))
    elements = st.floats(-1e3, 1e3, width=dtype.itemsize * 8)
    return [draw(st.none() | hnp.arrays(dtype, s, elements=elements)) for s in shapes]


def torch_clip_norm(torch, grads, max_norm, norm_type):
    params = []
    for g in grads:
        p = torch.zeros(1) if g is None else torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype)
        p.grad = None if g is None else torch.tensor(g.copy())
        params.append(p)
    total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type)
    return float(total), [None if p.grad is None else p.grad.numpy() for p in params]


@settings(max_examples=examples(80), deadline=None)
@given(grads=gradient_lists(), max_norm=st.floats(1e-3, 1e3),
       norm_type=st.sampled_from([1.0, 2.0, 3.5, math.inf, "inf"]))
def test_clip_grad_norm_matches_torch(grads, max_norm, norm_type):
    torch = require_torch()
    present = [g for g in grads if g is not None]
    # torch refuses the max norm of an empty array (no identity); ours counts it as 0, below
    assume(not (math.isinf(float(norm_type)) and any(g.size == 0 for g in present)))
    dtype = present[0].dtype if present else np.dtype(np.float32)
    ours = [None if g is None else g.copy() for g in grads]
    total = clip_grad_norm_(ours, max_norm, norm_type)
    their_total, theirs = torch_clip_norm(torch, grads, max_norm, float(norm_type))
    assert max_relative_difference(np.array(total), np.array(their_total)) <= TOLERANCE[dtype]
    for a, b in zip(ours, theirs, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert max_relative_difference(a, b) <= TOLERANCE[dtype]


def test_clip_grad_norm_scales_to_max_norm():
    grads = [np.array([3.0, 0.0]), np.array([[4.0]]), None]
    total = clip_grad_norm_(grads, max_norm=1.0)
    assert total == pytest.approx(5.0)
    assert np.sqrt(sum(np.sum(g**2) for g in grads[:2])) == pytest.approx(1.0, rel=1e-6)
    small = [np.array([0.3, 0.4])]
    assert clip_grad_norm_(small, max_norm=1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(small[0], [0.3, 0.4])


def test_empty_gradients_count_as_zero_for_every_norm():
    for norm_type in (1.0, 2.0, math.inf):
        assert clip_grad_norm_([np.zeros((0, 3)), np.array([-2.0])], 10.0, norm_type) == 2.0


def test_clip_grad_norm_nonfinite():
    grads = [np.array([np.inf, 1.0])]
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(grads, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(grads[0], [np.inf, 1.0])


@settings(max_examples=examples(50), deadline=None)
@given(grads=gradient_lists(), clip=st.floats(0.0, 100.0))
def test_clip_grad_value_matches_torch(grads, clip):
    torch = require_torch()
    ours = [None if g is None else g.copy() for g in grads]
    clip_grad_value_(ours, clip)
    for a, g in zip(ours, grads, strict=True):
        if g is not None:
            expected = torch.tensor(g.copy()).clamp_(-clip, clip).numpy()
            assert a.tobytes() == expected.tobytes()


def test_clipping_refuses_read_only_and_integer_gradients():
    ro = np.ones(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        clip_grad_norm_([ro], 1.0)
    with pytest.raises(TypeError, match="floating-point"):
        clip_grad_value_([np.ones(3, dtype=np.int32)], 1.0)
