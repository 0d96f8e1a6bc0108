"""The demo study: do adaptive optimizers overcome vanishing gradients, and how do they compare
with the architectural remedies?

The subject is the seed articles' deep network: 10 hidden sigmoid layers of 256 units on
scikit-learn's digits, initialised the naive way, from a normal distribution with standard
deviation 0.1. Its gradients at initialisation shrink by orders of magnitude from the output
layer to the input layer (the detector says by how much). It is trained with GD (the whole
training split per step), SGD, SGD with momentum, AdaGrad, RMSprop, Adadelta and Adam.

Then the same depth with each remedy known since: ReLU with He initialisation (He et al.
2015), residual connections (He et al. 2016) and layer normalisation (Ba et al. 2016), the
latter two added to the sigmoid network. Each remedy is trained with SGD with momentum (the
best non-adaptive optimizer) and with Adam, so that the report can say whether an optimizer or
an architecture did more.

Every learning rate is chosen by the study's search on the validation split, from a grid of
three decades around the rate people usually start from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .. import optim
from ..nn import MLPSpec
from .study import OptimizerChoice, Study, log_grid

BASELINE = MLPSpec(inputs=64, outputs=10, depth=10, width=256, activation="sigmoid",
                   init="normal", init_std=0.1)

OPTIMIZERS = (
    OptimizerChoice("GD", "SGD", lr_grid=(0.1, 1.0, 10.0), batch_size=None),
    OptimizerChoice("SGD", "SGD", lr_grid=(0.01, 0.1, 1.0)),
    OptimizerChoice("SGD+momentum", "SGD", {"momentum": 0.9}, lr_grid=(0.001, 0.01, 0.1)),
    OptimizerChoice("AdaGrad", "Adagrad", lr_grid=(0.001, 0.01, 0.1)),
    OptimizerChoice("RMSprop", "RMSprop", lr_grid=(1e-4, 1e-3, 1e-2)),
    OptimizerChoice("Adadelta", "Adadelta", lr_grid=(0.1, 1.0, 10.0)),
    OptimizerChoice("Adam", "Adam", lr_grid=(1e-4, 1e-3, 1e-2)),
)

# the optimizers each remedy is tried with: labels from OPTIMIZERS
REMEDY_OPTIMIZERS = ("SGD+momentum", "Adam")


def remedies(base: MLPSpec) -> dict[str, MLPSpec]:
    """The architectural remedies applied to ``base`` (same depth and width), by name."""
    return {
        "ReLU + He init": replace(base, activation="relu", init="he_normal"),
        "residual": replace(base, residual=True),
        "layer norm": replace(base, layernorm=True),
    }


@dataclass(frozen=True)
class DemoSize:
    """How much work the demo does: the full demo, or ``--quick``."""

    width: int
    epochs: int
    search_epochs: int


FULL = DemoSize(width=256, epochs=25, search_epochs=8)
QUICK = DemoSize(width=128, epochs=8, search_epochs=2)


def studies(size: DemoSize = FULL, seed: int = 0) -> list[Study]:
    """The two studies of the demo: the optimizers on the baseline, then the remedies."""
    base = replace(BASELINE, width=size.width)
    by_label = {choice.label: choice for choice in OPTIMIZERS}
    common = {"epochs": size.epochs, "search_epochs": size.search_epochs, "batch_size": 64,
              "seed": seed, "target_accuracy": 0.9}
    return [
        Study("optimizers", [base], OPTIMIZERS, **common),
        Study("remedies", list(remedies(base).values()),
              [by_label[label] for label in REMEDY_OPTIMIZERS], **common),
    ]


def choice(name: str) -> OptimizerChoice:
    """An optimizer for a study, by the demo's label (``SGD+momentum``, ``GD``, any case) or by
    a ``descentlab.optim`` name with its default hyperparameters and a grid of three decades
    around its default learning rate."""
    by_label = {c.label.lower(): c for c in OPTIMIZERS}
    if name.lower() in by_label:
        return by_label[name.lower()]
    if name in optim.OPTIMIZERS:
        default = optim.defaults_of(optim.OPTIMIZERS[name])["lr"]
        return OptimizerChoice(name, name, lr_grid=log_grid(default, 1, 1))
    names = dict.fromkeys([c.label for c in OPTIMIZERS] + list(optim.OPTIMIZERS))
    raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(names)}")
