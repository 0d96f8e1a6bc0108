"""descentlab.nn: every layer's gradients against central finite differences (float64), and
whole networks against torch autograd."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import max_relative_difference, require_torch

from descentlab import nn

ACTIVATIONS = sorted(nn.ACTIVATIONS)


def numerical_gradient(f, array: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to every element of ``array``."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        keep = array[index]
        array[index] = keep + h
        up = f()
        array[index] = keep - h
        down = f()
        array[index] = keep
        grad[index] = (up - down) / (2 * h)
    return grad


def small_net(activation, *, residual=False, layernorm=False, loss="cross_entropy",
              init="glorot_normal", outputs=3):
    spec = nn.MLPSpec(inputs=4, outputs=outputs, depth=3, width=5, activation=activation,
                      init=init, residual=residual, layernorm=layernorm, loss=loss,
                      dtype="float64")
    net = nn.MLP(spec, seed=1)
    rng = np.random.default_rng(2)
    for p in net.params:  # biases and norm parameters away from their special starting values
        p += rng.normal(0, 0.3, p.shape)
    x = rng.normal(size=(6, 4))
    y = rng.integers(0, outputs, 6) if loss == "cross_entropy" else rng.normal(size=(6, outputs))
    return net, x, y


@pytest.mark.parametrize(("activation", "options"), list(itertools.product(
    ACTIVATIONS, [{}, {"residual": True}, {"layernorm": True},
                  {"residual": True, "layernorm": True}])))
def test_gradients_match_finite_differences(activation, options):
    net, x, y = small_net(activation, **options)
    net.loss_and_grad(x, y)
    analytic = [g.copy() for g in net.grads]
    for p, g in zip(net.params, analytic, strict=True):
        numeric = numerical_gradient(lambda: net.loss(x, y), p)
        assert max_relative_difference(g, numeric) < 1e-6


def test_mse_gradients_match_finite_differences():
    net, x, y = small_net("tanh", loss="mse", outputs=2)
    net.loss_and_grad(x, y)
    for p, g in zip(net.params, [g.copy() for g in net.grads], strict=True):
        assert max_relative_difference(g, numerical_gradient(lambda: net.loss(x, y), p)) < 1e-6


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("options", [{}, {"residual": True, "layernorm": True}])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_network_equals_torch_autograd(activation, options, loss):
    """Loss and every gradient equal torch's for the same weights, float64."""
    torch = require_torch()
    net, x, y = small_net(activation, loss=loss, **options)
    ours = net.loss_and_grad(x, y)
    weights = [torch.tensor(p, requires_grad=True) for p in net.params]
    act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
           "leaky_relu": torch.nn.functional.leaky_relu, "gelu": torch.nn.functional.gelu
           }[activation]
    h = torch.tensor(x)
    it = iter(weights)
    for layer in net.layers:
        out = h @ next(it) + next(it)
        if layer.activation is not None:
            if layer.norm is not None:
                gamma, beta = next(it), next(it)
                out = torch.nn.functional.layer_norm(out, (out.shape[1],), gamma, beta, 1e-5)
            out = act(out)
            if layer.residual:
                out = h + out
        h = out
    if loss == "cross_entropy":
        reference = torch.nn.functional.cross_entropy(h, torch.tensor(y))
    else:
        reference = torch.nn.functional.mse_loss(h, torch.tensor(y))
    reference.backward()
    assert ours == pytest.approx(reference.item(), rel=1e-12)
    for g, w in zip(net.grads, weights, strict=True):
        assert max_relative_difference(g, w.grad.numpy()) < 1e-10


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_float32_stays_float32(activation):
    spec = nn.MLPSpec(inputs=4, outputs=3, depth=2, width=5, activation=activation,
                      layernorm=True, residual=True)
    net = nn.MLP(spec)
    x = np.ones((2, 4), np.float32)
    assert net.forward(x).dtype == np.float32
    net.loss_and_grad(x, np.array([0, 2]))
    assert {g.dtype for g in net.grads} == {np.dtype(np.float32)}


@pytest.mark.parametrize(("name", "expected_std"), [
    ("glorot_uniform", np.sqrt(2 / (300 + 200))),
    ("glorot_normal", np.sqrt(2 / (300 + 200))),
    ("he_uniform", np.sqrt(2 / 300)),
    ("he_normal", np.sqrt(2 / 300)),
    ("normal", 0.05),
])
def test_initialisations_have_their_documented_spread(name, expected_std):
    """Glorot: Var = 2/(fan_in + fan_out); He: Var = 2/fan_in (the papers' derivations)."""
    w = nn.make_init(name, std=0.05)(np.random.default_rng(0), 300, 200, np.float64)
    assert w.shape == (300, 200)
    assert w.std() == pytest.approx(expected_std, rel=0.02)
    assert abs(w.mean()) < 0.01 * expected_std * 10
    if name.endswith("uniform"):
        assert np.abs(w).max() <= expected_std * np.sqrt(3)


