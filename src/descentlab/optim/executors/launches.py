"""How the fused executor runs a part's kernel over its blocks: a *launch*.

- :func:`numba_launch`: the blocks on Numba's thread pool.
- :func:`helper_launch` (the NumPy face's default): the calling thread and descentlab's helper
  thread (``native.team``) half each, when the helper is awake and free; else
  :func:`numba_launch`.

Both run the same compiled function, the part's *job* (``shares``: the rule's serial blocks
loop, with the :data:`team.JOB` signature): the helper calls it by its address from its board,
and each thread of Numba's pool calls it by its address for one share of the blocks
(:func:`_on_pool`, one compiled function for every rule). So each variant of a rule is compiled
once, not once for each pool (the Numba pool used to run a ``parallel=True`` kernel of its own,
which compiled the same element loop a second time, 1.5-2.5 s a variant).

Why the helper: Numba's TBB workers sleep between launches and take about 20 µs to start,
where the helper takes a job in about 0.2 µs. In a training loop of the lab's networks the
helper is awake at every step (it has just computed half of the backward pass's products), a
step is 0.3-0.5 ms, and the non-finite scan before it is another launch. The scan
(``finite``) splits the gradients at the same block as the step, so each thread steps the
gradients it has just read, from its own cache. Measured in BENCHMARKS.md ("The optimizer
step on the helper thread").

A sleeping helper is not woken for a step: outside training (an optimizer alone, as in
``descentlab bench``) it would spin beside Numba's workers for a millisecond after each
step, on the cores they use.

descentlab.torch has a launch of its own (``torch.torch_threads``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import numba
import numpy as np

from ...native.team import HELPER, JOB, call_job, in_halves, may_split
from ..rules import Rule
from .kernels import check_coefficients
from .shares import StepArguments, compiled_wrapper

if TYPE_CHECKING:
    from .fused import Part

# launch(rule, part, blocks, h): steps ``blocks`` of ``part`` with the coefficients ``h`` as the
# rule made them (Python floats); the launch rounds them to the part's dtype, as NumPy rounds a
# Python float that meets a float32 array
Launch = Callable[[Rule, "Part", np.ndarray, NamedTuple], None]

# Numba's threading layers are not all thread-safe (its "workqueue" layer, used where neither
# TBB nor OpenMP is there, must not be entered by two threads at once): a step holds this lock
# while its kernels run.
_LAUNCH = threading.Lock()

_SCRATCH = "job"  # where a part keeps its job's arguments (both launches share them)


def numba_launch(rule: Rule, part: Part, blocks: np.ndarray, h: NamedTuple) -> None:
    """Step ``blocks`` of ``part`` on Numba's thread pool."""
    check_coefficients(h)  # before anything changes: the record would cast an int silently
    kept = StepArguments.kept(_SCRATCH, rule, part, blocks, h, _job)
    with _LAUNCH:
        _on_pool(kept.function, kept.address, len(blocks), numba.get_num_threads())


def helper_launch(rule: Rule, part: Part, blocks: np.ndarray, h: NamedTuple) -> None:
    """Step ``blocks`` of ``part`` here and on the helper thread, half each, if the helper is
    awake and free and this thread may use more than one (``team.may_split``); else on
    Numba's pool."""
    if len(blocks) > 1 and may_split():
        kept = StepArguments.kept(_SCRATCH, rule, part, blocks, h, _job)
        if in_halves(HELPER.board, kept.function, kept.address, len(blocks)):
            return
    numba_launch(rule, part, blocks, h)


@numba.njit(parallel=True, cache=True, nogil=True)
def _on_pool(function, arguments, units, threads):
    """The :data:`team.JOB` at address ``function`` over ``units`` units of work, one equal
    share for each of ``threads`` threads of Numba's pool (its scheduler would split a loop over
    the units into the same shares). The thread count comes from Python: read here, it would
    keep the function out of Numba's cache (a ctypes pointer among its globals).

    One share (one unit, or one thread) runs here: the pool would run it on one thread too,
    after a launch that cost about 12 µs of a small array's 22-36 µs step."""
    shares = min(threads, units)
    if shares == 1:
        call_job(function, arguments, 0, units)
        return
    for share in numba.prange(shares):
        call_job(function, arguments, units * share // shares, units * (share + 1) // shares)


def _job(share: Callable):
    """A share as a :data:`team.JOB`: what the helper and Numba's pool call."""

    def job(address, first, last):
        share(address, first, last)

    return compiled_wrapper(job, JOB)
