"""descentlab.torch's step wrapper (``step_hooks``) against torch.optim's: the same hooks in the
same order, arguments a pre-hook replaces, the profiler's ``Optimizer.step#<class>.step``
range under a profiler, and no range opened without one."""

from __future__ import annotations

import copy

import pytest
from conftest import require_torch

torch = require_torch()
from torch.optim import optimizer as torch_optimizer  # noqa: E402

import descentlab.torch as dt  # noqa: E402
from descentlab.torch import step_hooks  # noqa: E402


def make(optimizer_class):
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.full((3,), 0.5)
    return optimizer_class([p], lr=0.1)


def hook_log(optimizer) -> tuple[list, list]:
    """The hooks' calls in order, and their handles (global hooks must be removed)."""
    log: list = []
    handles = [
        torch_optimizer.register_optimizer_step_pre_hook(
            lambda o, args, kwargs: log.append(("global pre", len(args), dict(kwargs)))),
        optimizer.register_step_pre_hook(
            lambda o, args, kwargs: log.append(("pre", len(args), dict(kwargs)))),
        optimizer.register_step_post_hook(
            lambda o, args, kwargs: log.append(("post", len(args), dict(kwargs)))),
        torch_optimizer.register_optimizer_step_post_hook(
            lambda o, args, kwargs: log.append(("global post", len(args), dict(kwargs)))),
    ]
    return log, handles


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_the_hooks_run_once_a_step_in_torch_optims_order(name):
    logs = []
    for optimizer in (make(getattr(torch.optim, name)), make(dt.OPTIMIZERS[name])):
        log, handles = hook_log(optimizer)
        try:
            optimizer.step()
            optimizer.step(closure=None)
        finally:
            for handle in handles:
                handle.remove()
        logs.append(log)
    assert logs[1] == logs[0]
    assert [entry[0] for entry in logs[1]] == ["global pre", "pre", "post", "global post"] * 2


REGISTER = {
    "global pre": lambda optimizer, hook: torch_optimizer.register_optimizer_step_pre_hook(hook),
    "pre": lambda optimizer, hook: optimizer.register_step_pre_hook(hook),
    "post": lambda optimizer, hook: optimizer.register_step_post_hook(hook),
    "global post": lambda optimizer, hook: torch_optimizer.register_optimizer_step_post_hook(
        hook),
}


@pytest.mark.parametrize("kind", list(REGISTER))
def test_a_hook_of_any_one_kind_registered_between_steps_runs_from_the_next(kind):
    """Without any hook the wrapper goes straight to the step; a single hook of each kind,
    registered after such steps, runs at every step until it is removed, as with torch.optim,
    and the profiler's entry point ``_optimizer_step_code`` runs once a step either way."""
    counts = []
    for optimizer in (make(torch.optim.Adam), make(dt.Adam)):
        entries: list = []
        optimizer._optimizer_step_code = lambda log=entries: log.append("entry")
        optimizer.step()
        handle = REGISTER[kind](optimizer, lambda o, args, kwargs, log=entries: log.append(kind))
        try:
            optimizer.step()
            optimizer.step()
        finally:
            handle.remove()
        optimizer.step()
        counts.append(entries)
    assert counts[1] == counts[0]
    hooked = [kind, "entry"] if "pre" in kind else ["entry", kind]
    assert counts[1] == ["entry", *hooked, *hooked, "entry"]


def test_subclasses_and_copies_run_the_hooks_as_torch_optims_do():
    """A subclass runs them once; one whose own step calls its base's runs them twice (each
    class's step is wrapped), with torch.optim as here."""
    logs = {}
    for base in (torch.optim.Adam, dt.Adam):
        make(base)  # the base's own step is wrapped once an instance exists

        class Mine(base):
            pass

        class Overriding(base):
            def step(self, closure=None):
                return super().step(closure)

        for kind, optimizer in (("subclass", make(Mine)), ("overriding", make(Overriding)),
                                ("copy", copy.deepcopy(make(base)))):
            log, handles = hook_log(optimizer)
            try:
                optimizer.step()
            finally:
                for handle in handles:
                    handle.remove()
            logs[base, kind] = [entry[0] for entry in log]
    once = ["global pre", "pre", "post", "global post"]
    for kind in ("subclass", "copy"):
        assert logs[dt.Adam, kind] == logs[torch.optim.Adam, kind] == once
    assert logs[dt.Adam, "overriding"] == logs[torch.optim.Adam, "overriding"] == \
        ["global pre", "pre", "global pre", "pre", "post", "global post", "post", "global post"]


def test_a_pre_hook_may_replace_the_arguments_and_a_bad_answer_is_refused():
    for optimizer_class in (torch.optim.Adam, dt.Adam):
        optimizer = make(optimizer_class)
        handle = optimizer.register_step_pre_hook(
            lambda o, args, kwargs: ((args[0],), {"closure": lambda: 42.0}))
        assert optimizer.step() == 42.0  # the closure the hook put in is the one called
        handle.remove()
    optimizer = make(dt.Adam)
    before = optimizer.param_groups[0]["params"][0].detach().clone()
    optimizer.register_step_pre_hook(lambda o, args, kwargs: 5)
    with pytest.raises(RuntimeError, match=r"step pre-hook .* of Adam returned 5; a pre-hook "
                                           r"returns None or a tuple \(new_args, new_kwargs\)"):
        optimizer.step()
    assert torch.equal(optimizer.param_groups[0]["params"][0], before)


def test_the_profiler_sees_the_step_under_torch_optims_name():
    names = []
    for optimizer in (make(torch.optim.RMSprop), make(dt.RMSprop)):
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            optimizer.step()
        names.append({event.name for event in prof.events()
                      if event.name.startswith("Optimizer.step")})
    assert names[0] == names[1] == {"Optimizer.step#RMSprop.step"}


def test_no_profiler_range_is_opened_while_no_profiler_runs(monkeypatch):
    opened = []
    real = step_hooks.record_function

    def counted(name):
        opened.append(name)
        return real(name)

    monkeypatch.setattr(step_hooks, "record_function", counted)
    optimizer = make(dt.SGD)
    optimizer.step()
    assert opened == []
    with torch.autograd.profiler.profile():
        optimizer.step()
    assert opened == ["Optimizer.step#SGD.step"]
