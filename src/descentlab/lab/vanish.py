"""A study over a grid of networks (``descentlab vanish``): depth x width x activation x
initialisation x architecture, each trained with every chosen optimizer."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from ..data import Dataset
from ..nn import MLPSpec
from .demo import choice
from .study import Study

# architecture options, by the names the command line takes
ARCHITECTURES = {
    "plain": {"residual": False, "layernorm": False},
    "residual": {"residual": True, "layernorm": False},
    "layernorm": {"residual": False, "layernorm": True},
    "residual+layernorm": {"residual": True, "layernorm": True},
}


def networks(data: Dataset, depths: Sequence[int], widths: Sequence[int],
             activations: Sequence[str], inits: Sequence[str], init_std: float = 0.1,
             architectures: Sequence[str] = ("plain",), dtype: str = "float32"
             ) -> list[MLPSpec]:
    """Every combination, for ``data``'s inputs and outputs."""
    unknown = [a for a in architectures if a not in ARCHITECTURES]
    if unknown:
        raise ValueError(f"unknown architecture {unknown[0]!r}; choose from "
                         f"{', '.join(ARCHITECTURES)}")
    if data.classes is None:
        outputs, loss = (1 if data.y.ndim == 1 else data.y.shape[1]), "mse"
    else:
        outputs, loss = data.classes, "cross_entropy"
    return [MLPSpec(inputs=data.x.shape[1], outputs=outputs, depth=depth, width=width,
                    activation=activation, init=init, init_std=init_std, loss=loss,
                    dtype=dtype, **ARCHITECTURES[architecture])
            for depth, width, activation, init, architecture in itertools.product(
                depths, widths, activations, inits, architectures)]


def study(name: str, specs: Sequence[MLPSpec], optimizers: Sequence[str], *, epochs: int,
          search_epochs: int, batch_size: int | None, seed: int,
          target_accuracy: float | None) -> Study:
    return Study(name, list(specs), [choice(o) for o in optimizers], epochs=epochs,
                 search_epochs=search_epochs, batch_size=batch_size, seed=seed,
                 target_accuracy=target_accuracy)
