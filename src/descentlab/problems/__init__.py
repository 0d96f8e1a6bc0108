"""Benchmark problems: a registry of named ``Problem``s (six built in) that sweeps and
``descentlab lr-find`` run, and the API to add your own (see ``Problem`` and ``register``)."""

from .base import Model, Problem, get, names, register

__all__ = ["Model", "Problem", "get", "names", "register"]
