"""descentlab.torch's step plan: the steps after the first take the short path, and anything
that changes what the plan found sends the step down the full path with torch.optim's result.

Each test runs descentlab.torch and torch.optim side by side on equal float64 parameters with
equal gradients (new tensors every step, as after ``zero_grad()`` and ``backward()``), does the
same thing to both in the middle, and compares every step with torch.optim.
"""

from __future__ import annotations

import copy
import pickle

import pytest
from conftest import require_torch

torch = require_torch()
import descentlab.torch as dt  # noqa: E402

SHAPES = [(7, 5), (5,), (3, 4, 2), (11,)]
TOLERANCE = 1e-12
STEPS = 8

# algorithms with and without scalar state (step, mu_product) and state arrays
ALGORITHMS = [
    ("SGD", {"lr": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("Adagrad", {"lr": 0.05}),
    ("Adagrad", {"lr": 0.05, "lr_decay": 0.1}),
    ("Adadelta", {"lr": 1.0}),
    ("RMSprop", {"lr": 1e-2, "momentum": 0.5, "centered": True}),
    ("Adam", {"lr": 1e-2, "amsgrad": True}),
    ("NAdam", {"lr": 1e-2}),
    ("RAdam", {"lr": 1e-2}),
]
ids = [f"{name}-{i}" for i, (name, _) in enumerate(ALGORITHMS)]
# the ones whose parameters have state (plain SGD keeps none; with momentum, only a buffer)
STATEFUL = [a for a in ALGORITHMS if a[0] != "SGD"]
stateful_ids = [i for i in ids if not i.startswith("SGD")]


class Twins:
    """descentlab.torch's ``name`` and torch.optim's on equal parameters."""

    def __init__(self, name: str, kwargs: dict, groups: int = 1, **ours) -> None:
        torch.manual_seed(0)
        self.mine = [torch.nn.Parameter(torch.randn(s, dtype=torch.float64)) for s in SHAPES]
        self.theirs = [torch.nn.Parameter(p.detach().clone()) for p in self.mine]
        self.ours = dt.OPTIMIZERS[name](self._groups(self.mine, groups), **kwargs, **ours)
        self.reference = getattr(torch.optim, name)(self._groups(self.theirs, groups), **kwargs)
        self.generator = torch.Generator().manual_seed(1)

    @staticmethod
    def _groups(params, groups):
        if groups == 1:
            return params
        return [{"params": params[:2]}, {"params": params[2:], "lr": 0.02}]

    def step(self, without: tuple[int, ...] = ()) -> None:
        """Fresh equal gradients (none for the parameters numbered in ``without``), a step of
        each, and a check that the parameters agree."""
        for i, (a, b) in enumerate(zip(self.mine, self.theirs, strict=True)):
            g = torch.randn(a.shape, dtype=a.dtype, generator=self.generator)
            a.grad = None if i in without else g.clone()
            b.grad = None if i in without else g.clone()
        self.ours.step()
        self.reference.step()
        self.check()

    def check(self) -> None:
        for a, b in zip(self.mine, self.theirs, strict=True):
            scale = b.abs().max().item()
            assert (a - b).abs().max().item() <= TOLERANCE * scale

    def both(self, action) -> None:
        """``action(optimizer, params)`` on each side."""
        action(self.ours, self.mine)
        action(self.reference, self.theirs)

    def disturbed(self, *actions) -> None:
        """Two steps (the second on a plan), then each of ``actions`` on both sides followed
        by a step, then ``STEPS`` more steps, every one compared with torch.optim's."""
        self.step()
        self.step()
        for action in actions:
            self.both(action)
            self.step()
        for _ in range(STEPS):
            self.step()


def full_steps(optimizer, monkeypatch) -> list[int]:
    """Counts the steps of each group that take the full path from now on."""
    taken: list[int] = []
    original = optimizer._step_group

    def counted(number, group, members):
        taken.append(number)
        return original(number, group, members)

    monkeypatch.setattr(optimizer, "_step_group", counted)
    return taken


@pytest.mark.parametrize("name, kwargs", ALGORITHMS, ids=ids)
def test_after_the_first_step_the_plan_is_used_and_the_steps_equal_torch_optims(
        name, kwargs, monkeypatch):
    twins = Twins(name, kwargs, groups=2)
    twins.step()
    assert set(twins.ours._plans) == {0, 1}
    taken = full_steps(twins.ours, monkeypatch)
    for _ in range(STEPS):
        twins.step()
    assert taken == []


@pytest.mark.parametrize("name, kwargs", ALGORITHMS, ids=ids)
def test_a_parameter_without_a_gradient_for_a_step(name, kwargs, monkeypatch):
    twins = Twins(name, kwargs)
    twins.step()
    taken = full_steps(twins.ours, monkeypatch)
    twins.step(without=(1,))
    assert taken == [0]
    for _ in range(STEPS):  # parameter 1 is a step behind the others: two batches
        twins.step()


@pytest.mark.parametrize("name, kwargs", STATEFUL, ids=stateful_ids)
def test_a_state_tensor_replaced_or_changed_in_place(name, kwargs):
    def replace(optimizer, params):
        state = optimizer.state[params[0]]
        name = next(k for k in state if k != "step" and state[k].dim() > 0)
        state[name] = torch.full_like(params[0], 0.25)

    def change_step(optimizer, params):  # that parameter then runs in a batch of its own
        optimizer.state[params[2]]["step"].fill_(40.0)

    Twins(name, kwargs).disturbed(replace, change_step)


@pytest.mark.parametrize("name, kwargs", STATEFUL, ids=stateful_ids)
def test_a_parameters_state_deleted_or_cleared(name, kwargs):
    """Either way the parameter starts again from fresh state, as in torch.optim."""
    Twins(name, kwargs).disturbed(lambda optimizer, params: optimizer.state.pop(params[1]),
                                  lambda optimizer, params: optimizer.state[params[0]].clear())


@pytest.mark.parametrize("name, kwargs", ALGORITHMS, ids=ids)
def test_parameter_memory_moved(name, kwargs):
    """``param.data = ...`` (as ``module.to()`` does): the step writes the new memory."""
    def move(optimizer, params):
        params[3].data = params[3].data.clone()

    Twins(name, kwargs).disturbed(move)


def test_strided_gradients_and_gradients_accumulated_in_place():
    twins = Twins("Adam", {"lr": 1e-2})
    twins.step()
    for _ in range(3):
        for a, b in zip(twins.mine, twins.theirs, strict=True):
            wide = torch.randn((*a.shape, 2), dtype=a.dtype, generator=twins.generator)
            a.grad, b.grad = wide[..., 0], wide[..., 0].clone()  # a's is not contiguous
        twins.ours.step()
        twins.reference.step()
        twins.check()
    twins.step()
    for _ in range(3):  # the same gradient tensors, written in place (zero_grad(False))
        for a, b in zip(twins.mine, twins.theirs, strict=True):
            g = torch.randn(a.shape, dtype=a.dtype, generator=twins.generator)
            a.grad.copy_(g)
            b.grad.copy_(g)
        twins.ours.step()
        twins.reference.step()
        twins.check()


def test_a_bad_gradient_in_one_group_changes_nothing_in_any():
    twins = Twins("Adam", {"lr": 1e-2}, groups=2)
    twins.step()
    twins.step()
    before = [p.detach().clone() for p in twins.mine]
    state = copy.deepcopy(twins.ours.state_dict())
    for p in twins.mine:
        p.grad = torch.ones_like(p)
    twins.mine[2].grad = torch.ones_like(twins.mine[2]).to_sparse()
    with pytest.raises(RuntimeError, match=r"parameter 0 of group 1 has a sparse gradient"):
        twins.ours.step()
    assert all(torch.equal(a, b) for a, b in zip(twins.mine, before, strict=True))
    after = twins.ours.state_dict()["state"]
    for key, saved in state["state"].items():
        assert all(torch.equal(after[key][k], v) for k, v in saved.items())
    twins.step()  # and the optimizer goes on as torch's


def test_a_bad_hyperparameter_set_between_steps_is_refused_and_changes_nothing():
    twins = Twins("Adam", {"lr": 1e-2})
    twins.step()
    twins.step()
    before = [p.detach().clone() for p in twins.mine]
    twins.ours.param_groups[0]["betas"] = (0.9, 1.5)
    for p in twins.mine:
        p.grad = torch.ones_like(p)
    with pytest.raises(ValueError, match=r"Invalid beta parameter at index 1: 1.5"):
        twins.ours.step()
    assert all(torch.equal(a, b) for a, b in zip(twins.mine, before, strict=True))
    twins.ours.param_groups[0]["betas"] = (0.9, 0.999)
    twins.step()


def test_the_hyperparameter_check_is_skipped_only_for_plain_values_seen_before(monkeypatch):
    twins = Twins("Adam", {"lr": 1e-2})
    twins.step()
    checked = []
    original = twins.ours._check_group
    monkeypatch.setattr(twins.ours, "_check_group",
                        lambda group: (checked.append(dict(group)), original(group)))
    twins.step()
    assert checked == []  # the same plain values as the step that made the plan
    twins.both(lambda optimizer, _: optimizer.param_groups[0].update(lr=5e-3))
    twins.step()
    twins.step()
    assert [c["lr"] for c in checked] == [5e-3]  # checked once, when it changed
    # a tensor can change in place, so a group holding one is checked at every step
    twins.ours.param_groups[0]["note"] = torch.zeros(1)
    twins.step()
    twins.step()
    assert len(checked) == 3


def test_a_gradient_reshaped_behind_its_parameters_back_is_refused():
    """``grad.data = ...`` can give a gradient another shape (the ``grad`` setter would refuse
    it); the same number of elements must not pass for the parameter's shape."""
    twins = Twins("Adam", {"lr": 1e-2})
    twins.step()
    twins.step()
    for p in twins.mine:
        p.grad = torch.ones_like(p)
    twins.mine[0].grad.data = torch.ones(35, dtype=torch.float64)
    before = [p.detach().clone() for p in twins.mine]
    with pytest.raises(ValueError, match=r"parameter 0 of group 0: its gradient has shape \(35,\)"):
        twins.ours.step()
    assert all(torch.equal(a, b) for a, b in zip(twins.mine, before, strict=True))


@pytest.mark.parametrize("name, kwargs", ALGORITHMS, ids=ids)
def test_a_graph_that_saved_a_parameter_before_a_step_refuses_to_backward(name, kwargs):
    """The kernel writes raw memory; autograd is told, as torch.optim's in-place operations
    tell it, on the first step (full path) and the later ones (plan) alike."""
    twins = Twins(name, kwargs)
    for _ in range(3):
        losses = [(p * p).sum() for p in (twins.mine[0], twins.theirs[0])]  # saves p
        twins.step()
        for loss in losses:
            with pytest.raises(RuntimeError, match="modified by an inplace operation"):
                loss.backward()


# rules whose coefficients do not read the step count (``Rule.steady``), and one that does
STEADY = [("RMSprop", {"lr": 1e-2, "momentum": 0.5, "centered": True}), ("Adadelta", {"lr": 1.0}),
          ("Adagrad", {"lr": 0.05})]


@pytest.mark.parametrize("name, kwargs", [*STEADY, ("Adagrad", {"lr": 0.05, "lr_decay": 0.1})],
                         ids=["RMSprop", "Adadelta", "Adagrad", "Adagrad-lr_decay"])
def test_a_steady_rules_coefficients_are_kept_until_a_hyperparameter_changes(
        name, kwargs, monkeypatch):
    twins = Twins(name, kwargs)
    twins.step()
    twins.step()
    computed = []
    original = twins.ours._coefficients
    monkeypatch.setattr(twins.ours, "_coefficients",
                        lambda *args, **kwargs: (computed.append(1), original(*args, **kwargs))[1])
    steady = "lr_decay" not in kwargs
    for _ in range(STEPS):
        twins.step()
    assert len(computed) == (0 if steady else STEPS)
    twins.both(lambda optimizer, _: optimizer.param_groups[0].update(lr=kwargs["lr"] / 2))
    for _ in range(STEPS):
        twins.step()
    assert len(computed) == (1 if steady else 2 * STEPS)  # once, at the change
    for a, b in zip(twins.mine, twins.theirs, strict=True):  # the steps were counted
        assert twins.ours.state[a]["step"].item() == twins.reference.state[b]["step"].item()
        assert twins.ours.state[a]["step"].item() == 2 + 2 * STEPS


def test_options_and_checkpoints_changed_between_steps():
    twins = Twins("SGD", {"lr": 0.05})
    twins.step()
    twins.both(lambda optimizer, _: optimizer.param_groups[0].update(momentum=0.9))
    twins.step()  # the momentum buffer starts now, as a copy of the gradient
    twins.both(lambda optimizer, _: optimizer.param_groups[0].update(lr=0.01, nesterov=True))
    twins.step()
    twins.ours.load_state_dict(copy.deepcopy(twins.reference.state_dict()))
    for _ in range(STEPS):
        twins.step()


@pytest.mark.parametrize("executor", ["auto", "torch"])
def test_a_copied_or_pickled_optimizer_keeps_its_executor_and_steps(executor):
    twins = Twins("NAdam", {"lr": 1e-2}, executor=executor)
    twins.step()
    twins.step()
    twins.mine, twins.ours = copy.deepcopy((twins.mine, twins.ours))
    assert twins.ours.executor == executor
    twins.step()
    twins.mine, twins.ours = pickle.loads(pickle.dumps((twins.mine, twins.ours)))
    assert twins.ours.executor == executor
    for _ in range(STEPS):
        twins.step()


def test_switching_to_the_torch_executor_leaves_the_plan(monkeypatch):
    twins = Twins("Adam", {"lr": 1e-2})
    twins.step()
    twins.step()
    assert 0 in twins.ours._plans
    twins.ours.executor = "torch"
    repeated = []
    monkeypatch.setattr(twins.ours._fused, "run_again", lambda *a: repeated.append(a))
    for _ in range(3):
        twins.step()
    assert repeated == []
