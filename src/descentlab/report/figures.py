"""The report's figures, drawn with matplotlib and returned as PNG bytes.

Figures are made with ``matplotlib.figure.Figure`` directly, not pyplot: no global state, no
GUI backend, nothing left open between calls.

A gradient norm of exactly 0 (a layer whose backpropagated signal underflowed, see
``nn.underflow``) has no place on a log scale: such points are left out of line plots and
drawn in the heat maps' "below the scale" colour, and the figure says so.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from .results import Run

DPI = 100


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def _positive(values: np.ndarray) -> np.ndarray:
    """NaN where a value cannot go on a log scale."""
    values = np.asarray(values, dtype=float)
    return np.where(values > 0, values, np.nan)


def _layer_axis(ax, layers: int) -> None:
    ax.set_xlabel("layer (1 = input side)")
    ax.set_xticks(range(1, layers + 1))


def initial_profile(runs: list[Run]) -> bytes:
    """Gradient norm per layer at initialisation, one line per network."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    seen = set()
    layers = 0
    for run in runs:
        if run.network in seen:
            continue
        seen.add(run.network)
        norms = run.initial_grad_norms()
        layers = max(layers, len(norms))
        ax.plot(range(1, len(norms) + 1), _positive(norms), marker="o", label=run.network)
    ax.set_yscale("log")
    _layer_axis(ax, layers)
    ax.set_ylabel("‖∂L/∂W‖ at initialisation")
    ax.set_title("Gradient norm per layer at initialisation")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def update_ratios(runs: list[Run], title: str) -> bytes:
    """Per run, the median over the epochs of each layer's update-to-weight ratio."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    layers = 0
    for run in runs:
        profile = run.update_ratio_profile()
        layers = max(layers, len(profile))
        ax.plot(range(1, len(profile) + 1), _positive(profile), marker="o",
                label=run.optimizer if len({r.network for r in runs}) == 1 else run.label)
    ax.set_yscale("log")
    _layer_axis(ax, layers)
    ax.set_ylabel("‖ΔW‖ / ‖W‖ per step (median over epochs)")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def gradient_heatmaps(runs: list[Run], title: str) -> bytes:
    """Per run, the gradient norm of every layer at every epoch (epoch 0: initialisation),
    on one shared logarithmic colour scale."""
    columns = min(4, len(runs))
    rows = -(-len(runs) // columns)
    fig = Figure(figsize=(3.2 * columns + 1, 2.6 * rows + 0.6), layout="constrained")
    matrices = [run.layer_matrix("grad_norm") for run in runs]
    positive = np.concatenate([m[m > 0] for m in matrices if np.any(m > 0)] or [np.ones(1)])
    norm = LogNorm(vmin=max(positive.min(), positive.max() * 1e-12), vmax=positive.max())
    axes = fig.subplots(rows, columns, squeeze=False)
    image = None
    for ax, run, matrix in zip(axes.flat, runs, matrices, strict=False):
        image = ax.imshow(np.ma.masked_invalid(_positive(matrix.T)), origin="lower",
                          aspect="auto", norm=norm, cmap="viridis", interpolation="nearest",
                          extent=(-0.5, matrix.shape[0] - 0.5, 0.5, matrix.shape[1] + 0.5))
        ax.set_title(run.optimizer if len({r.network for r in runs}) == 1 else run.label,
                     fontsize=8)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel("layer", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_facecolor("black")  # zero (underflowed) and missing values
    for ax in list(axes.flat)[len(runs):]:
        ax.set_visible(False)
    if image is not None:
        bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.9)
        bar.set_label("‖∂L/∂W‖ (black: 0 or not recorded)")
    fig.suptitle(title)
    return _png(fig)


def learning_curves(runs: list[Run], title: str) -> bytes:
    """Training loss and validation accuracy per epoch."""
    fig = Figure(figsize=(11, 4))
    loss_ax, accuracy_ax = fig.subplots(1, 2)
    several_networks = len({r.network for r in runs}) > 1
    for run in runs:
        label = run.label if several_networks else run.optimizer
        epochs = np.arange(1, len(run.series("train_loss")) + 1)
        loss_ax.plot(epochs, run.series("train_loss"), label=label)
        accuracy_ax.plot(epochs, run.series("val_accuracy"), label=label)
    loss_ax.set_yscale("log")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("training loss")
    accuracy_ax.set_xlabel("epoch")
    accuracy_ax.set_ylabel("validation accuracy")
    accuracy_ax.set_ylim(0, 1)
    for ax in (loss_ax, accuracy_ax):
        ax.grid(True, alpha=0.3)
    accuracy_ax.legend(fontsize=7, loc="best")
    fig.suptitle(title)
    return _png(fig)
