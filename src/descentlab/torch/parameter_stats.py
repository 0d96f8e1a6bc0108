"""What ``GradientMonitor`` measures on parameters around a recorded optimizer step: before
it, each parameter's gradient and weight sums of squares and a copy of its weights; after it,
the sum of squares of its update (the weights minus that copy).

Contiguous float32 and float64 CPU parameters (with gradients of the same kind) are handled by
two compiled passes shared between threads, as the fused optimizers' are: the first reads each
gradient and weight once and writes the copy into a buffer kept between records (no
allocation), the second reads the weights and the copy. These tensors are as big as the model,
so the passes are bound by memory traffic; done with torch's ``_foreach`` operations they took
three more passes and a new tensor per parameter. Any other parameter is measured with those
operations.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np
import torch

from ..native.addresses import array_at
from ..optim.executors.fused import cut
from .optimizers import NUMPY_DTYPES

# below this many elements in all, the passes run on one thread: waking the others cost more
# than they saved (measured: 58 against 38 µs for the 3x256 MLP's 145k, 130 against 101 µs for
# 262k; from about 1M elements two threads win, 1.36 against 2.04 ms at 4M)
PARALLEL_FROM = 1 << 19


@numba.njit(inline="always", fastmath={"reassoc"})
def _before_block(b, pointers, copies, blocks, like, partial):
    """Block b of member k (``pointers[k]``: its weight's and its gradient's addresses, the
    latter 0 without one): partial[b] = the gradient's and the weight's sums of squares, and
    the weights copied to ``copies[k]``."""
    k, skip, count = blocks[b, 0], blocks[b, 1] * like.itemsize, blocks[b, 2]
    w = array_at(pointers[k, 0] + skip, count, like)
    copy = array_at(copies[k] + skip, count, like)
    weights = 0.0
    for i in range(count):
        copy[i] = w[i]
        weights += np.float64(w[i]) * np.float64(w[i])
    grads = 0.0
    if pointers[k, 1] != 0:
        g = array_at(pointers[k, 1] + skip, count, like)
        for i in range(count):
            grads += np.float64(g[i]) * np.float64(g[i])
    partial[b, 0] = grads
    partial[b, 1] = weights


@numba.njit(inline="always", fastmath={"reassoc"})
def _after_block(b, pointers, copies, blocks, like, partial):
    """Block b of member k (``pointers[k, 0]``: its weight's address): partial[b, 0] = the sum
    of squares of its weights minus ``copies[k]``."""
    k, skip, count = blocks[b, 0], blocks[b, 1] * like.itemsize, blocks[b, 2]
    w = array_at(pointers[k, 0] + skip, count, like)
    copy = array_at(copies[k] + skip, count, like)
    total = 0.0
    for i in range(count):
        d = np.float64(w[i]) - np.float64(copy[i])
        total += d * d
    partial[b, 0] = total


@numba.njit(inline="always")
def _members(blocks, partial, totals):
    """Each member's totals: the sum of its blocks' shares."""
    totals[:] = 0.0
    for b in range(blocks.shape[0]):
        totals[blocks[b, 0]] += partial[b, :totals.shape[1]]


# a pass (before the step: ``_before_block``; after it: ``_after_block``) on one thread and on
# all; ``reassoc`` lets the sums vectorise (their order changes, not their precision: float64
# accumulators)
@numba.njit(cache=True, nogil=True, fastmath={"reassoc"})
def _serial(before, pointers, copies, blocks, like, partial, totals):
    for b in range(blocks.shape[0]):
        if before:
            _before_block(b, pointers, copies, blocks, like, partial)
        else:
            _after_block(b, pointers, copies, blocks, like, partial)
    _members(blocks, partial, totals)


@numba.njit(parallel=True, cache=True, nogil=True, fastmath={"reassoc"})
def _parallel(before, pointers, copies, blocks, like, partial, totals):
    for b in numba.prange(blocks.shape[0]):
        if before:
            _before_block(b, pointers, copies, blocks, like, partial)
        else:
            _after_block(b, pointers, copies, blocks, like, partial)
    _members(blocks, partial, totals)


class _Layout(NamedTuple):
    """Where the compiled passes put the copies of parameters of one dtype and these sizes,
    kept between records while the sizes stay the same."""

    sizes: tuple[int, ...]
    blocks: np.ndarray  # (member, first element, count): the work, shared between threads
    buffer: np.ndarray  # every copy, one after the other
    copies: np.ndarray  # each member's copy's address in ``buffer``
    like: np.ndarray  # a one-element array of the dtype
    partial: np.ndarray  # scratch: each block's sums
    parallel: bool  # whether the passes share the work between threads

    @classmethod
    def of(cls, sizes: tuple[int, ...], dtype: torch.dtype) -> _Layout:
        counts = np.array(sizes, np.int64)
        buffer = np.empty(int(counts.sum()), NUMPY_DTYPES[dtype])
        blocks = cut(counts)
        return cls(sizes, blocks, buffer,
                   buffer.ctypes.data + (np.cumsum(counts) - counts) * buffer.itemsize,
                   buffer[:1].copy(), np.empty((len(blocks), 2)), buffer.size >= PARALLEL_FROM)

    def run(self, before: bool, pointers: np.ndarray, totals: np.ndarray) -> None:
        """One pass (``before`` or after the step) over the members at ``pointers``."""
        (_parallel if self.parallel else _serial)(before, pointers, self.copies, self.blocks,
                                                  self.like, self.partial, totals)


def _compilable(p: torch.Tensor) -> bool:
    g = p.grad
    return (p.is_cpu and p.dtype in NUMPY_DTYPES and p.is_contiguous()
            and (g is None or (g.is_cpu and g.dtype == p.dtype and g.is_contiguous())))


class ParameterStats:
    """Gradient, weight and update sums of squares of a fixed list of parameters.

    Call ``before()`` before an optimizer step and ``after()`` once it is done."""

    def __init__(self, params: list[torch.Tensor]) -> None:
        self.params = params
        self._layouts: dict[torch.dtype, _Layout] = {}
        # what ``after`` compares with: the compiled groups (dtype, positions), and the other
        # parameters' positions with their copies
        self._compiled: list[tuple[torch.dtype, list[int]]] = []
        self._copies: tuple[list[int], list[torch.Tensor]] | None = None

    def before(self) -> tuple[list[float | None], list[float]]:
        """Per parameter: its gradient's sum of squares (None without a gradient) and its
        weights'; the weights are copied for ``after``."""
        count = len(self.params)
        grads: list[float | None] = [None] * count
        weights = [0.0] * count
        groups: dict[torch.dtype | None, list[int]] = {}
        for i, p in enumerate(self.params):
            groups.setdefault(p.dtype if _compilable(p) else None, []).append(i)
        self._compiled, self._copies = [], None
        for dtype, positions in groups.items():
            chosen = [self.params[i] for i in positions]
            if dtype is None:
                found = self._before_with_torch(positions, chosen)
            else:
                found = self._before_compiled(dtype, positions, chosen)
            for i, (g, w) in zip(positions, found, strict=True):
                grads[i], weights[i] = g, w
        return grads, weights

    def _before_compiled(self, dtype, positions, params) -> list[tuple[float | None, float]]:
        sizes = tuple(p.numel() for p in params)
        layout = self._layouts.get(dtype)
        if layout is None or layout.sizes != sizes:
            layout = self._layouts[dtype] = _Layout.of(sizes, dtype)
        pointers = np.array([(p.data_ptr(), 0 if p.grad is None else p.grad.data_ptr())
                             for p in params], np.int64)
        totals = np.empty((len(params), 2))
        layout.run(True, pointers, totals)
        self._compiled.append((dtype, positions))
        return [(None if p.grad is None else g, w)
                for p, (g, w) in zip(params, totals.tolist(), strict=True)]

    @torch.no_grad()
    def _before_with_torch(self, positions, params) -> list[tuple[float | None, float]]:
        with_grads = [p for p in params if p.grad is not None]
        grads = iter(_squares([p.grad for p in with_grads]))
        weights = _squares(params)
        # ×1 copies every weight in one call
        self._copies = (positions, torch._foreach_mul(params, 1.0))
        return [(None if p.grad is None else next(grads), w)
                for p, w in zip(params, weights, strict=True)]

    def after(self) -> list[float]:
        """Per parameter, the sum of squares of its change since ``before``; NaN for one whose
        storage was replaced by one of another size or layout."""
        updates = [math.nan] * len(self.params)
        for dtype, positions in self._compiled:
            layout = self._layouts[dtype]
            # a parameter whose storage was replaced by another (of another size, say) has no
            # update: its copy is compared with itself, and the result dropped
            kept = [p.dtype == dtype and p.numel() == size and p.is_contiguous()
                    for p, size in zip((self.params[i] for i in positions), layout.sizes,
                                       strict=True)]
            pointers = np.array([(self.params[i].data_ptr() if keep else copy, 0) for i, keep,
                                 copy in zip(positions, kept, layout.copies.tolist(),
                                             strict=True)], np.int64)
            totals = np.empty((len(positions), 1))
            layout.run(False, pointers, totals)
            for i, keep, (total,) in zip(positions, kept, totals.tolist(), strict=True):
                updates[i] = total if keep else math.nan
        if self._copies is not None:
            positions, copies = self._copies
            with torch.no_grad():
                differences = torch._foreach_sub([self.params[i] for i in positions], copies)
            for i, total in zip(positions, _squares(differences), strict=True):
                updates[i] = total
        self._compiled, self._copies = [], None
        return updates


def _squares(tensors: list[torch.Tensor]) -> list[float]:
    """Each tensor's sum of squares: one ``_foreach_norm`` call, read back at once."""
    if not tensors:
        return []
    norms = torch.stack([n.double() for n in torch._foreach_norm(tensors)]).tolist()
    return [n * n for n in norms]
