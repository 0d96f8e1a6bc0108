"""Search spaces: the Halton sequence against scipy's, ranges, points and trial plans."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import qmc

from descentlab.experiments.space import Points, Range, SearchSpace, halton


@pytest.mark.parametrize("dimensions", [1, 2, 5])
def test_halton_is_scipys_sequence_shifted_by_the_seeds_offset(dimensions):
    ours = halton(40, dimensions, seed=3)
    shift = np.random.default_rng(3).random(dimensions)
    # scipy's unscrambled sequence starts at index 0 (the origin); ours at index 1
    reference = qmc.Halton(d=dimensions, scramble=False).random(41)[1:]
    np.testing.assert_allclose((ours - shift) % 1.0, reference, atol=1e-12)


def test_halton_points_fill_the_unit_cube_evenly():
    points = halton(64, 2, seed=0)
    assert points.min() >= 0 and points.max() < 1
    # each quarter of each axis holds a quarter of the points, within one
    for d in range(2):
        counts = np.histogram(points[:, d], bins=4, range=(0, 1))[0]
        assert np.all(np.abs(counts - 16) <= 1), counts


def test_a_log_range_is_uniform_in_the_logarithm():
    r = Range(1e-4, 1e-1, log=True)
    assert r.at(0.0) == pytest.approx(1e-4)
    assert r.at(1.0) == pytest.approx(1e-1)
    assert r.at(0.5) == pytest.approx(math.sqrt(1e-4 * 1e-1))
    linear = Range(0.0, 2.0)
    assert linear.at(0.25) == 0.5


def test_points_split_the_unit_interval_equally():
    p = Points((0.8, 0.9, 0.95))
    assert [p.at(u) for u in (0.0, 0.33, 0.34, 0.66, 0.67, 0.999)] == \
        [0.8, 0.8, 0.9, 0.9, 0.95, 0.95]


def test_trials_are_quasi_random_within_the_ranges_and_deterministic():
    space = SearchSpace({"lr": Range(1e-4, 1e-1, log=True), "momentum": Points((0.0, 0.9)),
                         "nesterov": False})
    trials = space.trials(20, seed=0)
    assert len(trials) == 20
    assert all(1e-4 <= t["lr"] <= 1e-1 and t["momentum"] in (0.0, 0.9)
               and t["nesterov"] is False for t in trials)
    assert len({t["lr"] for t in trials}) == 20
    assert trials == space.trials(20, seed=0)
    assert trials != space.trials(20, seed=1)


def test_a_small_discrete_space_is_tried_whole_and_once():
    space = SearchSpace({"lr": Points((0.1, 0.01)), "momentum": Points((0.0, 0.5, 0.9))})
    trials = space.trials(20, seed=0)
    assert len(trials) == 6
    assert {(t["lr"], t["momentum"]) for t in trials} == {
        (lr, m) for lr in (0.1, 0.01) for m in (0.0, 0.5, 0.9)}
    # larger than the budget: quasi-random points again
    assert len(space.trials(4, seed=0)) == 4


def test_a_fixed_space_is_one_trial():
    assert SearchSpace({"lr": 0.1}).trials(20, seed=0) == [{"lr": 0.1}]


def test_corners_put_each_searched_value_at_each_end():
    space = SearchSpace({"lr": Range(0.01, 1.0), "momentum": Points((0.0, 0.9)),
                         "dampening": 0.0})
    corners = space.corners()
    assert {"lr": 1.0, "momentum": 0.0, "dampening": 0.0} in corners
    assert {"lr": 0.01, "momentum": 0.9, "dampening": 0.0} in corners
