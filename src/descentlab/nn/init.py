"""Weight initialisations. Biases always start at 0.

With ``fan_in`` inputs and ``fan_out`` outputs per layer:

============================  =================================================================
``normal`` (``std``)          N(0, std²): the seeds' and the old default; std=0.01 makes deep
                              sigmoid networks vanish
``glorot_uniform``            U(−a, a), a = √(6 / (fan_in + fan_out))  (Glorot & Bengio 2010)
``glorot_normal``             N(0, 2 / (fan_in + fan_out))
``he_uniform``                U(−a, a), a = √(6 / fan_in)  (He et al. 2015, gain √2, fan-in)
``he_normal``                 N(0, 2 / fan_in)
============================  =================================================================

Glorot keeps the variance of activations and of back-propagated gradients about constant
across layers for symmetric activations near their linear regime (tanh); He's √2 makes up for
ReLU zeroing half of its inputs. These are torch.nn.init's ``xavier_*`` (gain 1) and
``kaiming_*`` (``nonlinearity='relu'``, ``mode='fan_in'``) formulas; note that torch stores a
Linear weight as (fan_out, fan_in), we store it as (fan_in, fan_out).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

Init = Callable[[np.random.Generator, int, int, np.dtype], np.ndarray]


def make_init(name: str, std: float = 0.01) -> Init:
    """The initialisation called ``name`` (``std`` is used by ``normal`` only)."""
    if name == "normal":
        if not (math.isfinite(std) and std > 0):
            raise ValueError(f"init 'normal' needs a positive finite std, got {std!r}")
    scale: dict[str, Callable[[int, int], tuple[str, float]]] = {
        "normal": lambda fi, fo: ("normal", std),
        "glorot_uniform": lambda fi, fo: ("uniform", math.sqrt(6 / (fi + fo))),
        "glorot_normal": lambda fi, fo: ("normal", math.sqrt(2 / (fi + fo))),
        "he_uniform": lambda fi, fo: ("uniform", math.sqrt(6 / fi)),
        "he_normal": lambda fi, fo: ("normal", math.sqrt(2 / fi)),
    }
    if name not in scale:
        raise ValueError(f"unknown init {name!r}; choose one of {', '.join(scale)}")

    def init(rng: np.random.Generator, fan_in: int, fan_out: int, dtype) -> np.ndarray:
        kind, size = scale[name](fan_in, fan_out)
        shape = (fan_in, fan_out)
        values = rng.uniform(-size, size, shape) if kind == "uniform" else rng.normal(
            0.0, size, shape)
        return values.astype(dtype)

    return init


INITS = ("normal", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal")
