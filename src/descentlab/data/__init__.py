"""Datasets: made locally or read from files the user owns; never downloaded."""

from .datasets import (
    BUILT_IN,
    Dataset,
    Splits,
    Standardizer,
    digits,
    load,
    mnist1d,
    prepare,
    regression,
    split,
    standardized,
)
from .files import read_cifar10, read_idx
from .linear_regression import LinearRegressionData, make_linear_regression

__all__ = [
    "BUILT_IN", "Dataset", "LinearRegressionData", "Splits", "Standardizer", "digits",
    "load", "make_linear_regression", "mnist1d", "prepare",
    "read_cifar10", "read_idx", "regression", "split", "standardized",
]
