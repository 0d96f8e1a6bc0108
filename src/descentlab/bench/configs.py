"""What ``descentlab bench`` measures: one row per optimizer configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..optim import OPTIMIZERS
from ..optim.rules import Rule

# torch.optim has fused CPU kernels for these; the others have foreach as their fastest path.
TORCH_FUSED = frozenset({"SGD", "Adam", "AdamW", "Adagrad"})


@dataclass(frozen=True)
class Config:
    label: str
    algorithm: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def rule(self) -> Rule:
        return OPTIMIZERS[self.algorithm].rule

    def bytes_per_element(self, dtype: np.dtype) -> int:
        """Bytes a step must move per element: read g, read and write θ and each state array.

        SGD 12, SGD with momentum 20, Adam 28, AMSGrad 36 for float32.
        """
        group = {**_defaults(self.algorithm), **self.kwargs}
        arrays = len(self.rule.active_arrays(group))
        return np.dtype(dtype).itemsize * (3 + 2 * arrays)


def _defaults(algorithm: str) -> dict[str, Any]:
    from ..optim import defaults_of

    return defaults_of(OPTIMIZERS[algorithm])


CONFIGS = [
    Config("SGD", "SGD", {"lr": 1e-3}),
    Config("SGD+momentum", "SGD", {"lr": 1e-3, "momentum": 0.9}),
    Config("Adagrad", "Adagrad"),
    Config("RMSprop", "RMSprop"),
    Config("Adadelta", "Adadelta"),
    Config("Adam", "Adam"),
    Config("AdamW", "AdamW"),
    Config("Adamax", "Adamax"),
    Config("NAdam", "NAdam"),
    Config("RAdam", "RAdam"),
    Config("Lion", "Lion"),
]


def select(names: list[str]) -> list[Config]:
    """The configurations whose label or algorithm is in ``names`` (all when empty)."""
    if not names:
        return list(CONFIGS)
    known = {c.label.lower() for c in CONFIGS} | {c.algorithm.lower() for c in CONFIGS}
    unknown = [n for n in names if n.lower() not in known]
    if unknown:
        raise ValueError(f"unknown optimizer {', '.join(unknown)}; choose from "
                         f"{', '.join(c.label for c in CONFIGS)}")
    wanted = {n.lower() for n in names}
    return [c for c in CONFIGS if c.label.lower() in wanted or c.algorithm.lower() in wanted]
