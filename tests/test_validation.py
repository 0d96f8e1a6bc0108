"""Invalid hyperparameters and inputs are refused with a clear error, before anything changes.

Hyperparameter errors carry torch.optim's wording; where torch has the optimizer, the message
is also compared with the one torch itself raises for the same arguments.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_torch

import descentlab.optim as optim

ADAM_LIKE = ["Adam", "AdamW", "Adamax", "NAdam", "RAdam"]

# (optimizer, kwargs, message with torch's wording)
INVALID: list[tuple[str, dict, str]] = [
    *[(name, {"lr": -0.1}, "Invalid learning rate: -0.1") for name in optim.OPTIMIZERS],
    ("SGD", {"momentum": -0.5}, "Invalid momentum value: -0.5"),
    ("SGD", {"weight_decay": -1e-4}, "Invalid weight_decay value: -0.0001"),
    ("SGD", {"nesterov": True}, "Nesterov momentum requires a momentum and zero dampening"),
    ("SGD", {"nesterov": True, "momentum": 0.9, "dampening": 0.1},
     "Nesterov momentum requires a momentum and zero dampening"),
    ("Adagrad", {"lr_decay": -1.0}, "Invalid lr_decay value: -1.0"),
    ("Adagrad", {"initial_accumulator_value": -1.0},
     "Invalid initial_accumulator_value value: -1.0"),
    ("Adagrad", {"eps": -1e-10}, "Invalid epsilon value: -1e-10"),
    ("Adagrad", {"weight_decay": -1.0}, "Invalid weight_decay value: -1.0"),
    ("RMSprop", {"eps": -1.0}, "Invalid epsilon value: -1.0"),
    ("RMSprop", {"momentum": -1.0}, "Invalid momentum value: -1.0"),
    ("RMSprop", {"weight_decay": -1.0}, "Invalid weight_decay value: -1.0"),
    ("RMSprop", {"alpha": -0.5}, "Invalid alpha value: -0.5"),
    ("Adadelta", {"rho": 1.5}, "Invalid rho value: 1.5"),
    ("Adadelta", {"eps": -1.0}, "Invalid epsilon value: -1.0"),
    ("Adadelta", {"weight_decay": -1.0}, "Invalid weight_decay value: -1.0"),
    *[(name, {"eps": -1.0}, "Invalid epsilon value: -1.0") for name in ADAM_LIKE],
    *[(name, {"betas": (1.0, 0.999)}, "Invalid beta parameter at index 0: 1.0")
      for name in ADAM_LIKE],
    *[(name, {"betas": (0.9, -0.1)}, "Invalid beta parameter at index 1: -0.1")
      for name in ADAM_LIKE],
    *[(name, {"weight_decay": -1.0}, "Invalid weight_decay value: -1.0") for name in ADAM_LIKE],
    ("NAdam", {"momentum_decay": -1.0}, "Invalid momentum_decay value: -1.0"),
    ("Lion", {"betas": (0.9, 1.0)}, "Invalid beta parameter at index 1: 1.0"),
    ("Lion", {"weight_decay": -1.0}, "Invalid weight_decay value: -1.0"),
]


def _id(row):
    name, kwargs, _ = row
    return f"{name}-{'-'.join(f'{k}={v}' for k, v in kwargs.items())}"


@pytest.mark.parametrize("row", INVALID, ids=[_id(r) for r in INVALID])
def test_invalid_hyperparameter_raises_with_torch_wording(row):
    name, kwargs, message = row
    w = np.arange(3.0)
    with pytest.raises(ValueError) as info:
        optim.OPTIMIZERS[name]([w], **kwargs)
    assert str(info.value) == message
    np.testing.assert_array_equal(w, np.arange(3.0))


@pytest.mark.parametrize("row", [r for r in INVALID if r[0] != "Lion"],
                         ids=[_id(r) for r in INVALID if r[0] != "Lion"])
def test_message_is_torchs_own(row):
    torch = require_torch()
    name, kwargs, message = row
    with pytest.raises(ValueError) as info:
        getattr(torch.optim, name)([torch.zeros(3, requires_grad=True)], **kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "0.1", None])
def test_non_numbers_and_non_finite_learning_rates_are_refused(value):
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.Adam([np.zeros(2)], lr=value)


def test_group_hyperparameters_are_checked_at_construction():
    with pytest.raises(ValueError, match="Invalid beta parameter at index 0: 1.5"):
        optim.Adam([{"params": [np.zeros(2)]}, {"params": [np.zeros(2)], "betas": (1.5, 0.9)}])


def _snapshot(opt, params):
    return ([p.tobytes() for p in params],
            {k: {n: (v.tobytes() if isinstance(v, np.ndarray) else v) for n, v in s.items()}
             for k, s in opt.state.items()})


@pytest.fixture
def stepped():
    params = [np.arange(6.0).reshape(2, 3), np.ones(4)]
    opt = optim.Adam(params, lr=0.1)
    opt.step([np.ones((2, 3)), np.ones(4)])
    return opt, params


def test_changed_param_group_is_checked_at_the_next_step(stepped):
    opt, params = stepped
    before = _snapshot(opt, params)
    opt.param_groups[0]["lr"] = -1.0
    with pytest.raises(ValueError, match="Invalid learning rate: -1.0"):
        opt.step([np.ones((2, 3)), np.ones(4)])
    assert _snapshot(opt, params) == before


@pytest.mark.parametrize("grads, error, match", [
    ([np.ones((2, 3))], ValueError, "got 1 gradients for 2 parameters"),
    ([np.ones((3, 2)), np.ones(4)], ValueError, r"gradient 0 has shape \(3, 2\)"),
    ([np.ones((2, 3)), np.ones(4, dtype=np.float32)], ValueError, "gradient 1 has dtype float32"),
    ([np.ones((2, 3)), [1.0, 1.0, 1.0, 1.0]], TypeError, "gradient 1 is a list"),
])
def test_bad_gradients_are_refused_before_any_change(stepped, grads, error, match):
    opt, params = stepped
    before = _snapshot(opt, params)
    with pytest.raises(error, match=match):
        opt.step(grads)
    assert _snapshot(opt, params) == before


@pytest.mark.parametrize("params, error, match", [
    (np.zeros(3), TypeError, "should be a sequence of NumPy arrays"),
    ([], ValueError, "empty parameter list"),
    ([[1.0, 2.0]], TypeError, "not a NumPy array"),
    ([np.zeros(3, dtype=np.int64)], TypeError, "dtype int64"),
    ([np.zeros(3, dtype=np.float16)], TypeError, "dtype float16"),
    ([{"lr": 0.1}], ValueError, "'params' key"),
])
def test_bad_parameters_are_refused(params, error, match):
    with pytest.raises(error, match=match):
        optim.SGD(params, lr=0.1)


def test_read_only_parameter_is_refused():
    w = np.zeros(3)
    w.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        optim.SGD([w], lr=0.1)


def test_parameter_in_two_groups_is_refused():
    w = np.zeros(3)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [w]}, {"params": [w]}], lr=0.1)
    opt = optim.SGD([w], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [w]})
    assert len(opt.param_groups) == 1


@pytest.mark.parametrize("mutate, match", [
    (lambda sd: sd["param_groups"].append(dict(sd["param_groups"][0])), "2 parameter groups"),
    (lambda sd: sd["state"][0].__setitem__("exp_avg", np.zeros(5)), r"shape \(5,\)"),
    (lambda sd: sd["state"][0].__setitem__("exp_avg", np.zeros(3, np.float32)), "float32"),
    (lambda sd: sd["state"][0].__setitem__("bogus", np.zeros(3)), "unknown state entry"),
    (lambda sd: sd["state"][0].pop("exp_avg_sq"), r"lacks \['exp_avg_sq'\]"),
    (lambda sd: sd["state"][0].pop("step"), r"lacks \['step'\]"),
    (lambda sd: sd["state"].__setitem__(7, {}), "parameter 7"),
    (lambda sd: sd["param_groups"][0].__setitem__("eps", -1.0), "Invalid epsilon value"),
    (lambda sd: sd.pop("state"), "'state' and 'param_groups'"),
])
def test_load_state_dict_refuses_mismatches_and_changes_nothing(mutate, match):
    w = np.ones(3)
    opt = optim.Adam([w], lr=0.1)
    opt.step([np.ones(3)])
    saved = opt.state_dict()
    mutate(saved)
    before = _snapshot(opt, [w])
    groups_before = [dict(g) for g in opt.param_groups]
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(saved)
    assert _snapshot(opt, [w]) == before
    assert [dict(g) for g in opt.param_groups] == groups_before
