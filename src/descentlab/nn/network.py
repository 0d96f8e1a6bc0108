"""A multilayer perceptron built from a specification, with the options the lab compares.

``MLPSpec`` says what to build (it is what the results store records); ``MLP`` holds the
layers. Layer numbers count from the input: layer 1 takes the data, layer ``depth`` is the last
hidden layer, layer ``depth + 1`` is the output layer (Dense only, no activation, no norm).
Residual connections go around hidden layers 2 to ``depth`` (layer 1 changes the width).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .activations import ACTIVATIONS, make_activation
from .init import INITS, make_init
from .layers import Block, Dense, LayerNorm
from .losses import LOSSES


@dataclass(frozen=True)
class MLPSpec:
    inputs: int
    outputs: int
    depth: int = 10  # hidden layers
    width: int = 256
    activation: str = "sigmoid"
    init: str = "normal"
    init_std: float = 0.01  # for init="normal"
    residual: bool = False
    layernorm: bool = False
    loss: str = "cross_entropy"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("inputs", "outputs", "width"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise ValueError(f"{name} must be a positive integer, got "
                                 f"{getattr(self, name)!r}")
        if not (isinstance(self.depth, int) and self.depth >= 0):
            raise ValueError(f"depth must be a non-negative integer, got {self.depth!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose one of "
                             f"{', '.join(ACTIVATIONS)}")
        if self.init not in INITS:
            raise ValueError(f"unknown init {self.init!r}; choose one of {', '.join(INITS)}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")

    def as_dict(self) -> dict:
        return asdict(self)


class MLP:
    """The network of ``spec``, initialised from ``seed``.

    ``params`` and ``grads`` are flat lists in layer order (W, b, then γ, β where a layer has
    LayerNorm); ``loss_and_grad`` fills ``grads``.
    """

    def __init__(self, spec: MLPSpec, seed: int = 0) -> None:
        self.spec = spec
        rng = np.random.default_rng(seed)
        dtype = np.dtype(spec.dtype)
        init = make_init(spec.init, spec.init_std)
        sizes = [spec.inputs] + [spec.width] * spec.depth + [spec.outputs]
        self.layers: list[Block] = []
        pairs = zip(sizes[:-1], sizes[1:], strict=True)
        for number, (fan_in, fan_out) in enumerate(pairs, start=1):
            dense = Dense(init(rng, fan_in, fan_out, dtype), np.zeros(fan_out, dtype))
            hidden = number <= spec.depth
            self.layers.append(Block(
                dense,
                make_activation(spec.activation) if hidden else None,
                LayerNorm(fan_out, dtype) if hidden and spec.layernorm else None,
                residual=hidden and spec.residual and number > 1,
            ))
        self.layers[0].dense.needs_input_grad = False
        self.params = [p for layer in self.layers for p in layer.params]
        self.grads = [g for layer in self.layers for g in layer.grads]
        self._loss = LOSSES[spec.loss]

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def loss_and_grad(self, x: np.ndarray, y: np.ndarray) -> float:
        """The mean loss on the batch ``(x, y)``; the gradients are left in ``self.grads``."""
        loss, d = self._loss(self.forward(x), y)
        for layer in reversed(self.layers):
            d = layer.backward(d)
        return loss

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        return self._loss(self.forward(x), y)[0]

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Loss and accuracy (NaN for mse) on ``(x, y)``, from one forward pass."""
        out = self.forward(x)
        loss = self._loss(out, y)[0]
        if self.spec.loss != "cross_entropy":
            return loss, float("nan")
        return loss, float(np.mean(out.argmax(axis=1) == y))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class indices (cross-entropy) or outputs (mse)."""
        out = self.forward(x)
        return out.argmax(axis=1) if self.spec.loss == "cross_entropy" else out

    @property
    def weights(self) -> list[np.ndarray]:
        """Each layer's Dense weight, input side first (the diagnostics' unit)."""
        return [layer.dense.W for layer in self.layers]

    @property
    def weight_grads(self) -> list[np.ndarray]:
        return [layer.dense.grads[0] for layer in self.layers]
