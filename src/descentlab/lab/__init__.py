"""The vanishing-gradient lab: training with per-layer diagnostics, the results store,
studies."""

from .diagnostics import EXPLODING, VANISHING, Finding, LayerStats, detect, layer_stats
from .store import Store
from .train import RunResult, TrainConfig, evaluate, train

__all__ = [
    "EXPLODING", "VANISHING", "Finding", "LayerStats", "RunResult", "Store", "TrainConfig",
    "detect", "evaluate", "layer_stats", "train",
]
