"""Search spaces for tuning: per hyperparameter a range (uniform or log-uniform), a list of
points, or one fixed value; and the quasi-random points a tuning run tries.

Trials are drawn from a Halton sequence (Halton 1960) shifted by a random offset from the
sweep's seed (a Cranley-Patterson rotation), as AlgoPerf's tuning rules do: N quasi-random
points cover a space more evenly than N random ones, and unlike a grid every trial gets a new
value in every dimension. When the space holds only lists and all their combinations fit in
the trial budget, each combination is tried once instead.

The sequence is written out here rather than taken from scipy.stats.qmc so that the same
configuration gives the same points whatever scipy is installed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71)


@dataclass(frozen=True)
class Range:
    """Values from ``low`` to ``high``, uniform or (``log``) uniform in the logarithm."""

    low: float
    high: float
    log: bool = False

    def at(self, u: float) -> float:
        if self.log:
            return float(math.exp(math.log(self.low) + u * (math.log(self.high) -
                                                            math.log(self.low))))
        return float(self.low + u * (self.high - self.low))

    def ends(self) -> tuple[float, float]:
        return self.low, self.high


@dataclass(frozen=True)
class Points:
    """One of a list of values, each equally likely."""

    values: tuple[Any, ...]

    def at(self, u: float) -> Any:
        return self.values[min(int(u * len(self.values)), len(self.values) - 1)]

    def ends(self) -> tuple[Any, ...]:
        return self.values


Dimension = Range | Points


def halton(count: int, dimensions: int, seed: int) -> np.ndarray:
    """``count`` points of the ``dimensions``-dimensional Halton sequence in [0, 1), each
    dimension shifted by a random offset drawn from ``seed`` (modulo 1). The sequence starts at
    index 1: index 0 is the origin in every dimension."""
    if dimensions > len(_PRIMES):
        raise ValueError(f"at most {len(_PRIMES)} searched hyperparameters, got {dimensions}")
    points = np.empty((count, dimensions))
    for d, base in enumerate(_PRIMES[:dimensions]):
        for i in range(count):
            index, fraction, value = i + 1, 1.0, 0.0
            while index:  # the radical inverse of i + 1 in this base
                fraction /= base
                index, digit = divmod(index, base)
                value += digit * fraction
            points[i, d] = value
    shift = np.random.default_rng(seed).random(dimensions)
    return (points + shift) % 1.0


@dataclass(frozen=True)
class SearchSpace:
    """Hyperparameter name -> ``Range``, ``Points`` or a fixed value."""

    dimensions: Mapping[str, Any]

    @property
    def searched(self) -> list[str]:
        return [k for k, v in self.dimensions.items() if isinstance(v, (Range, Points))]

    def trials(self, budget: int, seed: int) -> list[dict[str, Any]]:
        """The settings to try: ``budget`` Halton points, every combination when the space is
        only lists with at most ``budget`` combinations, one setting when nothing is
        searched."""
        fixed = {k: v for k, v in self.dimensions.items() if k not in self.searched}
        searched = [(k, self.dimensions[k]) for k in self.searched]
        if not searched:
            return [dict(fixed)]
        if all(isinstance(d, Points) for _, d in searched):
            combinations = math.prod(len(d.values) for _, d in searched)
            if combinations <= budget:
                return [{**fixed, **dict(zip([k for k, _ in searched], values, strict=True))}
                        for values in itertools.product(*(d.values for _, d in searched))]
        points = halton(budget, len(searched), seed)
        return [{**fixed, **{k: d.at(u) for (k, d), u in zip(searched, row, strict=True)}}
                for row in points]

    def corners(self) -> list[dict[str, Any]]:
        """Settings with each searched hyperparameter at each of its ends in turn (the others
        at their first value): enough to check that the whole space is valid."""
        first = {k: (v.ends()[0] if isinstance(v, (Range, Points)) else v)
                 for k, v in self.dimensions.items()}
        settings = [first]
        for name in self.searched:
            for value in self.dimensions[name].ends():
                settings.append({**first, name: value})
        return settings
