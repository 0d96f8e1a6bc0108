"""The built-in problems, from the cheap and exactly known to the deep and hard.

- ``linear-regression``: the seed articles' y = 4 + 3x + noise, J = ‖Xθ − y‖²/2m; validation
  loss (min); 10 epochs of batches of 32.
- ``logreg-digits``: softmax regression on scikit-learn's digits; validation accuracy (max);
  20 epochs of batches of 64.
- ``deep-sigmoid-digits``: the lab's 10 x 256 sigmoid network, init N(0, 0.1²); validation
  accuracy (max); 25 epochs of batches of 64.
- ``mlp-mnist1d``: 2 x 256 ReLU + He init on MNIST-1D; validation accuracy (max); 20 epochs
  of batches of 64.
- ``quadratic-deep``: ½ θᵀHθ in 100-D with DeepOBS's spectrum; loss (min); 500 steps.
- ``rosenbrock``: the 2-D Rosenbrock valley; f(x, y) (min); 2000 steps.

The data of a problem never depends on the seed (fixed splits, standardised on the training
split); the seed draws the initial parameters and the batch order. Each target was set by trying
a few optimizers: a well-tuned one reaches it within the budget and a poorly tuned one does not
(deep-sigmoid-digits' 40 % is low because its gradients vanish: the lab's demo reaches about
50 % in 25 epochs with its best optimizer).
"""

from __future__ import annotations

import functools

import numpy as np

from ..data import Splits, make_linear_regression, mnist1d, prepare, split
from ..data import digits as load_digits
from ..nn import MLP, MLPSpec
from ..trajectories.functions import FUNCTIONS
from .base import Model, Problem, register


def _data(make):
    """Cache ``make``'s result, computed on one BLAS thread: a multithreaded product or QR
    rounds differently, and a problem's data must be the same bits in the driver (whose
    cache a forked worker inherits), in a worker and on a Ray node."""

    @functools.cache
    @functools.wraps(make)
    def cached(*args):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return make(*args)

    return cached

# -- linear regression ------------------------------------------------------------------------


@_data
def _regression_data() -> tuple[np.ndarray, ...]:
    data = make_linear_regression(n_samples=1000, n_features=1, noise=1.0, seed=0)
    rows = np.random.default_rng(0).permutation(len(data.y))
    train, val = rows[:600], rows[600:800]
    return data.X[train], data.y[train], data.X[val], data.y[val]


def _regression_loss(X: np.ndarray, y: np.ndarray, theta: np.ndarray) -> float:
    residual = X @ theta - y
    return float(residual @ residual) / (2 * len(y))


@_data
def regression_target() -> float:
    """5 % above the validation loss of the least-squares fit to the training split."""
    X, y, Xv, yv = _regression_data()
    best = np.linalg.lstsq(X, y, rcond=None)[0]
    return 1.05 * _regression_loss(Xv, yv, best)


def _linear_regression(seed: int) -> Model:
    X, y, Xv, yv = _regression_data()
    theta = np.random.default_rng(seed).standard_normal(X.shape[1])

    def loss_and_grad(rows):
        Xb, yb = (X, y) if rows is None else (X[rows], y[rows])
        residual = Xb @ theta - yb
        return float(residual @ residual) / (2 * len(yb)), [Xb.T @ residual / len(yb)]

    return Model([theta], loss_and_grad, lambda: _regression_loss(Xv, yv, theta))


# -- networks on datasets ---------------------------------------------------------------------


@_data
def _splits(name: str) -> Splits:
    if name == "digits":
        return prepare(load_digits())
    return prepare(mnist1d())


def _network(spec: MLPSpec, dataset: str, seed: int) -> Model:
    splits = _splits(dataset)
    net = MLP(spec, seed)
    x, y = splits.train.x, splits.train.y

    def loss_and_grad(rows):
        loss = net.loss_and_grad(x, y) if rows is None else net.loss_and_grad(x[rows], y[rows])
        return loss, net.grads

    def accuracy(part):
        return lambda: net.evaluate(part.x, part.y)[1]

    return Model(net.params, loss_and_grad, accuracy(splits.validation), accuracy(splits.test))


