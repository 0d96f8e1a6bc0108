"""descentlab.native.team: the helper thread's hand-over, sleep and wake, stop, and fork."""

from __future__ import annotations

import multiprocessing
import threading

import numba
import numpy as np
import pytest
from team_waits import numba_threads, shared_product, wait_for  # noqa: F401 (a fixture)

from descentlab.native import team as tm
from descentlab.native.addresses import array_at

# The test job: for each unit from ``first`` to ``last``, the helper writes twice its first
# argument plus the unit into the slot after it.
_INT64 = np.zeros(1, np.int64)
_SLOTS = np.zeros(8, np.int64)  # the arguments of ``_hand_over``'s jobs


@numba.cfunc(tm.JOB, nogil=True, cache=True)
def _double(arguments, first, last):
    slots = array_at(arguments, 8, _INT64)
    for unit in range(first, last):
        slots[1 + unit] = 2 * slots[0] + unit


@numba.njit(nogil=True, cache=True)
def _post(board, job, slots, value, first, last):
    slots[0] = value
    tm.post(board, job, slots.ctypes.data, first, last)


@numba.njit(nogil=True, cache=True)
def _hand_over(board, job, slots, value):
    """Claims the helper, posts ``value`` (one unit, the first), waits: its answer, or -1
    if the helper was not free."""
    if not tm.claim(board):
        return -1
    _post(board, job, slots, value, 0, 1)
    tm.wait_done(board)
    return slots[1]


@pytest.fixture
def team():
    made = tm.Team(idle_cycles=1 << 62)  # awake until stopped
    yield made
    made.stop()


def test_a_new_team_sleeps_and_cannot_be_claimed(team):
    assert team.board[tm.STATE] == tm.ASLEEP
    assert _hand_over(team.board, _double.address, _SLOTS, 5) == -1
    assert team.board[tm.JOBS] == 0


def test_the_helper_computes_posted_jobs_in_order(team):
    team.wake()
    assert wait_for(lambda: team.board[tm.STATE] == tm.IDLE)
    answers = [_hand_over(team.board, _double.address, _SLOTS, v) for v in range(1, 201)]
    assert answers == [2 * v for v in range(1, 201)]
    assert team.board[tm.JOBS] == 200
    assert team.board[tm.STATE] == tm.IDLE


def test_a_claimed_helper_is_not_claimed_twice(team):
    team.wake()
    assert wait_for(lambda: team.board[tm.STATE] == tm.IDLE)
    assert tm.claim(team.board)
    assert not tm.claim(team.board)  # a second caller computes alone
    assert _hand_over(team.board, _double.address, _SLOTS, 3) == -1
    _post(team.board, _double.address, _SLOTS, 4, 0, 1)
    tm.wait_done(team.board)
    assert _SLOTS[1] == 8 and team.board[tm.STATE] == tm.IDLE


def test_in_halves_gives_the_helper_the_second_half(team):
    """The caller does units 0 to 2 itself and the helper 3 to 6: the job's slots say who
    wrote what (the helper's job count grows by one)."""
    slots = np.zeros(8, np.int64)
    slots[0] = 10
    assert not tm.in_halves(team.board, _double.address, slots.ctypes.data, 7)
    assert not slots[1:].any()  # an asleep helper: nothing was done
    team.wake()
    assert wait_for(lambda: team.board[tm.STATE] == tm.IDLE)
    assert tm.in_halves(team.board, _double.address, slots.ctypes.data, 7)
    assert slots[1:].tolist() == [20 + unit for unit in range(7)]
    assert team.board[tm.JOBS] == 1
    assert (team.board[tm.FIRST], team.board[tm.LAST]) == (3, 7)


def test_an_idle_helper_sleeps_and_wakes_again():
    team = tm.Team(idle_cycles=10_000)  # a few microseconds
    try:
        for _ in range(3):
            team.wake()
            assert wait_for(lambda: team.board[tm.STATE] == tm.ASLEEP
                            and team._thread is not None)
        thread = team._thread
        assert thread.is_alive()  # asleep on its Event, not gone
    finally:
        team.stop()
    assert not thread.is_alive()


def test_stop_ends_an_awake_helper(team):
    team.wake()
    assert wait_for(lambda: team.board[tm.STATE] == tm.IDLE)
    thread = team._thread
    team.stop()
    assert not thread.is_alive()
    assert team.board[tm.STATE] == tm.STOP


def _in_child(queue):
    """After fork: the inherited team has no helper; a new one starts on the first wake."""
    from descentlab.nn import matmul as mm

    board = tm.HELPER.board
    fresh = board[tm.STATE] == tm.ASLEEP and tm.HELPER._thread is None
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 256)).astype(np.float32)
    w = rng.standard_normal((256, 256)).astype(np.float32)
    try:
        got = shared_product(lambda: mm.matmul(x, w), board)
        right = bool(np.allclose(got, x @ w, rtol=1e-4, atol=1e-4))
    except AssertionError:
        right = False
    queue.put((fresh, right, int(board[tm.JOBS])))


@pytest.mark.usefixtures("numba_threads")
def test_after_fork_the_child_starts_its_own_helper():
    tm.HELPER.wake()  # the parent's helper is running when the child is forked
    assert wait_for(lambda: tm.HELPER.board[tm.STATE] in (tm.IDLE, tm.ASLEEP))
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_in_child, args=(queue,))
    child.start()
    fresh, right, jobs = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert fresh and right
    assert jobs > 0  # the child's own helper computed half of a product


@pytest.mark.usefixtures("numba_threads")
def test_may_split_follows_numbas_thread_count_of_the_calling_thread():
    """``may_split`` reads the count Numba keeps per thread (its own fast path after the
    first call), so a thread limited to one, as a sweep worker is, never shares."""
    assert tm.may_split()
    seen = []

    def limited():
        numba.set_num_threads(1)
        seen.append(tm.may_split())

    worker = threading.Thread(target=limited)
    worker.start()
    worker.join()
    assert seen == [False] and tm.may_split()
    numba.set_num_threads(1)
    assert not tm.may_split()
