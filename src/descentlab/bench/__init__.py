"""``descentlab bench``: optimizer step times on this machine, against its memory bandwidth
and against torch.optim. See :func:`run` and the figures in BENCHMARKS.md."""

from .run import BenchSettings, render, run

__all__ = ["BenchSettings", "render", "run"]