def _training_rows(examples: int) -> int:
    """How many of ``examples`` rows ``descentlab.data.split`` puts in the training split, found
    by splitting a stand-in (scikit-learn sizes stratified and plain splits alike), so that
    MNIST-1D need not be generated when the registry is imported."""
    from ..data import Dataset

    stand_in = Dataset("sizes", np.zeros((examples, 1), np.float32), np.zeros(examples), None)
    return len(split(stand_in).train)


DIGITS = MLPSpec(inputs=64, outputs=10, depth=0, width=1, init="normal", init_std=0.01)
DEEP_SIGMOID = MLPSpec(inputs=64, outputs=10, depth=10, width=256, activation="sigmoid",
                       init="normal", init_std=0.1)
MNIST1D = MLPSpec(inputs=40, outputs=10, depth=2, width=256, activation="relu",
                  init="he_normal")


# -- test functions ---------------------------------------------------------------------------


@_data
def _deep_quadratic_hessian() -> np.ndarray:
    """DeepOBS's "quadratic_deep" spectrum (Schneider et al. 2019): 90 eigenvalues uniform in
    [0, 1] and 10 in [30, 60], in a random orthonormal basis (fixed, seed 42)."""
    rng = np.random.default_rng(42)
    eigenvalues = np.concatenate([rng.uniform(0, 1, 90), rng.uniform(30, 60, 10)])
    basis, _ = np.linalg.qr(rng.standard_normal((100, 100)))
    return (basis * eigenvalues) @ basis.T


def _quadratic(seed: int) -> Model:
    H = _deep_quadratic_hessian()
    theta = np.random.default_rng(seed).standard_normal(100)

    def value():
        return float(0.5 * theta @ H @ theta)

    def loss_and_grad(rows):
        return value(), [H @ theta]

    return Model([theta], loss_and_grad, value)


def _rosenbrock(seed: int) -> Model:
    function = FUNCTIONS["rosenbrock"]
    start = np.array(function.start) + 0.1 * np.random.default_rng(seed).standard_normal(2)
    point = start.copy()

    def value():
        return float(function.value(point[0], point[1]))

    def loss_and_grad(rows):
        return value(), [function.gradient(point)]

    return Model([point], loss_and_grad, value)


BUILT_IN = (
    Problem("linear-regression", _linear_regression, metric="validation loss", goal="min",
            target=regression_target(), epochs=10, examples=600, batch_size=32,
            description="The seed articles' y = 4 + 3x + N(0, 1), 1000 samples (600 to train), "
                        "mean squared error / 2; target 5 % above the least-squares fit's "
                        "validation loss."),
    Problem("logreg-digits", functools.partial(_network, DIGITS, "digits"),
            metric="validation accuracy", goal="max", target=0.95, epochs=20,
            examples=_training_rows(1797), batch_size=64,
            description="Softmax regression on scikit-learn's 8x8 digits (standardised)."),
    Problem("deep-sigmoid-digits", functools.partial(_network, DEEP_SIGMOID, "digits"),
            metric="validation accuracy", goal="max", target=0.4, epochs=25,
            examples=_training_rows(1797), batch_size=64,
            description="The lab's deep network: 10 hidden sigmoid layers of 256 units, "
                        "initialised N(0, 0.1²), on digits; its gradients vanish towards the "
                        "input."),
    Problem("mlp-mnist1d", functools.partial(_network, MNIST1D, "mnist1d"),
            metric="validation accuracy", goal="max", target=0.6, epochs=20,
            examples=_training_rows(5000), batch_size=64,
            description="2 hidden ReLU layers of 256 units (He init) on MNIST-1D (5000 "
                        "signals, generated locally)."),
    Problem("quadratic-deep", _quadratic, metric="loss", goal="min", target=0.01, steps=500,
            eval_every=25,
            description="½ θᵀHθ in 100 dimensions, H with DeepOBS's quadratic_deep spectrum "
                        "(90 eigenvalues in [0, 1], 10 in [30, 60]); θ₀ ~ N(0, I); minimum 0."),
    Problem("rosenbrock", _rosenbrock, metric="loss", goal="min", target=1e-4, steps=2000,
            eval_every=20,
            description="Rosenbrock's valley (1 − x)² + 100 (y − x²)² from (−1.5, 2) plus "
                        "N(0, 0.1²) per seed; minimum 0 at (1, 1)."),
)

for _problem in BUILT_IN:
    register(_problem, replace=True)
