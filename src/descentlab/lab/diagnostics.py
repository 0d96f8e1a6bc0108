"""Per-layer statistics of a network in training, and the vanishing/exploding detector.

The unit is a layer's Dense weight matrix W (layer 1 takes the input): its gradient norm
‖∂L/∂W‖, its norm ‖W‖, the norm of one optimizer update ‖ΔW‖ and the update-to-weight ratio
‖ΔW‖/‖W‖ (a widely used health signal: around 1e-3 per step is the usual rule of thumb, far
below means the layer is not learning), and the fraction of the layer's units that are
saturated (sigmoid, tanh) or dead (relu family), see ``nn.activations``.

The detector compares the first layer's gradient norm with the last layer's: below
``vanishing`` (default 1e-3) the gradients vanish on their way to the input, above
``exploding`` (default 1e3), or non-finite anywhere, they explode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

VANISHING = 1e-3
EXPLODING = 1e3


def norm(a: np.ndarray) -> float:
    flat = a.ravel()
    return math.sqrt(float(np.dot(flat, flat)))


@dataclass(frozen=True)
class Finding:
    kind: str  # "vanishing", "exploding" or "healthy"
    ratio: float  # first layer's gradient norm over the last layer's
    message: str

    @property
    def flagged(self) -> bool:
        return self.kind != "healthy"


def detect(grad_norms: list[float], vanishing: float = VANISHING,
           exploding: float = EXPLODING, names: list[str] | None = None,
           unit: str = "layer") -> Finding:
    """Vanishing or exploding gradients from per-layer gradient norms (input side first).

    ``names``: what to call each layer in the message (a torch module's name); by default
    they are numbered from 1 as ``unit``s ("layer", or "time step" for the hidden states of
    a recurrent network), and runs of numbers are shortened (1-3, 5).
    """
    if names is not None and len(names) != len(grad_norms):
        raise ValueError(f"{len(names)} names for {len(grad_norms)} gradient norms")
    if len(grad_norms) < 2:
        return Finding("healthy", 1.0, "one layer: nothing to compare")

    def called(indices: list[int]) -> str:
        if names is None:
            return f"{unit}(s) " + _layers([i + 1 for i in indices])
        return ", ".join(names[i] for i in indices)

    last = len(grad_norms)
    first_name, last_name = ((f"{unit} 1", f"{unit} {last}") if names is None
                             else (names[0], names[-1]))
    bad = [i for i, g in enumerate(grad_norms) if not math.isfinite(g)]
    if bad:
        return Finding("exploding", math.nan,
                       f"exploding gradients: non-finite gradient norm in {called(bad)}")
    first, top = grad_norms[0], grad_norms[-1]
    ratio = first / top if top > 0 else (math.inf if first > 0 else 1.0)
    if ratio < vanishing:
        weak = [i for i, g in enumerate(grad_norms) if top > 0 and g / top < vanishing]
        return Finding("vanishing", ratio,
                       f"vanishing gradients: {first_name}'s gradient norm is {ratio:.2g} "
                       f"times {last_name}'s (threshold {vanishing:g}); {called(weak)} "
                       f"are below it")
    if ratio > exploding:
        strong = [i for i, g in enumerate(grad_norms) if top > 0 and g / top > exploding]
        return Finding("exploding", ratio,
                       f"exploding gradients: {first_name}'s gradient norm is {ratio:.2g} "
                       f"times {last_name}'s (threshold {exploding:g}); {called(strong)} "
                       f"are above it")
    return Finding("healthy", ratio, f"{first_name}'s gradient norm is {ratio:.2g} times "
                                     f"{last_name}'s")


def _layers(numbers: list[int]) -> str:
    """1, 2, 3, 5 -> '1-3, 5'."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


@dataclass
class LayerStats:
    layer: int
    grad_norm: float  # mean over the epoch's steps (at initialisation: one full-batch pass)
    weight_norm: float
    update_norm: float  # of the epoch's last step (0 at initialisation)
    update_ratio: float
    inactive: float  # saturated or dead fraction of units, on the epoch's last batch


def layer_stats(net, grad_norms: list[float], updates: list[float] | None) -> list[LayerStats]:
    """Statistics of every layer of ``net`` (an ``nn.MLP``), given its gradient norms and the
    norms of its last update (None at initialisation)."""
    stats = []
    for number, (layer, g) in enumerate(zip(net.layers, grad_norms, strict=True), start=1):
        w = norm(layer.dense.W)
        u = updates[number - 1] if updates is not None else 0.0
        inactive = (layer.activation.inactive_fraction(layer.output)
                    if layer.activation is not None and layer.output is not None else math.nan)
        stats.append(LayerStats(number, g, w, u, u / w if w > 0 else math.nan, inactive))
    return stats
