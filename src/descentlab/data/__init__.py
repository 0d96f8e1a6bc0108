"""Datasets: made locally or read from files the user owns; never downloaded."""

from .linear_regression import LinearRegressionData, make_linear_regression

__all__ = ["LinearRegressionData", "make_linear_regression"]
