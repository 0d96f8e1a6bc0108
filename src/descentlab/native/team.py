"""A second thread that takes a compiled job in about a microsecond: half of a Dense layer's
product (``descentlab.nn.matmul``), half of an optimizer step and of its non-finite scan
(``descentlab.optim.executors``).

Why not Numba's threads: a product of the lab's sizes is 40-80 µs of arithmetic, and starting
Numba's TBB workers (which sleep between launches) costs about 20 µs of it; Numba's OpenMP
layer starts faster but is not safe after ``fork`` (the project keeps TBB for that reason).

How: one helper thread runs a compiled loop without the GIL. The loop watches a word of
shared memory (the *board*'s state), and yields the processor (``sched_yield``) between
looks, so any other thread that wants the core gets it. The caller claims the helper by
compare-and-swap, writes the job into the board, marks it posted, computes its own half and
waits for the helper's "done". After about a millisecond without work the helper goes to
sleep on an Event; a caller that finds it asleep does the whole job itself (and may wake it
for the next one), so a sleeping helper never makes a job wait. So does a caller that finds
the helper busy with another thread's job.

A job is a compiled function with the signature :data:`JOB`, ``(arguments, first, last)``:
``arguments`` is an address where the function finds what it works on (the caller keeps that
memory alive until the job is done), and ``first`` to ``last`` is a share of its units of
work. The board holds the function's address and the three integers; :func:`in_halves` runs
a job half here, half on the helper.

The state machine (one int64, changed only by compare-and-swap or by its one owner):

- ``IDLE``: the helper is watching; a caller may claim it (IDLE -> CLAIMED).
- ``CLAIMED``: a caller is writing a job; then POSTED.
- ``POSTED``: the helper computes; then DONE.
- ``DONE``: the caller has the helper's half; it sets IDLE.
- ``ASLEEP``: the helper left its loop (IDLE -> ASLEEP); only the helper leaves this state.
- ``STOP``: the helper exits (at interpreter exit).

After ``fork`` the child has no helper thread: its board is reset to ASLEEP with no thread,
and the first wake there starts a new one.
"""

from __future__ import annotations

import atexit
import os
import threading

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.ufunc import parallel as numba_parallel

from .aligned import aligned_empty

IDLE, CLAIMED, POSTED, DONE, ASLEEP, STOP = range(6)

# board slots (int64): the state (and the helper's count of jobs done, for tests and
# diagnostics) on the first cache line, the job on the next ones
STATE, JOBS = 0, 1
FUNCTION, ARGUMENTS, FIRST, LAST = 8, 9, 10, 11  # the job: what to call, with what
BOARD_SIZE = 16

# a job function's signature: (address of its arguments, first unit, last unit + 1)
JOB = types.void(types.int64, types.int64, types.int64)

# Cycles the helper watches without work before it sleeps: about a millisecond at 2-3 GHz,
# longer than the gaps between a training step's products, short enough not to hold a
# core after the training stops.
IDLE_CYCLES = 3_000_000


@intrinsic
def load_acquire(typingctx, board, index):
    """board[index] read with acquire ordering (and never hoisted out of a loop)."""

    def codegen(context, builder, sig, args):
        array = context.make_array(sig.args[0])(context, builder, args[0])
        pointer = builder.gep(array.data, [args[1]])
        return builder.load_atomic(pointer, "acquire", 8)

    return types.int64(board, index), codegen


@intrinsic
def store_release(typingctx, board, index, value):
    """board[index] = value with release ordering: what was written before is seen first."""

    def codegen(context, builder, sig, args):
        array = context.make_array(sig.args[0])(context, builder, args[0])
        pointer = builder.gep(array.data, [args[1]])
        builder.store_atomic(args[2], pointer, "release", 8)
        return context.get_dummy_value()

    return types.void(board, index, value), codegen


@intrinsic
def compare_and_swap(typingctx, board, index, expected, new):
    """Sets board[index] to ``new`` if it holds ``expected``, atomically; whether it did."""

    def codegen(context, builder, sig, args):
        array = context.make_array(sig.args[0])(context, builder, args[0])
        pointer = builder.gep(array.data, [args[1]])
        pair = builder.cmpxchg(pointer, args[2], args[3], "seq_cst", "seq_cst")
        return builder.extract_value(pair, 1)

    return types.boolean(board, index, expected, new), codegen


@intrinsic
def give_way(typingctx):
    """``sched_yield()``: lets another runnable thread have this core, returns at once
    otherwise (a system call, well under a microsecond)."""

    def codegen(context, builder, sig, args):
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
        builder.call(function, [])
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def cycles(typingctx):
    """The processor's cycle counter (``rdtsc`` on x86)."""

    def codegen(context, builder, sig, args):
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.IntType(64), []), "llvm.readcyclecounter")
        return builder.call(function, [])

    return types.int64(), codegen


@intrinsic
def call_job(typingctx, function, arguments, first, last):
    """Calls the :data:`JOB` function at address ``function`` (a ``numba.cfunc``'s
    ``address``): how the helper runs a job it knows only from the board."""

    def codegen(context, builder, sig, args):
        i64 = ir.IntType(64)
        kind = ir.FunctionType(ir.VoidType(), [i64, i64, i64])
        builder.call(builder.inttoptr(args[0], kind.as_pointer()), args[1:])
        return context.get_dummy_value()

    return types.void(function, arguments, first, last), codegen


