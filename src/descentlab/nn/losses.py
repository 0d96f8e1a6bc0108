"""Losses: each returns the mean loss over the batch and its gradient with respect to the
network's output."""

from __future__ import annotations

import numpy as np


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean of −log softmax(logits)[label] over the batch (torch's ``cross_entropy``), and
    d loss / d logits = (softmax − one_hot) / batch. ``labels`` are integer class indices."""
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)  # exp cannot overflow
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = float(np.mean(np.log(total[:, 0]) - shifted[rows, labels])) if n else 0.0
    grad = exp / total
    grad[rows, labels] -= 1
    grad /= max(n, 1)
    return loss, grad


def mean_squared_error(outputs: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean of (output − target)² over every element (torch's ``mse_loss``) and its gradient.
    ``targets`` may be ``(batch,)`` for a single output."""
    targets = targets.reshape(outputs.shape)
    diff = outputs - targets
    loss = float(np.mean(diff * diff)) if diff.size else 0.0
    return loss, diff * diff.dtype.type(2 / max(diff.size, 1))


LOSSES = {"cross_entropy": softmax_cross_entropy, "mse": mean_squared_error}
