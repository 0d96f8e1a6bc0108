"""Choosing an optimizer with evidence: sweeps (tune on validation, rerun over seeds) over the
problem registry, run on a local process pool or a Ray cluster, and the learning-rate range
test."""

from .config import ConfigError, OptimizerSpec, SweepConfig, load, parse
from .sweep import SweepSummary, run_sweep

__all__ = ["ConfigError", "OptimizerSpec", "SweepConfig", "SweepSummary", "load", "parse",
           "run_sweep"]
