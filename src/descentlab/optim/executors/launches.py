"""How the fused executor runs a part's kernel over its blocks: a *launch*.

- :func:`numba_launch`: the kernel on Numba's thread pool.
- :func:`helper_launch` (the NumPy face's default): the calling thread and descentlab's helper
  thread (``native.team``) half each, when the helper is awake and free; else
  :func:`numba_launch`.

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

import numpy as np

from ...native.team import HELPER, JOB, in_halves, may_split
from ..rules import Rule
from .kernels import coefficients_as, kernel_for
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


def numba_launch(rule: Rule, part: Part, blocks: np.ndarray, h: NamedTuple) -> None:
    """Step ``blocks`` of ``part`` on Numba's thread pool."""
    kernel = kernel_for(rule, part.active, h)
    h = coefficients_as(h, part.dtype)
    with _LAUNCH:
        kernel(part.pointers, blocks, h, part.like)


def helper_launch(rule: Rule, part: Part, blocks: np.ndarray, h: NamedTuple) -> None:
    """Step ``blocks`` of ``part`` here and on the helper thread, half each, if the helper is
    awake and free and this thread may use more than one (``team.may_split``); else on
    Numba's pool."""
    if len(blocks) > 1 and may_split():
        kept = StepArguments.kept("helper", rule, part, blocks, h, _helper_job)
        if in_halves(HELPER.board, kept.function, kept.address, len(blocks)):
            return
    numba_launch(rule, part, blocks, h)


def _helper_job(share: Callable):
    """The helper's form of a share: a :data:`team.JOB`."""

    def job(address, first, last):
        share(address, first, last)

    return compiled_wrapper(job, JOB)
