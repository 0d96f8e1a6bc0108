"""Invalid hyperparameters and inputs are refused with a clear error, before anything changes.

Hyperparameter errors start with torch.optim's wording and go on to name the argument; where
torch has the optimizer, the start is compared with the message torch itself raises for the
same arguments.
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
    assert str(info.value).startswith(message)
    for argument, value in kwargs.items():  # the argument and its value are both named
        assert argument in str(info.value)
        assert str(value if not isinstance(value, tuple) else value[0 if value[0] >= 1 else 1]) \
            in str(info.value)
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


def _readonly(shape):
    a = np.ones(shape)
    a.flags.writeable = False
    return a


BAD_GRADIENTS = [
    # (gradients for params of shapes (2, 3) and (4,), error, message)
    (lambda ps: [np.ones((2, 3))], ValueError, "got 1 gradients for 2 parameters"),
    (lambda ps: [np.ones((3, 2)), np.ones(4)], ValueError,
     r"parameter 0 of group 0: its gradient has shape \(3, 2\); the parameter has \(2, 3\)"),
    (lambda ps: [np.ones((2, 3)), np.ones(4, np.float32)], ValueError,
     r"parameter 1 of group 0: its gradient has dtype float32 \(floating point\)"),
    (lambda ps: [np.ones((2, 3), np.int64), np.ones(4)], ValueError,
     r"parameter 0 of group 0: its gradient has dtype int64 \(integer\)"),
    (lambda ps: [np.ones((2, 3)), np.ones(4, np.complex128)], ValueError,
     r"parameter 1 of group 0: its gradient has dtype complex128 \(complex\)"),
    (lambda ps: [np.ones((2, 3)), [1.0, 1.0, 1.0, 1.0]], TypeError,
     "parameter 1 of group 0: its gradient is a list"),
    (lambda ps: [ps[0], np.ones(4)], ValueError,
     "parameter 0 of group 0: its gradient shares memory with the parameter"),
    (lambda ps: [np.ones((2, 3)), ps[1][::-1]], ValueError,
     "parameter 1 of group 0: its gradient shares memory with the parameter"),
    (lambda ps: [np.ones((2, 3)), _readonly(4)], None, None),  # a read-only gradient is fine
]


@pytest.mark.parametrize("executor", ["fused", "arraywise"])
@pytest.mark.parametrize("row", range(len(BAD_GRADIENTS)))
def test_bad_gradients_are_refused_before_any_change(executor, row):
    make, error, match = BAD_GRADIENTS[row]
    params = [np.arange(6.0).reshape(2, 3), np.ones(4)]
    opt = optim.Adam(params, lr=0.1, executor=executor)
    opt.step([np.ones((2, 3)), np.ones(4)])
    before = _snapshot(opt, params)
    if error is None:
        opt.step(make(params))
        assert _snapshot(opt, params) != before
        return
    with pytest.raises(error, match=match):
        opt.step(make(params))
    assert _snapshot(opt, params) == before


def test_errors_name_parameters_when_names_were_given():
    w, b = np.ones((2, 3)), np.zeros(3)
    opt = optim.SGD([("fc.weight", w), ("fc.bias", b)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["fc.weight", "fc.bias"]
    with pytest.raises(ValueError, match=r"parameter 'fc.bias': its gradient has shape \(4,\)"):
        opt.step([np.ones((2, 3)), np.ones(4)])
    bad = np.ones((2, 3))
    bad[1, 1] = np.nan
    with pytest.raises(FloatingPointError, match="parameter 'fc.weight'"):
        opt.step([bad, np.ones(3)])
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["fc.weight", "fc.bias"]


@pytest.mark.parametrize("params, error, match", [
    ([("a", np.zeros(2)), np.zeros(2)], TypeError, "mixes"),
    ([("a", np.zeros(2)), ("a", np.zeros(2))], ValueError, "name 'a' is used twice"),
    ([("w", np.zeros(2, np.int32))], TypeError, r"parameter 'w' has dtype int32 \(integer\)"),
    ([{"params": [np.zeros(2)], "param_names": ["a", "b"]}], ValueError, "one string per"),
])
def test_bad_names_are_refused(params, error, match):
    with pytest.raises(error, match=match):
        optim.SGD(params, lr=0.1)


@pytest.mark.parametrize("edit, error, match", [
    (lambda opt, ps: ps[1].flags.__setattr__("writeable", False), ValueError,
     "parameter 1 of group 0: it is read-only"),
    (lambda opt, ps: opt.param_groups[0]["params"].__setitem__(0, [1.0] * 6), TypeError,
     "parameter 0 of group 0: it is a list, not a NumPy array"),
    (lambda opt, ps: opt.param_groups[0]["params"].__setitem__(1, np.ones(4, np.int64)),
     TypeError, r"parameter 1 of group 0: it has dtype int64 \(integer\)"),
])
def test_parameters_edited_after_construction_are_checked_at_the_next_step(edit, error, match):
    params = [np.arange(6.0).reshape(2, 3), np.ones(4)]
    opt = optim.Adam(params, lr=0.1)
    opt.step([np.ones((2, 3)), np.ones(4)])
    edit(opt, params)
    before = _snapshot(opt, params)
    with pytest.raises(error, match=match):
        opt.step([np.ones((2, 3)), np.ones(4)])
    assert _snapshot(opt, params) == before


EDITED_HYPERPARAMETERS = [
    ("lr", float("nan"), "Invalid learning rate: nan"),
    ("eps", 0.0, r"Invalid epsilon value: 0.0 \(eps must be a finite number > 0\)"),
    ("betas", (0.9, 1.0), r"betas\[1\] must be in \[0, 1\)"),
    ("weight_decay", -1.0, "weight_decay must be a finite number >= 0"),
    ("amsgrad", "yes", "amsgrad must be True or False, got 'yes'"),
    ("maximize", 1, "maximize must be True or False, got 1"),
]


@pytest.mark.parametrize("name, value, match", EDITED_HYPERPARAMETERS)
def test_edited_hyperparameters_are_refused_at_construction_and_at_the_next_step(
        name, value, match):
    with pytest.raises(ValueError, match=match):
        optim.Adam([np.ones(3)], **{name: value})
    params = [np.arange(3.0)]
    opt = optim.Adam(params, lr=0.1)
    opt.step([np.ones(3)])
    before = _snapshot(opt, params)
    opt.param_groups[0][name] = value
    with pytest.raises(ValueError, match=match):
        opt.step([np.ones(3)])
    assert _snapshot(opt, params) == before


EPS_OPTIMIZERS = [name for name in optim.OPTIMIZERS if name not in ("SGD", "Lion")]


@pytest.mark.parametrize("name", EPS_OPTIMIZERS)
@pytest.mark.parametrize("eps", [0.0, -0.0, float("inf"), float("nan")])
def test_eps_must_be_positive_and_finite(name, eps):
    with pytest.raises(ValueError, match=r"eps must be a finite number > 0"):
        optim.OPTIMIZERS[name]([np.ones(2)], eps=eps)


def test_dampening_must_be_finite():
    with pytest.raises(ValueError, match="dampening must be a finite number"):
        optim.SGD([np.ones(2)], lr=0.1, momentum=0.9, dampening=float("nan"))


def test_unknown_nonfinite_mode_is_refused():
    with pytest.raises(ValueError,
                       match="nonfinite must be one of 'raise', 'skip', 'off', got 'warn'"):
        optim.SGD([np.ones(2)], lr=0.1, nonfinite="warn")


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
