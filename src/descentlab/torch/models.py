"""The torch lab's networks and the adding problem.

- ``SmallCNN``: two 3x3 convolutions, a 2x2 max-pool and two dense layers, for scikit-learn's
  8x8 digits; its activation is a choice, so that sigmoid's vanishing gradient can be set
  against relu's.
- ``MLP``: ``depth`` hidden layers of ``width`` units, for MNIST-1D's 40 inputs.
- ``Recurrent``: a vanilla tanh RNN or an LSTM cell unrolled over the sequence by hand, so that
  the gradient of the loss with respect to every time step's hidden state h_t can be read: the
  vanishing gradient through time (Bengio et al. 1994; Hochreiter & Schmidhuber 1997).
- ``adding_problem``: Hochreiter & Schmidhuber's (1997) adding problem as Le et al. (2015) and
  Arjovsky et al. (2016) pose it: each step carries a value drawn from U(0, 1) and a marker;
  exactly two steps are marked, one in each half of the sequence, and the target is the sum
  of their two values. Predicting the mean (1) scores a mean squared error of 1/6.
"""

from __future__ import annotations

import numpy as np
import torch

ACTIVATIONS = {"relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh}

# the adding problem counts a prediction as right within this distance of the target
# (Hochreiter & Schmidhuber 1997, experiment 4)
ADDING_TOLERANCE = 0.04
# the share of targets within ADDING_TOLERANCE of 1, what always predicting the mean scores:
# the sum of two U(0, 1) has the triangular density 1 - |s - 1|, so it is 2·0.04 − 0.04²
ADDING_CHANCE = 2 * ADDING_TOLERANCE - ADDING_TOLERANCE ** 2


def _activation(name: str) -> torch.nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose from "
                         f"{', '.join(ACTIVATIONS)}") from None


class SmallCNN(torch.nn.Sequential):
    """conv 3x3 (16) - act - conv 3x3 (32) - act - max-pool 2x2 - dense 64 - act - dense."""

    def __init__(self, classes: int = 10, activation: str = "relu", side: int = 8) -> None:
        super().__init__(
            torch.nn.Conv2d(1, 16, 3, padding=1), _activation(activation),
            torch.nn.Conv2d(16, 32, 3, padding=1), _activation(activation),
            torch.nn.MaxPool2d(2), torch.nn.Flatten(),
            torch.nn.Linear(32 * (side // 2) ** 2, 64), _activation(activation),
            torch.nn.Linear(64, classes))


class MLP(torch.nn.Sequential):
    """``depth`` hidden layers of ``width`` units with ``activation``, torch's default init."""

    def __init__(self, inputs: int, classes: int, depth: int = 3, width: int = 256,
                 activation: str = "relu") -> None:
        layers: list[torch.nn.Module] = []
        for number in range(depth):
            layers += [torch.nn.Linear(inputs if number == 0 else width, width),
                       _activation(activation)]
        super().__init__(*layers, torch.nn.Linear(width, classes))


class Recurrent(torch.nn.Module):
    """A tanh RNN cell (``cell="rnn"``) or an LSTM cell (``"lstm"``) read over the sequence,
    and a linear read-out of the last hidden state.

    ``forward(x)``, x of shape (batch, time, features), returns (batch,) predictions. With
    ``keep_hidden`` set, the hidden states h_1..h_T are kept in ``hidden`` with their
    gradients retained, so that after ``backward`` h_t.grad is ∂L/∂h_t.
    """

    def __init__(self, cell: str = "rnn", inputs: int = 2, hidden: int = 32) -> None:
        super().__init__()
        if cell == "rnn":
            self.cell: torch.nn.Module = torch.nn.RNNCell(inputs, hidden, nonlinearity="tanh")
        elif cell == "lstm":
            self.cell = torch.nn.LSTMCell(inputs, hidden)
        else:
            raise ValueError(f"unknown cell {cell!r}; choose 'rnn' or 'lstm'")
        self.kind, self.size = cell, hidden
        self.readout = torch.nn.Linear(hidden, 1)
        self.keep_hidden = False
        self.hidden: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.new_zeros(x.shape[0], self.size)
        c = x.new_zeros(x.shape[0], self.size)
        self.hidden = []
        for t in range(x.shape[1]):
            if self.kind == "lstm":
                h, c = self.cell(x[:, t], (h, c))
            else:
                h = self.cell(x[:, t], h)
            if self.keep_hidden:
                h.retain_grad()
                self.hidden.append(h)
        return self.readout(h).squeeze(-1)

    def hidden_grad_norms(self) -> list[float]:
        """‖∂L/∂h_t‖ for t = 1..T after a backward pass with ``keep_hidden`` set."""
        return [float(torch.linalg.vector_norm(h.grad)) if h.grad is not None else 0.0
                for h in self.hidden]


def adding_problem(examples: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``examples`` sequences of ``length`` steps: x (examples, length, 2) float32 of (value,
    marker), y (examples,) float32 the sum of the two marked values."""
    if not (isinstance(length, int) and length >= 2):
        raise ValueError(f"the adding problem needs sequences of at least 2 steps, got "
                         f"{length!r}")
    rng = np.random.default_rng(seed)
    values = rng.random((examples, length), dtype=np.float32)
    half = length // 2
    first = rng.integers(0, half, examples)
    second = rng.integers(half, length, examples)
    markers = np.zeros((examples, length), dtype=np.float32)
    rows = np.arange(examples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1)
    y = values[rows, first] + values[rows, second]
    return x, y.astype(np.float32)
