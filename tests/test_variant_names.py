"""Factory-made compiled functions get a name per variant (``native.variant_names``), so that
variants one process loads from Numba's cache never stand in for one another."""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import require_torch

import descentlab.optim as optim
from descentlab.native import variant_names
from descentlab.native.variant_names import variant_named
from descentlab.optim.executors import kernels, launches, shares


def _factory(value):
    def made(x):
        return x + value

    return made


def test_variants_of_one_definition_get_names_of_their_own():
    one, other, again = (variant_named(_factory(v)) for v in (1.0, 2.0, 1.0))
    base = "_factory.<locals>.made__variant_"
    assert all(f.__qualname__.startswith(base) for f in (one, other, again))
    assert one.__qualname__ != other.__qualname__  # closures differ
    assert one.__qualname__ == again.__qualname__  # the same variant: the same name
    # what the closure does not show, the caller passes: it tells variants apart too
    assert variant_named(_factory(1.0), "a").__qualname__ != \
        variant_named(_factory(1.0), "b").__qualname__


def _name_with_holders() -> tuple[str, str]:
    """A variant's name, then the same variant's name while something else holds the parts of
    its code that Numba's bytecode analysis keeps (the code is shared by every variant the
    factory makes)."""
    before = variant_named(_factory(1.0)).__qualname__
    code = _factory.__code__.co_consts[1]
    assert code.co_name == "made"
    held = (code.co_names, code.co_consts, code.co_linetable, code.co_exceptiontable)
    after = variant_named(_factory(1.0)).__qualname__
    del held
    return before, after


def test_a_variant_s_name_does_not_depend_on_what_else_holds_its_code():
    """In a process that had compiled one kernel of a rule, the next kernel of that rule got
    another name than in a process that had loaded the first from the cache, so Numba's cache
    missed it and compiled it again (2 s): ``code_bytes`` writes code without references."""
    before, after = _name_with_holders()
    assert after == before


def test_marshal_s_default_format_would_change_the_name(monkeypatch):
    """The case above is a real one: with marshal's own format the name changes."""
    monkeypatch.setattr(variant_names, "_STABLE_FORMAT", marshal.version)
    before, after = _name_with_holders()
    assert after != before


def test_a_function_is_named_for_its_variant_once():
    made = variant_named(_factory(1.0))
    name = made.__qualname__
    with pytest.raises(ValueError, match="already named for its variant"):
        variant_named(made)
    assert made.__qualname__ == name


def _share(name: str):
    """The rule ``name``, a stand-in for a float32 part using all its state arrays (all a
    share reads of one), and the rule's coefficients."""
    opt = optim.OPTIMIZERS[name]([np.ones(2, np.float32)])
    rule, group = opt.rule, opt.param_groups[0]
    h = rule.coefficients(group, {"step": 0})
    part = SimpleNamespace(dtype=np.dtype(np.float32),
                           active=(True,) * len(rule.arrays))
    return rule, part, h


def test_the_fused_executors_factories_name_each_variant():
    """Every function the kernels' and shares' factories make carries its variant's name: the
    serial loop, the share and the job that the helper thread and Numba's pool run."""
    names = []
    for name in ("SGD", "Adagrad", "RMSprop"):
        rule, part, h = _share(name)
        loop = kernels.blocks_function_for(rule, part.active, h)
        share, _ = shares._share_for(rule, part, h)
        job = launches._job(share)
        names += [loop.__qualname__, share.__qualname__, job._pyfunc.__qualname__]
    assert all("__variant_" in n for n in names), names
    assert len(set(names)) == len(names), names


# Every process draws the same function numbers (as processes started alike did before
# ``native.numba_ids`` drew them at random: one run per optimizer, or forked workers), the case
# in which two variants' machine code used to carry one symbol; the counter is set after
# descentlab's import, which draws it. Each optimizer steps a 2^20-element parameter (the torch
# face then runs its kernel as a team of torch's threads) and prints its largest difference
# from torch.optim's, relative.
_STEPS = """
import itertools, sys
import numba.core.bytecode
import torch
import descentlab.torch as dt
numba.core.bytecode.FunctionIdentity._unique_ids = itertools.count(1_000_000)
for name in sys.argv[1:]:
    torch.manual_seed(0)
    start, gradient = torch.randn(1 << 20), torch.randn(1 << 20)
    ours, theirs = (torch.nn.Parameter(start.clone()) for _ in range(2))
    ours.grad, theirs.grad = gradient.clone(), gradient.clone()
    mine = dt.OPTIMIZERS[name]([ours], lr=0.1)
    reference = getattr(torch.optim, name)([theirs], lr=0.1)
    for _ in range(3):
        mine.step()
        reference.step()
    print(name, float((ours - theirs).abs().max() / theirs.abs().max()))
"""


def test_variants_compiled_in_separate_processes_keep_their_own_code(tmp_path):
    """Each optimizer compiled in a process of its own, into one Numba cache; then one process
    loads them all and steps each. Before the variants were named, this process ran other
    rules' team functions for Adadelta and Adamax (0.99 and NaN away from torch.optim after
    three steps, relative)."""
    require_torch()
    names = ["Adagrad", "RMSprop", "Adadelta", "Adamax"]
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}

    def run(*args):
        done = subprocess.run([sys.executable, "-c", _STEPS, *args], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return dict((line.split()[0], float(line.split()[1]))
                    for line in done.stdout.splitlines())

    for name in names:
        assert run(name)[name] <= 1e-6  # compiled here, alone
    together = run(*names)  # every variant loaded from the cache
    assert sorted(together) == sorted(names)
    assert all(difference <= 1e-6 for difference in together.values()), together
