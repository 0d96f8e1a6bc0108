"""Gradient-descent optimizers for NumPy arrays, exact against torch.optim.

    >>> import numpy as np
    >>> from descentlab.optim import Adam
    >>> w = np.zeros(3)
    >>> opt = Adam([w], lr=0.1)
    >>> for _ in range(100):
    ...     opt.step([2 * (w - 1.0)])      # gradient of |w - 1|²
"""

from . import conventions
from .algorithms import (
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
    defaults_of,
)
from .checkpoint import LoadResult, load, save
from .clipping import clip_grad_norm_, clip_grad_value_
from .optimizer import Optimizer
from .schedules import (
    CosineAnnealingLR,
    ExponentialLR,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)

__all__ = [
    "OPTIMIZERS", "Optimizer", "defaults_of", "conventions",
    "SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Lion",
    "clip_grad_norm_", "clip_grad_value_", "save", "load", "LoadResult",
    "LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR",
    "OneCycleLR", "ReduceLROnPlateau", "SequentialLR",
]
