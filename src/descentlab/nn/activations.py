"""Activation functions with their derivatives, and what each one's failure looks like.

Each activation is a small object: ``forward(x)`` returns ``y`` and keeps what ``backward``
needs; ``backward(dy)`` returns ``dx``. ``inactive_fraction(y)`` measures the failure the
vanishing-gradient literature names for it:

- sigmoid and tanh **saturate**: where the output is near its bounds the derivative is near 0
  (Glorot & Bengio 2010 watched the top sigmoid layer saturate at 0). We count an output as
  saturated when the derivative there is below 5 % of its maximum: sigmoid outputs outside
  about [0.053, 0.947], tanh outputs with |y| above about 0.975.
- relu units **die**: a unit whose output is 0 for every example of the batch passes no
  gradient at all. leaky_relu and gelu never stop passing gradient, so the same count (units
  that are not positive for any example) is reported as their "dead" fraction too, for
  comparison.

Arrays are updated in place where possible (``out=``): an elementwise op on a 64 x 256 batch
costs a few microseconds, and a temporary array costs as much again.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from scipy.special import erf

from . import sigmoid_passes
from .underflow import flush_tiny

SATURATION = 0.05  # derivative below this fraction of its maximum counts as saturated


class Activation:
    name: ClassVar[str]
    kind: ClassVar[str]  # "saturating" or "rectifying": which failure inactive_fraction counts

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward_biased(self, z: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``forward(z + b)``, for a hidden layer's product ``z`` and bias ``b``; ``z`` is
        the layer's own new array and may be overwritten. Sigmoid does it in one pass."""
        z += b
        return self.forward(z)

    def backward_to_bias(self, dy: np.ndarray, db: np.ndarray) -> np.ndarray:
        """``backward(dy)`` with the magnitudes too small to matter set to 0 (``underflow``),
        and its sum over the batch written into ``db`` (the gradient of the bias added
        before the activation). Sigmoid does it in one pass."""
        d = self.backward(dy)
        if d is not dy:  # a fresh array: the caller's may still be needed
            flush_tiny(d)
        np.sum(d, axis=0, out=db)
        return d

    def inactive_fraction(self, y: np.ndarray) -> float:
        """Saturated fraction of outputs (saturating kinds), or fraction of units that are
        not positive for any example of the batch (rectifying kinds)."""
        if y.size == 0:
            return 0.0
        if self.kind == "rectifying":
            return float(np.mean(~np.any(y > 0, axis=0)))
        return float(np.mean(self._derivative_from_output(y) < SATURATION * self._peak))

    _peak: ClassVar[float] = 1.0

    def _derivative_from_output(self, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Sigmoid(Activation):
    """σ(x) = 1 / (1 + e^−x). float32 arrays are computed by ``sigmoid_passes`` (its own
    exponential, within 2.5 units in the last place of a float64 σ), float64 ones by NumPy."""

    name, kind, _peak = "sigmoid", "saturating", 0.25

    def forward(self, x):
        y = np.array(x, order="C")
        if not (y.size and sigmoid_passes.forward(rows := _as_rows(y),
                                                  np.zeros(rows.shape[1], y.dtype))):
            np.negative(y, out=y)
            np.exp(y, out=y)
            y += 1
            np.reciprocal(y, out=y)
        self.y = y
        return y

    def forward_biased(self, z, b):
        if sigmoid_passes.forward(z, b):
            self.y = z
            return z
        return super().forward_biased(z, b)

    def backward(self, dy):
        y = self.y
        if y.size and dy.shape == y.shape:
            rows = _as_rows(y)
            unwanted = np.empty(rows.shape[1], y.dtype)  # the column sums
            d = sigmoid_passes.backward(_as_rows(dy), rows, unwanted, flush=False)
            if d is not None:
                return d.reshape(y.shape)
        return dy * y * (1 - y)

    def backward_to_bias(self, dy, db):
        d = sigmoid_passes.backward(dy, self.y, db, flush=True)
        return d if d is not None else super().backward_to_bias(dy, db)

    def _derivative_from_output(self, y):
        return y * (1 - y)


def _as_rows(a: np.ndarray) -> np.ndarray:
    """``a`` as a 2-d array of its last axis' rows (a view where ``a`` is contiguous)."""
    return a.reshape(-1, a.shape[-1]) if a.ndim >= 2 else a.reshape(1, -1)


class Tanh(Activation):
    name, kind = "tanh", "saturating"

    def forward(self, x):
        self.y = np.tanh(x)
        return self.y

    def backward(self, dy):
        y = self.y
        return dy * (1 - y * y)

    def _derivative_from_output(self, y):
        return 1 - y * y


class ReLU(Activation):
    name, kind = "relu", "rectifying"

    def forward(self, x):
        self.y = np.maximum(x, 0)
        return self.y

    def backward(self, dy):
        return dy * (self.y > 0)


class LeakyReLU(Activation):
    name, kind = "leaky_relu", "rectifying"

    def __init__(self, negative_slope: float = 0.01) -> None:
        self.negative_slope = negative_slope

    def forward(self, x):
        self.x = x
        return np.where(x > 0, x, x * x.dtype.type(self.negative_slope))

    def backward(self, dy):
        return np.where(self.x > 0, dy, dy * dy.dtype.type(self.negative_slope))


class GELU(Activation):
    """x·Φ(x) with the exact normal CDF (torch's default ``approximate='none'``)."""

    name, kind = "gelu", "rectifying"

    def forward(self, x):
        self.x = x
        self.cdf = (0.5 * (1 + erf(x / math.sqrt(2)))).astype(x.dtype, copy=False)
        return x * self.cdf

    def backward(self, dy):
        x = self.x
        density = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return (dy * (self.cdf + x * density)).astype(dy.dtype, copy=False)


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Sigmoid, Tanh, ReLU, LeakyReLU, GELU)
}


def make_activation(name: str) -> Activation:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}"
        ) from None
