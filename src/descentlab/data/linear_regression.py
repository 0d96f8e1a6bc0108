"""The seed articles' problem: fit y = X θ + noise by minimising the mean squared error."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LinearRegressionData:
    """A design matrix with a leading column of ones (the intercept), targets and the truth.

    The loss is J(θ) = ‖X θ − y‖² / (2 m) over m samples, the seeds' convention.
    """

    X: np.ndarray
    y: np.ndarray
    theta_true: np.ndarray

    def loss(self, theta: np.ndarray) -> float:
        residual = self.X @ theta - self.y
        return float(residual @ residual) / (2 * len(self.y))

    def gradient(self, theta: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """∇J(θ) over the given rows (all by default; a mini-batch otherwise)."""
        X, y = self.X[rows], self.y[rows]
        return X.T @ (X @ theta - y) / len(y)

    def least_squares(self) -> np.ndarray:
        """The exact minimiser, from numpy.linalg.lstsq."""
        return np.linalg.lstsq(self.X, self.y, rcond=None)[0]


def make_linear_regression(
    n_samples: int = 100,
    n_features: int = 1,
    noise: float = 1.0,
    seed: int = 0,
    theta_true: np.ndarray | None = None,
) -> LinearRegressionData:
    """Features uniform on [0, 2), y = θ₀ + Σ θⱼ xⱼ + N(0, noise²).

    With one feature and no ``theta_true`` the truth is y = 4 + 3x, the example the seed
    articles' code is built around; with more features the coefficients are drawn from the
    seed.
    """
    if n_samples < 1 or n_features < 1:
        raise ValueError(f"need n_samples >= 1 and n_features >= 1, got {n_samples}, "
                         f"{n_features}")
    rng = np.random.default_rng(seed)
    if theta_true is None:
        theta_true = (np.array([4.0, 3.0]) if n_features == 1
                      else rng.uniform(-3, 3, size=n_features + 1))
    theta_true = np.asarray(theta_true, dtype=np.float64)
    if theta_true.shape != (n_features + 1,):
        raise ValueError(f"theta_true must have {n_features + 1} entries (intercept first), "
                         f"got shape {theta_true.shape}")
    features = rng.uniform(0.0, 2.0, size=(n_samples, n_features))
    X = np.hstack([np.ones((n_samples, 1)), features])
    y = X @ theta_true + noise * rng.standard_normal(n_samples)
    return LinearRegressionData(X=X, y=y, theta_true=theta_true)
