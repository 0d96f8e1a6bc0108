"""descentlab for PyTorch users (the optional extra ``torch``: ``pip install descentlab[torch]``).

- ``descentlab.torch.SGD``, ``Adagrad``, ``RMSprop``, ``Adadelta``, ``Adam``, ``AdamW``,
  ``Adamax``, ``NAdam``, ``RAdam``, ``Lion``: torch.optim.Optimizer subclasses with
  torch.optim's signatures, defaults, state keys and state dicts, running descentlab's rules
  (and taking its switches and ``convention=``).
- ``descentlab.torch.GradientMonitor``: the lab's per-layer diagnostics for any nn.Module,
  recorded into the results store that ``descentlab report`` renders.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("descentlab.torch needs PyTorch: pip install 'descentlab[torch]' (on a "
                      "CPU-only machine install torch's CPU build first)") from exc

from .monitor import GradientMonitor, GradientWarning
from .optimizers import (
    NAMES,
    OPTIMIZERS,
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Lion,
    NAdam,
    RAdam,
    RMSprop,
    TorchOptimizer,
)

__all__ = ["GradientMonitor", "GradientWarning", "NAMES", "OPTIMIZERS", "TorchOptimizer",
           "SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "Adamax", "NAdam",
           "RAdam", "Lion"]
