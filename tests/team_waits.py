"""Waiting on descentlab.native.team's helper thread in tests."""

from __future__ import annotations

import time

import numba
import pytest

from descentlab.native import team as tm


def wait_for(condition, seconds=10.0, pause=0.001):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        if pause:
            time.sleep(pause)
    return True


def shared_product(product, board):
    """Runs ``product()`` until the helper computed part of it (its job count grew): the
    first call finds the helper asleep and wakes it; the next ones must come within its
    idle time (a millisecond), so the wait for it to be awake does not sleep."""
    jobs = board[tm.JOBS]
    for _ in range(100):
        result = product()
        if board[tm.JOBS] > jobs:
            return result
        wait_for(lambda: board[tm.STATE] == tm.IDLE, seconds=1.0, pause=0)
    raise AssertionError("the helper never took a job")


@pytest.fixture
def numba_threads():
    """Numba's full thread count for the test, restored after it: the products share work
    only when the calling thread may use more than one (another test may have left it at 1,
    as a sweep worker runs)."""
    before = numba.get_num_threads()
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba is limited to one thread here: the products never share")
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    yield
    numba.set_num_threads(before)


@pytest.fixture
def awake_helper(monkeypatch):
    """A helper thread that stays awake for the test, in place of the process's one for the
    optimizer's launch and non-finite scan (so that a step is sure to find it free); stopped
    after the test."""
    from descentlab.optim.executors import finite, launches

    team = tm.Team(idle_cycles=1 << 62)
    team.wake()
    assert wait_for(lambda: team.board[tm.STATE] == tm.IDLE)
    monkeypatch.setattr(launches, "HELPER", team)
    monkeypatch.setattr(finite, "HELPER", team)
    yield team
    team.stop()
