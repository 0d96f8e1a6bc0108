"""Every schedule's learning rates (and cycled momenta) equal torch.optim.lr_scheduler's,
step by step, for 1000 steps, with arguments drawn by hypothesis."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import examples, require_torch
from hypothesis import given, settings
from hypothesis import strategies as st

import descentlab.optim as optim

STEPS = 1000
SCHEDULE_SETTINGS = settings(max_examples=examples(25), deadline=None)
unit = st.floats(0.05, 0.95)


def twin_optimizers(torch, algorithm: str = "SGD", lrs=(0.1, 0.03)):
    kwargs = {"momentum": 0.9} if algorithm == "SGD" else {}
    ours = getattr(optim, algorithm)(
        [{"params": [np.zeros(2)], "lr": lrs[0]}, {"params": [np.zeros(3)], "lr": lrs[1]}],
        **kwargs)
    theirs = getattr(torch.optim, algorithm)(
        [{"params": [torch.zeros(2, requires_grad=True)], "lr": lrs[0]},
         {"params": [torch.zeros(3, requires_grad=True)], "lr": lrs[1]}], **kwargs)
    return ours, theirs


def run_side_by_side(ours_sched, theirs_sched, ours_opt, theirs_opt, metrics=None):
    """Step both schedules; compare lrs (and momenta) exactly after construction and each step."""
    def snapshot(opt):
        return [(g["lr"], g.get("momentum"), tuple(g.get("betas", ()))) for g in opt.param_groups]

    assert snapshot(ours_opt) == snapshot(theirs_opt), "after construction"
    for t in range(STEPS):
        theirs_opt.step()  # no gradients: only silences torch's call-order warning
        if metrics is None:
            ours_sched.step()
            theirs_sched.step()
        else:
            ours_sched.step(metrics[t % len(metrics)])
            theirs_sched.step(metrics[t % len(metrics)])
        assert snapshot(ours_opt) == snapshot(theirs_opt), f"step {t + 1}"
        assert ours_sched.get_last_lr() == theirs_sched.get_last_lr(), f"step {t + 1}"


def both(torch, name, algorithm="SGD", **kwargs):
    ours_opt, theirs_opt = twin_optimizers(torch, algorithm)
    return (getattr(optim, name)(ours_opt, **kwargs),
            getattr(torch.optim.lr_scheduler, name)(theirs_opt, **kwargs), ours_opt, theirs_opt)


@pytest.fixture(scope="module")
def torch():
    module = require_torch()
    warnings.filterwarnings("ignore", category=UserWarning, module="torch.optim.lr_scheduler")
    return module


@SCHEDULE_SETTINGS
@given(step_size=st.integers(1, 60), gamma=unit)
def test_step_lr(torch, step_size, gamma):
    run_side_by_side(*both(torch, "StepLR", step_size=step_size, gamma=gamma))


@SCHEDULE_SETTINGS
@given(milestones=st.lists(st.integers(1, STEPS), max_size=8), gamma=unit)
def test_multi_step_lr(torch, milestones, gamma):
    run_side_by_side(*both(torch, "MultiStepLR", milestones=milestones, gamma=gamma))


@SCHEDULE_SETTINGS
@given(gamma=st.floats(0.9, 1.0))
def test_exponential_lr(torch, gamma):
    run_side_by_side(*both(torch, "ExponentialLR", gamma=gamma))


@SCHEDULE_SETTINGS
@given(t_max=st.integers(1, 600), eta_min=st.sampled_from([0.0, 1e-4, 1e-3]))
def test_cosine_annealing_lr(torch, t_max, eta_min):
    run_side_by_side(*both(torch, "CosineAnnealingLR", T_max=t_max, eta_min=eta_min))


@SCHEDULE_SETTINGS
@given(start=st.floats(0.01, 1.0), end=st.floats(0.0, 1.0), total=st.integers(1, 300))
def test_linear_lr(torch, start, end, total):
    run_side_by_side(*both(torch, "LinearLR", start_factor=start, end_factor=end,
                           total_iters=total))


@SCHEDULE_SETTINGS
@given(algorithm=st.sampled_from(["SGD", "Adam"]), max_lr=st.floats(1e-3, 1.0),
       extra=st.integers(0, 200), pct_start=unit, strategy=st.sampled_from(["cos", "linear"]),
       three_phase=st.booleans(), cycle_momentum=st.booleans(),
       div_factor=st.floats(2.0, 100.0), final_div_factor=st.floats(10.0, 1e5))
def test_one_cycle_lr(torch, algorithm, max_lr, extra, pct_start, strategy, three_phase,
                      cycle_momentum, div_factor, final_div_factor):
    run_side_by_side(*both(torch, "OneCycleLR", algorithm=algorithm, max_lr=max_lr,
                           total_steps=STEPS + extra, pct_start=pct_start,
                           anneal_strategy=strategy, three_phase=three_phase,
                           cycle_momentum=cycle_momentum, div_factor=div_factor,
                           final_div_factor=final_div_factor))


@SCHEDULE_SETTINGS
@given(mode=st.sampled_from(["min", "max"]), factor=unit, patience=st.integers(0, 20),
       threshold=st.sampled_from([0.0, 1e-4, 1e-2]), threshold_mode=st.sampled_from(["rel", "abs"]),
       cooldown=st.integers(0, 10), min_lr=st.sampled_from([0.0, 1e-4, [1e-3, 1e-5]]),
       metrics=st.lists(st.floats(-10, 10), min_size=1, max_size=50))
def test_reduce_lr_on_plateau(torch, mode, factor, patience, threshold, threshold_mode,
                              cooldown, min_lr, metrics):
    ours_opt, theirs_opt = twin_optimizers(torch)
    kwargs = dict(mode=mode, factor=factor, patience=patience, threshold=threshold,
                  threshold_mode=threshold_mode, cooldown=cooldown, min_lr=min_lr)
    run_side_by_side(optim.ReduceLROnPlateau(ours_opt, **kwargs),
                     torch.optim.lr_scheduler.ReduceLROnPlateau(theirs_opt, **kwargs),
                     ours_opt, theirs_opt, metrics=metrics)


SUB_SCHEDULES = {
    "LinearLR": st.fixed_dictionaries({"start_factor": st.floats(0.01, 1.0),
                                       "total_iters": st.integers(1, 100)}),
    "ExponentialLR": st.fixed_dictionaries({"gamma": st.floats(0.95, 1.0)}),
    "CosineAnnealingLR": st.fixed_dictionaries({"T_max": st.integers(1, 500)}),
    "StepLR": st.fixed_dictionaries({"step_size": st.integers(1, 100), "gamma": unit}),
}


@SCHEDULE_SETTINGS
@given(data=st.data())
def test_sequential_lr(torch, data):
    names = data.draw(st.lists(st.sampled_from(sorted(SUB_SCHEDULES)), min_size=1, max_size=3))
    kwargs = [data.draw(SUB_SCHEDULES[name]) for name in names]
    milestones = sorted(data.draw(st.lists(st.integers(1, STEPS - 1), min_size=len(names) - 1,
                                           max_size=len(names) - 1)))
    ours_opt, theirs_opt = twin_optimizers(torch)
    ours = [getattr(optim, n)(ours_opt, **k) for n, k in zip(names, kwargs, strict=True)]
    theirs = [getattr(torch.optim.lr_scheduler, n)(theirs_opt, **k)
              for n, k in zip(names, kwargs, strict=True)]
    run_side_by_side(optim.SequentialLR(ours_opt, ours, milestones),
                     torch.optim.lr_scheduler.SequentialLR(theirs_opt, theirs, milestones),
                     ours_opt, theirs_opt)


def test_schedule_state_dict_resumes():
    opt = optim.SGD([np.zeros(2)], lr=0.1)
    sched = optim.CosineAnnealingLR(opt, T_max=50)
    for _ in range(10):
        sched.step()
    saved_opt, saved_sched = opt.state_dict(), sched.state_dict()
    expected = []
    for _ in range(20):
        sched.step()
        expected.append(sched.get_last_lr())
    opt2 = optim.SGD([np.zeros(2)], lr=0.1)
    opt2.load_state_dict(saved_opt)
    sched2 = optim.CosineAnnealingLR(opt2, T_max=50, last_epoch=9)
    sched2.load_state_dict(saved_sched)
    assert [sched2.step() or sched2.get_last_lr() for _ in range(20)] == expected


def test_schedules_refuse_bad_arguments():
    opt = optim.SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        optim.LinearLR(opt, start_factor=0.0)
    with pytest.raises(ValueError, match="total_steps"):
        optim.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        optim.ReduceLROnPlateau(opt, factor=1.5)
    with pytest.raises(TypeError, match="not an optimizer"):
        optim.StepLR(object(), step_size=2)
    with pytest.raises(ValueError, match="one milestone fewer"):
        optim.SequentialLR(opt, [optim.StepLR(opt, 2)], milestones=[3])
