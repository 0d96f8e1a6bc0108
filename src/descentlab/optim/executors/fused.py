"""The fused executor: every parameter of a batch stepped in one compiled, multithreaded pass.

What it does per call, and why it is cheap for many small arrays:

1. The parameters and state arrays are compared, by identity, with those of the previous call
   for the same batch. If they are the same arrays, the *plan* made last time is reused: which
   members can be fused, grouped by dtype, their data addresses and the cut of the work into
   blocks. The plan holds references to the arrays, so their memory stays theirs.
2. The gradients are new arrays at every step: their data addresses are read in one vectorised
   call (``ndarray_fields.data_addresses``).
3. One kernel call per dtype steps every fused member, on the threads its ``launch`` chooses
   (``launches``: this thread and the helper thread, or Numba's pool; descentlab.torch runs
   it on torch's own OpenMP threads).

A member whose parameter, gradient or state is not C-contiguous (a transposed or strided view)
is stepped by the array-wise reference instead: the result is the same, only slower. So is a
member whose state array does not match the parameter (shape, dtype) or is read-only: the
kernel writes through raw addresses and must never be handed memory it cannot own.

The caller (``Optimizer.step``) has checked that every gradient has its parameter's shape and
dtype.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..rules import Rule
from .arraywise import step_member
from .kernels import COLUMNS
from .launches import Launch, helper_launch
from .ndarray_fields import data_addresses, object_ids

BLOCK = 1 << 15  # elements per unit of work: big arrays are cut so that all threads share them


@dataclass
class Part:
    """The fusable members of one dtype."""

    dtype: np.dtype
    members: np.ndarray  # positions in the batch
    pointers: np.ndarray  # (members, COLUMNS): column 1 (the gradient) is filled at each call
    blocks: np.ndarray  # (blocks, 3): member row in ``pointers``, first element, count
    active: tuple[bool, ...]  # which of the rule's state arrays are in use
    everyone: bool  # members are the whole batch, in order
    # what a launch prepared for this part and keeps from call to call (its arguments)
    scratch: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        # the gradient column as a (strided) memoryview, and the members' positions as ints:
        # for :meth:`point_at_gradients` from a list
        self._column = memoryview(self.pointers[:, 1])
        self._positions = self.members.tolist()

    def __getstate__(self) -> dict:
        """A copied or pickled optimizer copies its plans: without the memoryview, which
        cannot be pickled (it is made again from the copied pointer table), and without the
        launches' scratch, which holds compiled functions and the addresses of this part's
        own tables (a copy that used them would step the original's arrays)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_column", "scratch")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._column = memoryview(self.pointers[:, 1])
        self.scratch = {}

    def point_at_gradients(self, addresses: np.ndarray | list[int]) -> None:
        """Fill the gradient column from ``addresses``, the data addresses of the whole
        batch's gradients, in the batch's order: an int64 array (``Fused.run``) or a list of
        ints (``Fused.run_again``).

        A list goes in through the column's memoryview: NumPy's array conversion and
        indexing took ~15 µs more of a descentlab.torch step that followed a 2^20-element
        kernel (on the caches it had streamed), where the step is ~250 µs."""
        if isinstance(addresses, np.ndarray):
            self.pointers[:, 1] = addresses if self.everyone else addresses[self.members]
            return
        if not self.everyone:
            addresses = [addresses[i] for i in self._positions]
        self._column[:] = array(self._column.format, addresses)


@dataclass
class _Plan:
    params: list[np.ndarray]
    columns: list[list[np.ndarray] | None]  # as in ``Fused.run``
    parts: list[Part]
    slow: list[int]  # members stepped array-wise (not contiguous)
    ids: list[np.ndarray | None]  # ``object_ids`` of params and of each column

    def holds(self, params, columns) -> bool:
        """Whether this plan was made for exactly these arrays (identity, not equality: the
        plan keeps its arrays alive, so an id here cannot have been reused by another)."""
        if len(columns) != len(self.columns):
            return False
        for mine, theirs in zip(self.ids, [params, *columns], strict=True):
            if mine is None or theirs is None:
                if mine is not theirs:
                    return False
            elif len(mine) != len(theirs) or not np.array_equal(mine, object_ids(theirs)):
                return False
        return True


class Fused:
    """Steps a batch of parameters with one compiled kernel call per dtype.

    Args:
        launch: runs a part's kernel over its blocks (the default:
            :func:`launches.helper_launch`).
    """

    name = "fused"

    def __init__(self, launch: Launch = helper_launch) -> None:
        self._plans: dict[Hashable, _Plan] = {}
        self._launch = launch

    def forget(self) -> None:
        """Drop every plan (and the references to arrays it holds)."""
        self._plans.clear()

    def run(
        self,
        rule: Rule,
        h: NamedTuple,
        key: Hashable,
        params: Sequence[np.ndarray],
        grads: Sequence[np.ndarray],
        columns: Sequence[Sequence[np.ndarray] | None],
    ) -> None:
        """Step ``params`` (all sharing the coefficients ``h``); see ``executors.Executor``."""
        plan = self._plans.get(key)
        if plan is None or not plan.holds(params, columns):
            plan = self._plans[key] = _make_plan(params, columns)

        addresses, contiguous = data_addresses(grads)
        slow = plan.slow
        if not contiguous.all():
            slow = sorted({*slow, *np.flatnonzero(~contiguous).tolist()})
        for part in plan.parts:
            self._run_part(rule, part, h, addresses, contiguous)
        for i in slow:
            step_member(rule, h, params, grads, columns, i)

    def fully_fused(self, key: Hashable) -> bool:
        """Whether the last ``run`` under ``key`` stepped every member in the kernel (none was
        left to the array-wise reference), so that :meth:`run_again` can repeat it."""
        plan = self._plans.get(key)
        return plan is not None and not plan.slow

    def run_again(self, rule: Rule, h: NamedTuple, key: Hashable,
                  addresses: list[int]) -> None:
        """Step the same arrays as the last ``run`` under ``key``, with new gradients given by
        their data addresses (ints, in the batch's order).

        The caller vouches for what ``run`` would have checked: the parameters and state are
        still those arrays, their memory has not moved, and each gradient is a C-contiguous
        array of its parameter's shape and dtype (descentlab.torch's ``StepPlan`` confirms it).
        """
        plan = self._plans.get(key)
        if plan is None or plan.slow or len(addresses) != len(plan.params):
            raise ValueError(f"run_again: no fully fused plan of {len(addresses)} members "
                             f"under {key!r}")
        for part in plan.parts:
            part.point_at_gradients(addresses)
            self._launch(rule, part, part.blocks, h)

    def _run_part(self, rule, part: Part, h, addresses: np.ndarray,
                  contiguous: np.ndarray) -> None:
        """Step ``part``'s members, whose gradients' data addresses are in ``addresses``
        (indexed like the batch); members with a non-contiguous gradient are left to the
        caller."""
        blocks = part.blocks
        part.point_at_gradients(addresses)
        rows = contiguous if part.everyone else contiguous[part.members]
        if not rows.all():
            blocks = blocks[rows[blocks[:, 0]]]
        if len(blocks) == 0:
            return
        self._launch(rule, part, blocks, h)


def _make_plan(params, columns) -> _Plan:
    used = [c for c in columns if c is not None]
    fusable: dict[np.dtype, list[int]] = {}
    slow = []
    for i, p in enumerate(params):
        arrays = [p, *(c[i] for c in used)]
        if all(a.flags.c_contiguous and a.flags.writeable and a.dtype == p.dtype
               and a.shape == p.shape for a in arrays):
            fusable.setdefault(p.dtype, []).append(i)
        else:
            slow.append(i)
    parts = []
    for dtype, members in fusable.items():
        pointers = np.empty((len(members), COLUMNS), np.int64)
        for row, i in enumerate(members):
            # The data address of an array we hold does not change (short of ndarray.resize
            # with refcheck=False, which NumPy documents as unsafe). Columns a rule does not
            # use point at the parameter and are never read: the kernel's flags are constants.
            here = params[i].ctypes.data
            state = [c[i].ctypes.data if c is not None else here for c in columns]
            pointers[row] = [here, here, *state, *[here] * (COLUMNS - 2 - len(state))]
        sizes = np.array([params[i].size for i in members], np.int64)
        parts.append(Part(
            dtype=np.dtype(dtype),
            members=np.array(members, np.intp),
            pointers=pointers,
            blocks=cut(sizes),
            everyone=len(members) == len(params),
            active=tuple(c is not None for c in columns),
        ))
    # the plan keeps the arrays themselves: their data addresses stay valid while it lives
    kept = [list(c) if c is not None else None for c in columns]
    ids = [object_ids(c) if c is not None else None for c in [params, *kept]]
    return _Plan(list(params), kept, parts, slow, ids)


def cut(sizes: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """Blocks ``(member, first, count)`` of at most ``block`` elements covering every array."""
    per_member = -(-sizes // block)
    member = np.repeat(np.arange(len(sizes)), per_member)
    first_block = np.cumsum(per_member) - per_member
    first = (np.arange(len(member)) - np.repeat(first_block, per_member)) * block
    count = np.minimum(block, sizes[member] - first)
    return np.stack([member, first, count], axis=1).astype(np.int64)