def test_initialisations_equal_torch_bounds():
    """torch.nn.init's xavier_uniform_ and kaiming_uniform_(nonlinearity='relu') bounds."""
    torch = require_torch()
    t = torch.empty(200, 300)  # torch: (fan_out, fan_in)
    torch.manual_seed(0)
    torch.nn.init.xavier_uniform_(t)
    ours = nn.make_init("glorot_uniform")(np.random.default_rng(0), 300, 200, np.float64)
    assert np.abs(ours).max() == pytest.approx(t.abs().max().item(), rel=1e-3)
    torch.nn.init.kaiming_uniform_(t, nonlinearity="relu")
    ours = nn.make_init("he_uniform")(np.random.default_rng(0), 300, 200, np.float64)
    assert np.abs(ours).max() == pytest.approx(t.abs().max().item(), rel=1e-3)


def test_saturated_and_dead_fractions():
    sigmoid = nn.make_activation("sigmoid")
    y = sigmoid.forward(np.array([[-10.0, 0.0, 10.0, 0.5]]))
    assert sigmoid.inactive_fraction(y) == 0.5  # the two at ±10
    tanh = nn.make_activation("tanh")
    assert tanh.inactive_fraction(tanh.forward(np.array([[-4.0, 0.1], [3.0, 0.2]]))) == 0.5
    relu = nn.make_activation("relu")
    y = relu.forward(np.array([[-1.0, 2.0, -3.0], [-1.0, -2.0, 3.0], [-5.0, 1.0, -1.0]]))
    assert relu.inactive_fraction(y) == pytest.approx(1 / 3)  # only the first unit is dead


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"activation": "swish"}, "unknown activation 'swish'"),
    ({"init": "lecun"}, "unknown init 'lecun'"),
    ({"depth": -1}, "depth must be"),
    ({"width": 0}, "width must be"),
    ({"dtype": "float16"}, "float32 or float64"),
    ({"loss": "hinge"}, "unknown loss 'hinge'"),
])
def test_bad_specs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nn.MLPSpec(inputs=4, outputs=3, **kwargs)


def test_an_optimizer_trains_the_network():
    """The arrays are the parameters: a descentlab optimizer updates them in place."""
    from descentlab import optim

    net, x, y = small_net("tanh")
    opt = optim.Adam(net.params, lr=0.05)
    first = net.loss_and_grad(x, y)
    for _ in range(100):
        net.loss_and_grad(x, y)
        opt.step(net.grads)
    assert net.loss(x, y) < 0.1 * first


# -- underflow: backpropagated signals below the flush limit become 0, never subnormal ---------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flush_tiny_zeroes_exactly_what_is_below_the_limit(dtype):
    from descentlab.nn.underflow import flush_tiny, limit

    tiny = np.finfo(dtype).tiny
    assert limit(dtype) == float(tiny) * 2.0 ** 24
    values = np.array([0.0, tiny / 8, -tiny, tiny * 2.0 ** 23, -tiny * 2.0 ** 24,
                       tiny * 2.0 ** 25, 1e-3, -7.0, np.inf, np.nan], dtype=dtype)
    expected = np.where(np.abs(values) < limit(dtype), 0, values)  # NaN compares False: kept
    for layout in ("contiguous", "strided"):
        a = np.tile(values, (3, 1)).copy()
        view = a if layout == "contiguous" else a[::2]  # rows 0 and 2: not contiguous
        flush_tiny(view)
        np.testing.assert_array_equal(view[0], expected)
    assert expected[4] == values[4] and expected[3] == 0  # the limit itself is kept


def test_a_vanishing_network_has_zero_not_subnormal_gradients():
    """Twenty sigmoid layers of tiny weights: the signal underflows on its way to layer 1.
    No gradient entry is subnormal; the deepest layers' gradients are exactly 0."""
    spec = nn.MLPSpec(8, 3, depth=20, width=16, activation="sigmoid", init="normal",
                      init_std=0.01)
    net = nn.MLP(spec, seed=0)
    rng = np.random.default_rng(0)
    net.loss_and_grad(rng.standard_normal((32, 8)).astype(np.float32),
                      rng.integers(0, 3, 32))
    tiny = np.finfo(np.float32).tiny
    for g in net.grads:
        assert not np.any((g != 0) & (np.abs(g) < tiny))
    assert not np.any(net.weight_grads[0]) and np.any(net.weight_grads[-1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_backward_rounds_as_numpys_expression(dtype):
    """The compiled backward pass computes (dy·y)·(1 − y) with NumPy's roundings, bit for bit;
    a non-contiguous dy takes NumPy's path and agrees too."""
    rng = np.random.default_rng(7)
    sigmoid = nn.make_activation("sigmoid")
    y = sigmoid.forward(rng.standard_normal((64, 256)).astype(dtype) * 4)
    dy = (rng.standard_normal((64, 256)) * 10.0 ** rng.integers(-30, 3, (64, 256))).astype(dtype)
    expected = dy * y * (1 - y)
    got = sigmoid.backward(dy)
    assert got.dtype == dtype and np.array_equal(got, expected)
    wide = np.zeros((64, 512), dtype)
    wide[:, ::2] = dy
    assert np.array_equal(sigmoid.backward(wide[:, ::2]), expected)