@numba.njit(nogil=True, cache=True)
def claim(board) -> bool:
    """Whether the helper is now this caller's (IDLE -> CLAIMED); the caller then writes the
    job's slots and calls ``post``."""
    return compare_and_swap(board, STATE, IDLE, CLAIMED)


@numba.njit(nogil=True, cache=True)
def post(board, function, arguments, first, last) -> None:
    """Hands the claimed helper ``function(arguments, first, last)``."""
    board[FUNCTION] = function
    board[ARGUMENTS] = arguments
    board[FIRST] = first
    board[LAST] = last
    store_release(board, STATE, POSTED)


@numba.njit(nogil=True, cache=True)
def wait_done(board) -> None:
    """Waits for the helper's DONE and frees it (IDLE). Looks without pause at first (the
    helper's half usually ends within microseconds of the caller's), then gives way on every
    look in case the helper lost its core."""
    looks = 0
    while load_acquire(board, STATE) != DONE:
        looks += 1
        if looks > 1000:
            give_way()
    store_release(board, STATE, IDLE)


def may_split() -> bool:
    """Whether the calling thread may share work with the helper: not where Numba is limited
    to one thread (``numba.set_num_threads(1)``, as the sweep workers are, each promised one
    core)."""
    return _thread_count() > 1


def _first_thread_count() -> int:
    """``numba.get_num_threads()``, which also starts Numba's threading layer; later calls go
    straight to the layer's own count (``_get_num_threads``, the function Numba's public one
    calls after taking two locks): 0.2 µs against 1.1-1.8 µs, and ``may_split`` is asked
    before every product and pass of a training step. Numba's public function where that
    private name is missing."""
    global _thread_count
    count = numba.get_num_threads()
    _thread_count = getattr(numba_parallel, "_get_num_threads", None) or numba.get_num_threads
    return count


_thread_count = _first_thread_count


@numba.njit(nogil=True, cache=True)
def in_halves(board, function, arguments, units) -> bool:
    """``function(arguments, 0, units)`` done by this thread and the helper, half each (the
    helper takes the second half), if the helper is free: whether it was. If it was not,
    nothing was done and the caller does the whole job its own way."""
    if not claim(board):
        return False
    half = units // 2
    post(board, function, arguments, half, units)
    call_job(function, arguments, 0, half)
    wait_done(board)
    return True


@numba.njit(nogil=True, cache=True)
def serve(board, idle_cycles) -> bool:
    """The helper's loop: every posted job, until STOP (True) or until ``idle_cycles`` pass
    without work and the helper goes to sleep (False)."""
    since = cycles()
    while True:
        state = load_acquire(board, STATE)
        if state == POSTED:
            call_job(board[FUNCTION], board[ARGUMENTS], board[FIRST], board[LAST])
            board[JOBS] += 1
            store_release(board, STATE, DONE)
            since = cycles()
        elif state == STOP:
            return True
        elif (state == IDLE and cycles() - since > idle_cycles
              and compare_and_swap(board, STATE, IDLE, ASLEEP)):
            return False
        else:
            give_way()


def _new_board() -> np.ndarray:
    board = aligned_empty((BOARD_SIZE,), np.int64)  # the state alone on its cache line
    board[:] = 0
    board[STATE] = ASLEEP
    return board


class Team:
    """One helper thread serving the jobs posted on its board (see the module's docstring).

    Args:
        idle_cycles: how long the helper watches without work before it sleeps.

    ``board`` is the shared memory a caller claims, fills and posts; ``wake()`` is called by
    a caller that found the helper ASLEEP. The process's helper is :data:`HELPER`; tests make
    their own."""

    def __init__(self, idle_cycles: int = IDLE_CYCLES) -> None:
        self.idle_cycles = idle_cycles
        self._reset()
        os.register_at_fork(after_in_child=self._reset)
        atexit.register(self.stop)

    def _reset(self) -> None:
        # also after fork in the child, where the parent's helper thread does not exist
        self.board = _new_board()
        self._lock = threading.Lock()  # a fresh one: another thread may hold it at fork
        self._event = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def wake(self) -> None:
        """Starts the helper, or wakes it; returns at once (it serves the next jobs)."""
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    # Compiled (or loaded from the cache) here, not in the new thread: LLVM
                    # holds a process-wide lock while it works, and a fork that caught the
                    # helper inside it would leave the child waiting on it for ever.
                    serve.compile((numba.typeof(self.board), types.int64))
                    self._thread = threading.Thread(
                        target=self._serve, args=(self.board, self._event),
                        name="descentlab-helper", daemon=True)
                    self._thread.start()
                    return
        self._event.set()

    def _serve(self, board: np.ndarray, event: threading.Event) -> None:
        while not self._stopping:
            event.clear()
            board[STATE] = IDLE  # only the helper leaves ASLEEP
            if serve(board, self.idle_cycles):
                return
            event.wait()

    def stop(self) -> None:
        """Ends the helper (at interpreter exit): STOP, then wakes it if it sleeps."""
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        self.board[STATE] = STOP
        self._event.set()
        thread.join(timeout=1.0)
        self._thread = None


# the process's helper, shared by everything that posts jobs
HELPER = Team()
