"""``Rule.steady``: a rule that says a group's coefficients do not read the step count must give
the same coefficients at every step, and advance the count by one; descentlab.torch keeps such
coefficients from step to step on the strength of that word."""

from __future__ import annotations

import numpy as np
import pytest

import descentlab.optim as optim
from descentlab.optim.rules import Rule
from descentlab.optim.rules._base import scalar_type

# options that change what the coefficients hold, applied where a rule has them
VARIANTS = [{}, {"momentum": 0.9}, {"centered": True}, {"weight_decay": 0.1},
            {"weight_decay": 0.1, "decoupled_weight_decay": True}, {"maximize": True},
            {"lr_decay": 0.1}, {"lr_in_momentum": True, "momentum": 0.5},
            {"eps_placement": "inside"}, {"scalar_dtype": "param"}, {"lr": 0.37}]
STEPS = (0, 1, 9, 10**6)


def groups_of(name: str):
    defaults = optim.OPTIMIZERS[name]([np.ones(2)]).param_groups[0]
    for variant in VARIANTS:
        if set(variant) <= set(defaults):
            yield {**defaults, **variant}


def coefficients_at(rule: Rule, group, step: int, dtype) -> tuple:
    state = {**rule.scalars, "step": step}
    h = rule.coefficients(group, state, scalar_type(group, np.dtype(dtype)))
    return h, state


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_a_steady_groups_coefficients_are_the_same_at_every_step(name, dtype):
    rule = optim.OPTIMIZERS[name].rule
    for group in groups_of(name):
        if not rule.is_steady(group):
            continue
        first, _ = coefficients_at(rule, group, STEPS[0], dtype)
        for step in STEPS:
            h, state = coefficients_at(rule, group, step, dtype)
            assert h == first, (name, group, step)
            assert state == {"step": step + 1}


def test_rmsprop_adadelta_lion_and_adagrad_without_lr_decay_are_steady():
    steady = {name for name, cls in optim.OPTIMIZERS.items()
              if cls.rule.is_steady(next(groups_of(name)))}
    assert steady == {"Adagrad", "RMSprop", "Adadelta", "Lion"}
    # AdaGrad's lr decay reads the step: such a group is not steady, and its coefficients do
    # change (what the test above would catch, were it declared steady)
    rule = optim.OPTIMIZERS["Adagrad"].rule
    group = next(g for g in groups_of("Adagrad") if g["lr_decay"] == 0.1)
    assert not rule.is_steady(group)
    assert coefficients_at(rule, group, 1, np.float32)[0] != \
        coefficients_at(rule, group, 2, np.float32)[0]


def test_a_steady_rule_must_keep_only_a_step_count():
    nadam = optim.OPTIMIZERS["NAdam"].rule
    with pytest.raises(ValueError, match=r"NAdam: a steady rule's one scalar state is its step "
                                         r"count, not \['mu_product', 'step'\]"):
        Rule(name=nadam.name, update=nadam.update, arrays=nadam.arrays,
             coefficients=nadam.coefficients, check=nadam.check, scalars=nadam.scalars,
             steady=lambda group: True)
