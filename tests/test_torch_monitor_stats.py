"""The monitor's measurements, each way it takes them (the compiled passes over contiguous CPU
tensors, torch operations for any other tensor), against direct float64 computations with
NumPy and the NumPy lab's activation measures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import require_torch

torch = require_torch()
from descentlab.nn.activations import make_activation  # noqa: E402
from descentlab.torch import parameter_stats  # noqa: E402
from descentlab.torch.output_stats import (  # noqa: E402
    PLAIN,
    RECTIFIER,
    SIGMOID,
    TANH,
    _with_torch,
    kind_of,
    output_stats,
    pooled,
)
from descentlab.torch.parameter_stats import ParameterStats  # noqa: E402

NUMPY_ACTIVATION = {SIGMOID: "sigmoid", TANH: "tanh", RECTIFIER: "relu"}


def outputs(dtype):
    """(kind, tensor) pairs: each kind of module, 0- to 4-d, some near saturation or dead."""
    g = torch.Generator().manual_seed(3)
    wide = torch.randn(32, 6, 5, 5, generator=g, dtype=dtype) * 4
    dead = torch.randn(16, 40, generator=g, dtype=dtype)
    dead[:, :13] = -dead[:, :13].abs()  # 13 units never positive
    return [(SIGMOID, torch.sigmoid(wide)), (TANH, torch.tanh(wide[:, :2])),
            (RECTIFIER, torch.relu(dead)), (RECTIFIER, torch.relu(wide)),
            (PLAIN, torch.randn(7, generator=g, dtype=dtype) + 1e3),
            (SIGMOID, torch.sigmoid(torch.randn(9, generator=g, dtype=dtype) * 8)),
            (PLAIN, torch.tensor(2.5, dtype=dtype))]


def direct(kind, y: torch.Tensor):
    values = y.double().numpy()
    inactive = (math.nan if kind == PLAIN else make_activation(
        NUMPY_ACTIVATION[kind]).inactive_fraction(values if values.ndim > 1 else values[None]))
    return values.size, values.mean(), values.var(), inactive


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("contiguous", [True, False], ids=["compiled", "torch"])
def test_output_statistics_equal_a_direct_computation(dtype, contiguous):
    cases = outputs(dtype)
    if not contiguous:  # the same values in a transposed view: torch operations measure them
        cases = [(kind, y.t().contiguous().t() if y.dim() == 2 else y) for kind, y in cases]
    found = output_stats([k for k, _ in cases], [y for _, y in cases])
    rel = 1e-6 if dtype == torch.float32 else 1e-12
    for (kind, y), (n, mean, variance, inactive, bad) in zip(cases, found, strict=True):
        size, mean_ref, variance_ref, inactive_ref = direct(kind, y)
        assert n == size and bad == 0
        assert mean == pytest.approx(mean_ref, rel=rel, abs=1e-12)
        assert variance == pytest.approx(variance_ref, rel=rel, abs=1e-12)
        if kind == PLAIN:
            assert math.isnan(inactive)
        else:
            assert inactive == pytest.approx(inactive_ref, abs=1e-12)
    dead = found[2][3]
    assert dead == pytest.approx(13 / 40)  # the units made dead, and no other


def test_the_compiled_pass_and_torch_operations_agree():
    cases = outputs(torch.float32)
    compiled = output_stats([k for k, _ in cases], [y for _, y in cases])
    with_torch = _with_torch([k for k, _ in cases], [y for _, y in cases])
    for a, b in zip(compiled, with_torch, strict=True):
        assert a[0] == b[0] and a[4] == b[4]
        assert np.allclose(a[1:4], b[1:4], rtol=1e-6, atol=1e-12, equal_nan=True)


def test_non_finite_and_empty_outputs():
    y = torch.randn(4, 5)
    y[0, 0], y[1, 2], y[3, 4] = math.nan, math.inf, -math.inf
    for tensor in (y, y.t()):  # compiled, then torch operations
        (n, mean, _, _, bad), = output_stats([PLAIN], [tensor])
        assert n == 20 and bad == 3 and math.isnan(mean)
    (n, mean, variance, inactive, bad), = output_stats([RECTIFIER], [torch.zeros(0, 3)])
    assert n == 0 and bad == 0 and all(math.isnan(v) for v in (mean, variance, inactive))


def test_pooling_several_calls_equals_one_call_over_all_of_them():
    g = torch.Generator().manual_seed(5)
    parts = [torch.randn(8, 4, generator=g) * s + m for s, m in ((1, 0), (3, 2), (0.5, -1))]
    joined = torch.cat(parts).double().numpy()
    mean, std, inactive, bad = pooled(output_stats([SIGMOID] * 3, parts))
    assert mean == pytest.approx(joined.mean(), rel=1e-6)
    assert std == pytest.approx(joined.std(), rel=1e-6)
    saturation = make_activation("sigmoid").inactive_fraction(joined)
    assert inactive == pytest.approx(saturation, abs=1e-12) and bad == 0


def test_modules_are_sorted_by_what_fails_in_them():
    assert kind_of(torch.nn.Sigmoid()) == SIGMOID and kind_of(torch.nn.Tanh()) == TANH
    assert kind_of(torch.nn.ReLU()) == kind_of(torch.nn.GELU()) == RECTIFIER
    assert kind_of(torch.nn.Linear(2, 2)) == kind_of(torch.nn.Softmax(dim=1)) == PLAIN


def parameters():
    """float32 and float64 parameters, one without a gradient, one a transposed view (not
    contiguous: measured with torch operations)."""
    g = torch.Generator().manual_seed(7)
    params = [torch.nn.Parameter(torch.randn(300, 200, generator=g)),
              torch.nn.Parameter(torch.randn(200, generator=g)),
              torch.nn.Parameter(torch.randn(50, 3, generator=g, dtype=torch.float64)),
              torch.nn.Parameter(torch.randn(6, 4, generator=g).t()),
              torch.nn.Parameter(torch.randn(5, generator=g))]
    for p in params[:4]:
        p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)
    return params


def sum_of_squares(t: torch.Tensor) -> float:
    return float(np.sum(t.detach().double().numpy() ** 2))


@pytest.mark.parametrize("parallel", [False, True], ids=["one thread", "threads"])
def test_parameter_statistics_equal_a_direct_computation(monkeypatch, parallel):
    if parallel:  # the shared passes, taken here by small parameters too
        monkeypatch.setattr(parameter_stats, "PARALLEL_FROM", 0)
    params = parameters()
    assert not params[3].is_contiguous()
    stats = ParameterStats(params)
    for _ in range(2):  # the second round reuses the kept copies' buffers
        before = [p.detach().clone() for p in params]
        grads, weights = stats.before()
        with torch.no_grad():
            for p in params:
                p.mul_(0.9).add_(0.01)  # an optimizer step
        updates = stats.after()
        for p, old, g, w, u in zip(params, before, grads, weights, updates, strict=True):
            rel = 1e-12 if p.dtype == torch.float64 else 1e-6
            assert w == pytest.approx(sum_of_squares(old), rel=rel)
            assert u == pytest.approx(sum_of_squares(p - old), rel=1e-5)
            if p.grad is None:
                assert g is None
            else:
                assert g == pytest.approx(sum_of_squares(p.grad), rel=rel)


def test_an_update_of_replaced_storage_is_not_defined():
    params = parameters()
    stats = ParameterStats(params)
    stats.before()
    params[0].data = torch.zeros(7)  # another size: there is no update to measure
    updates = stats.after()
    assert math.isnan(updates[0]) and updates[1] == 0.0
