"""What ``GradientMonitor`` measures on a module's outputs, one output tensor at a time: its
element count, mean, variance (around its own mean: no cancellation as in E[y²] − E[y]²), the
fraction of inactive entries (saturated or dead, for an activation module) and its count of
non-finite entries.

Two ways to the same numbers, up to rounding:

- Contiguous float32 and float64 tensors on the CPU (the common case) are read in place by one
  compiled pass per dtype, through their data addresses: no copy, no allocation, three reads
  of each element at most. Done with torch operations instead, each output costs about ten
  small operations plus a float64 copy for the mean; on the torch lab's SmallCNN that was
  0.9 ms of a 2 ms record, most of what the monitor cost a training step (BENCHMARKS.md).
- Anything else (another device, a non-contiguous view, half precision) is measured with
  torch operations, batched over the outputs.

The inactive measures are the NumPy lab's (``nn.activations``): a saturating activation's
entry is saturated where its derivative, computed from the output, is below ``SATURATION``
times its largest value; a rectifier's unit is dead when it is not positive for any example of
the batch (the first dimension).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

from ..native.addresses import array_at
from ..nn.activations import SATURATION
from .optimizers import NUMPY_DTYPES

# what an output's inactive entries are, by the module that made it
PLAIN, SIGMOID, TANH, RECTIFIER = 0, 1, 2, 3
# a saturating activation's derivative computed from its output y, and its largest value
_DERIVATIVES = {SIGMOID: lambda y: y * (1 - y), TANH: lambda y: 1 - y * y}
_PEAKS = {SIGMOID: 0.25, TANH: 1.0}
_RECTIFIERS = (torch.nn.ReLU, torch.nn.ReLU6, torch.nn.LeakyReLU, torch.nn.PReLU,
               torch.nn.ELU, torch.nn.SELU, torch.nn.CELU, torch.nn.GELU, torch.nn.SiLU,
               torch.nn.Mish)

# per output: element count, mean, variance, inactive fraction (NaN for PLAIN), non-finite count
Stats = tuple[int, float, float, float, int]


def kind_of(module: torch.nn.Module) -> int:
    """What counts as an inactive entry of ``module``'s output (``PLAIN``: nothing)."""
    if isinstance(module, torch.nn.Sigmoid):
        return SIGMOID
    if isinstance(module, torch.nn.Tanh):
        return TANH
    return RECTIFIER if isinstance(module, _RECTIFIERS) else PLAIN


def _rows(y: torch.Tensor) -> int:
    """The batch size of ``y`` for the dead-unit test: its first dimension, or 1 for a vector
    or a scalar (a single example)."""
    return y.shape[0] if y.dim() > 1 else 1


def inactive_fraction(kind: int, y: torch.Tensor) -> float:
    """The saturated (``SIGMOID``, ``TANH``) or dead (``RECTIFIER``) fraction of ``y`` with
    torch operations; NaN for ``PLAIN`` or an empty ``y``."""
    if kind == PLAIN or y.numel() == 0:
        return math.nan
    if kind in _DERIVATIVES:
        return float((_DERIVATIVES[kind](y) < SATURATION * _PEAKS[kind]).float().mean())
    units = y.reshape(_rows(y), -1)
    return float((units.amax(dim=0) <= 0).sum()) / units.shape[1]


@numba.njit(cache=True, nogil=True, fastmath={"reassoc"})
def _measure(outputs, constants, out):
    """Per output k (``outputs[k]``: data address, element count, batch rows, kind): out[k] =
    sum, sum of squares around the mean, inactive count, non-finite count. ``constants`` (1,
    the sigmoid's and the tanh's saturation limits) are of the outputs' dtype, which they fix:
    the derivatives round and compare as torch's do. ``reassoc`` lets the sums vectorise
    (their order changes, not their precision: float64 accumulators); NaN and infinity keep
    their meaning."""
    one, sigmoid_limit, tanh_limit = constants[0], constants[1], constants[2]
    for k in range(outputs.shape[0]):
        n, rows, kind = outputs[k, 1], outputs[k, 2], outputs[k, 3]
        y = array_at(outputs[k, 0], n, constants)
        total = 0.0
        for i in range(n):
            total += np.float64(y[i])
        mean = total / n
        centred = 0.0
        for i in range(n):
            d = np.float64(y[i]) - mean
            centred += d * d
        inactive = 0
        if kind == SIGMOID:
            for i in range(n):
                inactive += y[i] * (one - y[i]) < sigmoid_limit
        elif kind == TANH:
            for i in range(n):
                inactive += one - y[i] * y[i] < tanh_limit
        elif kind == RECTIFIER:
            units = n // rows
            top = np.full(units, -np.inf, constants.dtype)
            for b in range(rows):
                for u in range(units):
                    top[u] = max(top[u], y[b * units + u])
            for u in range(units):
                inactive += top[u] <= 0
        bad = 0
        if not (math.isfinite(total) and math.isfinite(centred)):
            for i in range(n):
                bad += not math.isfinite(y[i])
        out[k, 0] = total
        out[k, 1] = centred
        out[k, 2] = inactive
        out[k, 3] = bad


