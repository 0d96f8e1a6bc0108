"""The optimizer step and the non-finite scan shared with the helper thread
(``optim.executors.launches``, ``finite``): the same numbers as on Numba's thread pool, every
block stepped or scanned once, and the pool used whenever the helper is not free."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from team_waits import awake_helper, numba_threads  # noqa: F401 (fixtures, used by name)

import descentlab.optim as optim
from descentlab.native import team as tm
from descentlab.native.addresses import array_at
from descentlab.optim.executors import finite, launches
from descentlab.optim.executors.finite import nonfinite_positions
from descentlab.optim.executors.fused import BLOCK, Fused
from descentlab.optim.executors.launches import numba_launch

# several blocks of unequal sizes, so that both halves have work and the cut falls inside an
# array: blocks 0-3 (the first array), 4 (the second), 5 (the third), 6 (the fourth)
SIZES = (3 * BLOCK + 5, 7, BLOCK, 1000)
OPTIONS = {"SGD": {"momentum": 0.9, "nesterov": True}, "Adam": {"amsgrad": True},
           "RMSprop": {"centered": True, "momentum": 0.5}}


def _problem(dtype, steps=3):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(n).astype(dtype) for n in SIZES]
    grads = [[rng.standard_normal(n).astype(dtype) for n in SIZES] for _ in range(steps)]
    return params, grads


def _state_bytes(opt):
    return {k: {n: v.tobytes() for n, v in s.items() if isinstance(v, np.ndarray)}
            for k, s in opt.state.items()}


_COUNTS = np.zeros(1, np.int64)


@numba.cfunc(tm.JOB, nopython=True)
def _count_units(address, first, last):
    """A job that adds 1 to each of its units' counters, the int64 array at ``address``."""
    counts = array_at(address, last, _COUNTS)
    for unit in range(first, last):
        counts[unit] += 1


@pytest.mark.usefixtures("numba_threads")
@pytest.mark.parametrize("units", [1, 2, 3, 7, 1000])
def test_numbas_pool_runs_each_unit_of_a_job_once(units):
    """Numba's pool runs a rule's job (the helper's) by its address, in one share a thread:
    whatever the thread count, every unit is run, and none twice."""
    for threads in range(1, numba.get_num_threads() + 1):
        counts = np.zeros(units, np.int64)
        launches._on_pool(_count_units.address, counts.ctypes.data, units, threads)
        assert counts.tolist() == [1] * units, (threads, counts)


@pytest.mark.usefixtures("numba_threads", "awake_helper")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_a_step_with_the_helper_equals_one_on_numbas_pool(name, dtype):
    params, grads = _problem(dtype)
    pool_params = [p.copy() for p in params]
    kwargs = {"lr": 0.01, **OPTIONS.get(name, {})}
    shared = optim.OPTIMIZERS[name](params, **kwargs)
    pool = optim.OPTIMIZERS[name](pool_params, **kwargs)
    pool.executor = Fused(launch=numba_launch)
    for g in grads:
        jobs = launches.HELPER.board[tm.JOBS]
        shared.step(g)
        # two jobs a step: half of the non-finite scan, half of the update
        assert launches.HELPER.board[tm.JOBS] == jobs + 2
        pool.step(g)
    for mine, theirs in zip(params, pool_params, strict=True):
        assert mine.tobytes() == theirs.tobytes()
    assert _state_bytes(shared) == _state_bytes(pool)


