"""Contour plots of a test function with the optimizers' paths, as PNG or animated GIF."""

from __future__ import annotations

import numpy as np
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from .functions import TestFunction
from .paths import Path


def _axes(function: TestFunction, paths: list[Path]):
    fig = Figure(figsize=(7.5, 6), layout="constrained")
    ax = fig.add_subplot()
    x0, x1, y0, y1 = function.window
    xs, ys = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
    zs = function.value(xs, ys)
    if function.log_levels:
        floor = max(float(zs.min()), 1e-3)
        levels = np.geomspace(floor, float(zs.max()), 30)
        ax.contour(xs, ys, np.maximum(zs, floor), levels=levels, norm=LogNorm(),
                   cmap="Greys", linewidths=0.6)
    else:
        ax.contour(xs, ys, zs, levels=30, cmap="Greys", linewidths=0.6)
    if function.minimum is not None:
        ax.plot(*function.minimum, marker="*", color="black", markersize=14, linestyle="",
                label="minimum")
    ax.plot(*function.start, marker="o", color="black", linestyle="", label="start")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_title(function.title)
    lines = [ax.plot([], [], marker=".", markersize=3, linewidth=1.3,
                     label=f"{p.label} (lr {p.lr:g})")[0] for p in paths]
    ax.legend(fontsize=8, loc="upper right")
    return fig, lines


def png(function: TestFunction, paths: list[Path], target: str) -> None:
    fig, lines = _axes(function, paths)
    for line, path in zip(lines, paths, strict=True):
        line.set_data(path.points[:, 0], path.points[:, 1])
    fig.savefig(target, dpi=100)


def gif(function: TestFunction, paths: list[Path], target: str, frames: int = 60,
        fps: int = 15) -> None:
    """The paths drawn step by step: ``frames`` frames spread over the longest path."""
    fig, lines = _axes(function, paths)
    longest = max(len(p.points) for p in paths)
    cuts = np.unique(np.linspace(1, longest, frames).astype(int))

    def draw(frame: int):
        for line, path in zip(lines, paths, strict=True):
            shown = path.points[:cuts[frame]]
            line.set_data(shown[:, 0], shown[:, 1])
        return lines

    FuncAnimation(fig, draw, frames=len(cuts), blit=False).save(
        target, writer=PillowWriter(fps=fps), dpi=80)
