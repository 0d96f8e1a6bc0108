"""Gradient clipping with torch.nn.utils' semantics, on NumPy gradient arrays (in place)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def _present(grads: Iterable[np.ndarray | None]) -> list[np.ndarray]:
    if isinstance(grads, np.ndarray):
        grads = [grads]
    present = [g for g in grads if g is not None]
    for g in present:
        if not isinstance(g, np.ndarray) or g.dtype.kind != "f":
            raise TypeError(f"gradients must be floating-point NumPy arrays, got {g!r:.60}")
        if not g.flags.writeable:
            raise ValueError("a gradient array is read-only; clipping works in place")
    return present


def _vector_norm(g: np.ndarray, norm_type: float) -> np.floating:
    if g.size == 0:
        return g.dtype.type(0.0)
    if g.size == 1:
        # |x| exactly, as torch returns it; the general formula would underflow x² to 0
        return g.dtype.type(abs(g.reshape(-1)[0]))
    return g.dtype.type(np.linalg.norm(g.reshape(-1), ord=norm_type))


def clip_grad_norm_(
    grads: Iterable[np.ndarray | None],
    max_norm: float,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
) -> np.floating:
    """Scale gradients in place so that their joint norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: the total norm is the ``norm_type`` norm of the
    vector of per-array norms (``inf`` for the max-abs norm); every gradient is multiplied by
    ``min(1, max_norm / (total + 1e-6))``. ``None`` entries are skipped. An empty array
    counts as norm 0 for every ``norm_type`` (torch refuses the max norm of an empty tensor).

    Args:
        grads: gradient arrays (an array or a sequence; None entries allowed).
        max_norm: the largest norm allowed.
        norm_type: the p of the p-norm; ``float("inf")`` or ``"inf"`` for the max norm.
        error_if_nonfinite: raise RuntimeError (leaving the gradients untouched) when the
            total norm is NaN or infinite, instead of scaling by it.

    Returns:
        The total norm of the gradients *before* clipping, as a NumPy scalar.
    """
    present = _present(grads)
    norm_type = float(norm_type)
    max_norm = float(max_norm)
    if not present:
        return np.float32(0.0)
    norms = np.array([_vector_norm(g, norm_type) for g in present])
    total = _vector_norm(norms, norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients is non-finite, so it cannot be "
            "clipped. To scale the gradients by the non-finite norm anyway, set "
            "error_if_nonfinite=False"
        )
    coef = min(max_norm / (total + total.dtype.type(1e-6)), 1.0)
    for g in present:
        g *= g.dtype.type(coef)
    return total


def clip_grad_value_(grads: Iterable[np.ndarray | None], clip_value: float) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]`` in place.

    As ``torch.nn.utils.clip_grad_value_``; ``None`` entries are skipped.
    """
    present = _present(grads)
    clip_value = float(clip_value)
    for g in present:
        np.clip(g, -clip_value, clip_value, out=g)
