"""Executors run a rule over a batch of parameters that share one step's coefficients.

An executor has a ``name`` and a method

    run(rule, h, key, params, grads, columns)

which updates ``params`` and their state in place: ``h`` is the rule's coefficients for this
step, ``columns`` has one entry per name in ``rule.arrays`` (the list of that state array for
every parameter, or None when the group's options do not use it), and ``key`` names the batch
so that an executor may keep a plan from one step to the next; and ``forget()``, which drops
such plans (the optimizer calls it when it replaces its state).

- ``"fused"`` (the default): each rule compiled with Numba into one multithreaded pass.
- ``"arraywise"``: the readable reference, NumPy on whole arrays.
"""

from __future__ import annotations

from .arraywise import ArrayWise, step_arrays

EXECUTORS = ("fused", "arraywise")


def make_executor(name: str):
    """A new executor by name (the fused one is imported, and Numba with it, only when asked)."""
    if name == "arraywise":
        return ArrayWise()
    if name == "fused":
        from .fused import Fused

        return Fused()
    raise ValueError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")


__all__ = ["EXECUTORS", "ArrayWise", "make_executor", "step_arrays"]
