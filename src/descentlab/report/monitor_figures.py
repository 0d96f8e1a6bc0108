"""Figures of torch models: what ``GradientMonitor`` recorded per module, and the gradient
through time of the lab's recurrent networks. PNG bytes, like ``figures``."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from .figures import _png, _positive
from .results import Monitored, Run


def modules(run: Monitored, title: str) -> bytes:
    """Gradient norm per module over the recorded steps (a heat map), the update-to-weight
    ratio of the modules with parameters, and the saturated or dead fraction of the
    activation modules."""
    layers = run.having("grad_norm")
    activations = run.having("inactive")
    panels = 2 + bool(activations)
    fig = Figure(figsize=(5.2 * panels, 4.2), layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]

    steps, names, matrix = run.matrix("grad_norm", layers)
    positive = matrix[matrix > 0]
    norm = (LogNorm(vmin=max(positive.min(), positive.max() * 1e-12), vmax=positive.max())
            if positive.size else None)
    image = axes[0].imshow(np.ma.masked_invalid(_positive(matrix.T)), origin="lower",
                           aspect="auto", norm=norm, cmap="viridis", interpolation="nearest")
    axes[0].set_facecolor("black")
    _step_ticks(axes[0], steps)
    axes[0].set_yticks(range(len(names)), names, fontsize=7)
    axes[0].set_ylabel("module (input side at the bottom)")
    axes[0].set_title("gradient norm", fontsize=9)
    bar = fig.colorbar(image, ax=axes[0], shrink=0.9)
    bar.set_label("‖∂L/∂W‖ (black: 0 or not recorded)", fontsize=8)

    steps, names, ratios = run.matrix("update_ratio", layers)
    for column, name in enumerate(names):
        axes[1].plot(steps, _positive(ratios[:, column]), marker=".", label=name)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("‖ΔW‖ / ‖W‖")
    axes[1].set_title("update-to-weight ratio", fontsize=9)
    axes[1].grid(True, alpha=0.3)
    _legend(axes[1], len(names))

    if activations:
        steps, names, inactive = run.matrix("inactive", activations)
        for column, name in enumerate(names):
            axes[2].plot(steps, inactive[:, column], marker=".", label=name)
        axes[2].set_ylim(-0.02, 1.02)
        axes[2].set_xlabel("step")
        axes[2].set_ylabel("fraction")
        axes[2].set_title("saturated or dead fraction of activation outputs", fontsize=9)
        axes[2].grid(True, alpha=0.3)
        _legend(axes[2], len(names))
    fig.suptitle(title)
    return _png(fig)


def _step_ticks(ax, steps: list[int]) -> None:
    every = max(1, len(steps) // 8)
    ax.set_xticks(range(0, len(steps), every), [str(s) for s in steps[::every]])
    ax.set_xlabel("step")


def _legend(ax, count: int) -> None:
    if 0 < count <= 12:  # beyond that a legend hides the lines
        ax.legend(fontsize=7)


def gradient_through_time(runs: list[Run], title: str) -> bytes:
    """‖∂L/∂h_t‖ against the time step t, at initialisation and after training, one line per
    run: a line falling towards t = 1 is the gradient vanishing through time."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for run in runs:
        epochs, matrix = run.timestep_matrix()
        if not epochs:
            continue
        t = np.arange(1, matrix.shape[1] + 1)
        line = axes[0].plot(t, _positive(matrix[0]), label=run.label)[0]
        axes[1].plot(t, _positive(matrix[-1]), color=line.get_color(), label=run.label)
    for ax, when in zip(axes, ("at initialisation", "after training"), strict=True):
        ax.set_yscale("log")
        ax.set_xlabel("time step t (the loss is taken after the last)")
        ax.set_ylabel("‖∂L/∂h_t‖")
        ax.set_title(when, fontsize=9)
        ax.grid(True, alpha=0.3)
    _legend(axes[1], len(runs))
    fig.suptitle(title)
    return _png(fig)


def accuracy_by_length(runs: list[Run], title: str) -> bytes:
    """Test accuracy against the sequence length, one line per network and optimizer."""
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.add_subplot()
    lines: dict[str, list[tuple[int, float]]] = {}
    for run in runs:
        key = f"{run.spec.get('cell', run.network)} | {run.optimizer}"
        lines.setdefault(key, []).append((run.spec.get("length", 0), run.test_accuracy))
    for key, points in lines.items():
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=key)
    chance = runs[0].chance if runs else None
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle=":", label="chance")
    ax.set_xscale("log")
    ax.set_xlabel("sequence length")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return _png(fig)