# per compiled dtype, ``_measure``'s constants in it
_CONSTANTS = {dtype: np.array([1.0, SATURATION * _PEAKS[SIGMOID], SATURATION * _PEAKS[TANH]],
                              numpy_dtype) for dtype, numpy_dtype in NUMPY_DTYPES.items()}


def _compiled(kinds: list[int], outputs: list[torch.Tensor], dtype: torch.dtype) -> list[Stats]:
    """The statistics of contiguous CPU ``outputs`` of ``dtype``, in one compiled pass."""
    table = [(y.data_ptr(), y.numel(), _rows(y), kind) for y, kind in zip(outputs, kinds,
                                                                          strict=True)]
    out = np.empty((len(table), 4))
    _measure(np.array(table, np.int64), _CONSTANTS[dtype], out)
    stats = []
    for (_, n, rows, kind), (total, centred, inactive, bad) in zip(table, out.tolist(),
                                                                   strict=True):
        share = (math.nan if kind == PLAIN
                 else inactive / (n // rows if kind == RECTIFIER else n))
        stats.append((n, total / n, centred / n, share, int(bad)))
    return stats


@torch.no_grad()
def _with_torch(kinds: list[int], outputs: list[torch.Tensor]) -> list[Stats]:
    """The statistics of any ``outputs``, with torch operations batched over them: the means,
    then the norms of the centred outputs (torch's var_mean was measured 10-20 times slower
    than these two on small CPU tensors)."""
    means = torch.stack([y.mean(dtype=torch.float64) for y in outputs]).tolist()
    norms = torch.stack([norm.double() for norm in
                         torch._foreach_norm(torch._foreach_sub(outputs, means))]).tolist()
    stats = []
    for kind, y, mean, norm in zip(kinds, outputs, means, norms, strict=True):
        variance = norm * norm / y.numel()
        bad = 0 if math.isfinite(variance) and math.isfinite(mean) else int(
            (~torch.isfinite(y)).sum())
        stats.append((y.numel(), mean, variance, inactive_fraction(kind, y), bad))
    return stats


def output_stats(kinds: list[int], outputs: list[torch.Tensor]) -> list[Stats]:
    """Per output (of a module whose inactive measure is the same position's ``kinds``): its
    element count, mean, variance, inactive fraction and non-finite count. An empty output has
    count 0 and NaN statistics."""
    stats: list[Stats | None] = [None] * len(outputs)
    groups: dict[object, list[int]] = {}
    for i, y in enumerate(outputs):
        if y.numel() == 0:
            stats[i] = (0, math.nan, math.nan, math.nan, 0)
        elif y.is_cpu and y.dtype in NUMPY_DTYPES and y.is_contiguous():
            groups.setdefault(y.dtype, []).append(i)
        else:
            groups.setdefault(None, []).append(i)
    for dtype, positions in groups.items():
        chosen = [outputs[i] for i in positions]
        chosen_kinds = [kinds[i] for i in positions]
        found = (_with_torch(chosen_kinds, chosen) if dtype is None
                 else _compiled(chosen_kinds, chosen, dtype))
        for i, entry in zip(positions, found, strict=True):
            stats[i] = entry
    return stats  # type: ignore[return-value]


def pooled(parts: list[Stats]) -> tuple[float, float, float, int]:
    """One module's mean, standard deviation, inactive fraction and non-finite count over all
    its outputs in a step (a recurrent cell, a shared activation, gradient accumulation):
    exact pooling, the variance within each output plus that between their means."""
    if len(parts) == 1:  # the common case, a module called once
        count, mean, variance, inactive, bad = parts[0]
        return mean, math.sqrt(variance) if count else math.nan, inactive, bad
    count = sum(n for n, *_ in parts)
    bad = sum(b for *_, b in parts)
    if count == 0:
        return math.nan, math.nan, math.nan, bad
    mean = sum(n * m for n, m, *_ in parts if n) / count
    variance = sum(n * (v + (m - mean) * (m - mean)) for n, m, v, *_ in parts if n) / count
    inactive = sum(n * o for n, _, _, o, _ in parts if n) / count
    return mean, math.sqrt(variance), inactive, bad
