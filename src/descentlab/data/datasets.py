"""Datasets for the lab: a common record, the built-in ones, deterministic splits and
standardisation.

Every dataset is made locally or read from a file the user already has; nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """Examples ``x`` (n, features) float32, and ``y``: class indices (int64) for a
    classification task, float targets for a regression task."""

    name: str
    x: np.ndarray
    y: np.ndarray
    classes: int | None  # None for regression

    def __post_init__(self) -> None:
        if self.x.ndim != 2:
            raise ValueError(f"dataset {self.name!r}: x must be (examples, features), got "
                             f"shape {self.x.shape}")
        if len(self.y) != len(self.x):
            raise ValueError(f"dataset {self.name!r}: {len(self.x)} examples but "
                             f"{len(self.y)} labels")

    @property
    def task(self) -> str:
        return "regression" if self.classes is None else "classification"

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, rows: np.ndarray) -> Dataset:
        return replace(self, x=self.x[rows], y=self.y[rows])


@dataclass(frozen=True)
class Splits:
    train: Dataset
    validation: Dataset
    test: Dataset


def digits() -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits: 1797 examples, 64 features (0-16), 10
    classes (the UCI optical-digits test set; shipped inside scikit-learn)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return Dataset("digits", bunch.data.astype(np.float32), bunch.target.astype(np.int64), 10)


def mnist1d(num_samples: int = 5000, seed: int = 42) -> Dataset:
    """MNIST-1D (Greydanus 2020): 10 classes of 40-sample 1-D signals, generated here by the
    ``mnist1d`` package's ``make_dataset`` with its default arguments (never its download path).

    The package's own train/test halves are joined: the lab makes its own stratified splits.
    ``make_dataset`` seeds NumPy's global generator; its state is restored afterwards.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed = num_samples, seed
    saved = np.random.get_state()
    try:
        made = make_dataset(args)
    finally:
        np.random.set_state(saved)
    x = np.concatenate([made["x"], made["x_test"]]).astype(np.float32)
    y = np.concatenate([made["y"], made["y_test"]]).astype(np.int64)
    return Dataset("mnist1d", x, y, 10)


def regression(n_samples: int = 1000, n_features: int = 10, noise: float = 1.0,
                      seed: int = 0) -> Dataset:
    """The seeds' synthetic y = X θ + noise (see ``make_linear_regression``), intercept column
    dropped: a network's bias plays its part."""
    from .linear_regression import make_linear_regression

    data = make_linear_regression(n_samples, n_features, noise, seed)
    return Dataset("linear_regression", data.X[:, 1:].astype(np.float32),
                   data.y.astype(np.float32), None)


def split(data: Dataset, validation: float = 0.2, test: float = 0.2, seed: int = 0) -> Splits:
    """Train / validation / test, stratified by class for classification, the same for the
    same ``seed``."""
    from sklearn.model_selection import train_test_split

    for name, share in (("validation", validation), ("test", test)):
        if not 0 < share < 1:
            raise ValueError(f"the {name} share must be between 0 and 1, got {share!r}")
    if validation + test >= 1:
        raise ValueError(f"validation + test shares ({validation} + {test}) leave no training "
                         "data")
    rows = np.arange(len(data))
    labels = data.y if data.classes is not None else None
    rest, test_rows = train_test_split(rows, test_size=test, random_state=seed, stratify=labels)
    rest_labels = labels[rest] if labels is not None else None
    train_rows, val_rows = train_test_split(
        rest, test_size=validation / (1 - test), random_state=seed + 1, stratify=rest_labels)
    return Splits(*(data.subset(np.sort(r)) for r in (train_rows, val_rows, test_rows)))


@dataclass(frozen=True)
class Standardizer:
    """Per-feature (x − mean) / std, fitted on training data only (a feature that is constant
    there keeps std 1, so it maps to 0 rather than to inf)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardizer:
        mean = x.mean(axis=0, dtype=np.float64)
        std = x.std(axis=0, dtype=np.float64)
        std[std == 0] = 1.0
        return cls(mean, std)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(x.dtype)


def standardized(splits: Splits) -> Splits:
    scaler = Standardizer.fit(splits.train.x)
    return Splits(*(replace(d, x=scaler.transform(d.x))
                    for d in (splits.train, splits.validation, splits.test)))


BUILT_IN = {"digits": digits, "mnist1d": mnist1d, "linear_regression": regression}


def load(name: str) -> Dataset:
    """A built-in dataset by name."""
    try:
        return BUILT_IN[name]()
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; built in: {', '.join(BUILT_IN)} (files "
                         "you have: descentlab.data.read_idx, read_cifar10)") from None


def prepare(data: Dataset | str, validation: float = 0.2, test: float = 0.2,
            seed: int = 0) -> Splits:
    """Split and standardise (statistics from the training split only)."""
    if isinstance(data, str):
        data = load(data)
    return standardized(split(data, validation, test, seed))