@pytest.mark.usefixtures("numba_threads", "awake_helper")
@pytest.mark.parametrize("copy_of", ["deepcopy", "pickle"])
def test_an_optimizer_copied_after_a_step_with_the_helper_steps_its_own_arrays(copy_of):
    """The arguments a step with the helper keeps with its plan (compiled functions, addresses
    of the original's tables) are not copied: the copy makes its own (a deep copy used to
    raise TypeError), and never writes into the original's arrays."""
    import copy
    import pickle

    params, grads = _problem(np.float32)
    opt = optim.Adam(params, lr=0.01)
    jobs = launches.HELPER.board[tm.JOBS]
    opt.step(grads[0])
    assert launches.HELPER.board[tm.JOBS] > jobs  # the step was shared with the helper
    twin = copy.deepcopy(opt) if copy_of == "deepcopy" else pickle.loads(pickle.dumps(opt))
    before = [p.copy() for p in params]
    for g in grads[1:]:
        twin.step(g)
    for p, b in zip(params, before, strict=True):
        assert p.tobytes() == b.tobytes()
    for g in grads[1:]:
        opt.step(g)
    for mine, theirs in zip(params, twin.param_groups[0]["params"], strict=True):
        assert mine.tobytes() == theirs.tobytes()


@pytest.mark.usefixtures("numba_threads")
def test_a_helper_that_is_not_free_leaves_the_step_to_numbas_pool():
    """A sleeping helper is not woken by a step (it would spin beside Numba's workers): the
    step runs on the pool, with the same result."""
    asleep = tm.Team()
    params, grads = _problem(np.float32)
    pool_params = [p.copy() for p in params]
    original = launches.HELPER, finite.HELPER
    launches.HELPER = finite.HELPER = asleep
    try:
        opt = optim.Adam(params, lr=0.01)
        for g in grads:
            opt.step(g)
    finally:
        launches.HELPER, finite.HELPER = original
    assert asleep.board[tm.JOBS] == 0 and asleep._thread is None
    pool = optim.Adam(pool_params, lr=0.01)
    pool.executor = Fused(launch=numba_launch)
    for g in grads:
        pool.step(g)
    for mine, theirs in zip(params, pool_params, strict=True):
        assert mine.tobytes() == theirs.tobytes()


@pytest.mark.usefixtures("numba_threads", "awake_helper")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_the_scan_with_the_helper_finds_a_bad_value_in_either_half(value, dtype):
    """Each block is read once: a bad element in any block, the caller's (0-2) or the
    helper's (3-6), names its gradient and no other."""
    _, (grads, *_) = _problem(dtype, steps=1)
    assert nonfinite_positions(grads) == []
    jobs = 1
    for position, element in [(0, 0), (0, 2 * BLOCK + 1), (0, 3 * BLOCK + 4), (1, 6),
                              (2, BLOCK - 1), (3, 0), (3, 999)]:
        bad = [g.copy() for g in grads]
        bad[position][element] = value
        assert nonfinite_positions(bad) == [position], (position, element)
        jobs += 1
        assert finite.HELPER.board[tm.JOBS] == jobs  # the helper scanned its half


@pytest.mark.usefixtures("numba_threads", "awake_helper")
def test_a_bad_gradient_found_with_the_helper_changes_nothing():
    params, grads = _problem(np.float32)
    opt = optim.Adam(params, lr=0.01)
    opt.step(grads[0])
    before = [p.tobytes() for p in params], _state_bytes(opt)
    bad = [g.copy() for g in grads[1]]
    bad[3][-1] = np.nan  # in the helper's half
    with pytest.raises(FloatingPointError, match="parameter 3 of group 0"):
        opt.step(bad)
    assert ([p.tobytes() for p in params], _state_bytes(opt)) == before


@pytest.mark.usefixtures("numba_threads", "awake_helper")
def test_a_busy_helper_is_not_waited_for():
    """A helper claimed by another caller: the scan and the step run on the pool."""
    board = launches.HELPER.board
    params, grads = _problem(np.float64, steps=1)
    expected = [p.copy() for p in params]
    assert tm.claim(board)  # another thread's job is being written
    try:
        optim.SGD(params, lr=0.5).step(grads[0])
    finally:
        board[tm.STATE] = tm.IDLE
    assert board[tm.JOBS] == 0
    for p, e, g in zip(params, expected, grads[0], strict=True):
        assert p.tobytes() == (e - 0.5 * g).tobytes()
