"""descentlab.torch's fused steps on torch's own OpenMP threads (``torch/torch_threads.py``).

The steps' values are checked against torch.optim in test_torch_face.py, which now runs
through this path; here: that the path is the one in use where torch is a pip wheel on Linux,
that it splits the work correctly for any thread count, that it is torch's runtime it talks
to, and that its compiled functions come from Numba's cache in a second process.
"""

from __future__ import annotations

import ctypes
import sys

import numpy as np
import pytest
from conftest import outputs_of_two_processes, require_torch

torch = require_torch()  # CI requires torch: a missing one fails here, never skips

import descentlab.optim as npoptim  # noqa: E402
import descentlab.torch as dt  # noqa: E402
from descentlab.optim.executors import shares  # noqa: E402
from descentlab.optim.executors.fused import Fused  # noqa: E402
from descentlab.optim.executors.fused import _make_plan as fused_plan  # noqa: E402
from descentlab.optim.executors.launches import numba_launch  # noqa: E402
from descentlab.optim.rules.sgd import SGDCoefficients  # noqa: E402
from descentlab.torch import torch_threads  # noqa: E402

OPENMP = "parallel backend: OpenMP" in torch.__config__.parallel_info()
# where the team is expected (OpenMP on Linux) and missing, the first test fails instead
NO_TEAM = f"no team of torch's threads in this install: {torch_threads.DESCRIPTION}"


@pytest.fixture
def threads():
    """Restores torch's thread count after a test that changes it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.skipif(not (OPENMP and sys.platform.startswith("linux")),
                    reason="torch's team is looked for where torch runs on OpenMP on Linux")
def test_the_team_is_used_where_torch_runs_on_openmp():
    assert torch_threads.DESCRIPTION.startswith("torch's OpenMP threads"), \
        torch_threads.DESCRIPTION
    assert torch_threads.torch_launch() is not numba_launch


@pytest.mark.skipif(torch_threads.torch_launch() is numba_launch, reason=NO_TEAM)
def test_the_runtime_found_is_the_one_torch_sets_threads_in(threads):
    library, _ = torch_threads.find_runtime()
    library.omp_get_max_threads.restype = ctypes.c_int
    for count in (1, 2, 3):
        torch.set_num_threads(count)
        assert library.omp_get_max_threads() == count


def _models(dtype):
    """Parameters of awkward sizes: blocks split unevenly between threads, and fewer blocks
    than threads (one small parameter alone)."""
    torch.manual_seed(0)
    sizes = [(3, 5), (70001,), (1,), (40000, 2), (33,)]
    first = [torch.nn.Parameter(torch.randn(s, dtype=dtype)) for s in sizes]
    return first, [torch.nn.Parameter(p.detach().clone()) for p in first]


@pytest.mark.skipif(torch_threads.torch_launch() is numba_launch, reason=NO_TEAM)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name, kwargs", [
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01}),
    ("RMSprop", {"centered": True, "momentum": 0.5}),
    ("Adam", {"amsgrad": True, "weight_decay": 0.1}),
    ("Adadelta", {}),
    ("Lion", {}),
])
@pytest.mark.parametrize("count", [1, 2, 3])
def test_a_team_of_any_size_steps_as_numbas_pool_does(threads, dtype, name, kwargs, count):
    torch.set_num_threads(count)
    on_team, on_numba = _models(dtype)
    first = dt.OPTIMIZERS[name](on_team, **kwargs)
    second = dt.OPTIMIZERS[name](on_numba, **kwargs)
    second._fused = Fused(launch=numba_launch)
    start = [p.detach().clone() for p in on_team]
    for step in range(4):
        for a, b in zip(on_team, on_numba, strict=True):
            a.grad = torch.sin(a.detach() * (step + 1))
            b.grad = a.grad.clone()
        first.step()
        second.step()
    for a, b in zip(on_team, on_numba, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert all(not torch.equal(a, b) for a, b in zip(on_team, start, strict=True))


def _int_coefficient():
    """SGD's coefficients with an int where the rule makes a float."""
    return SGDCoefficients(step_scale=-1, grad_scale=1.0, momentum=0.0, one_minus_dampening=1.0,
                           nesterov=False, maximize=False, weight_decay=0.0, decay=1.0,
                           first=False)


def test_numbas_pool_refuses_a_coefficient_neither_float_nor_bool_before_anything_changes():
    """Numba would compile another kernel for an int (and none for other types)."""
    p, g = np.ones(10, np.float32), np.ones(10, np.float32)
    with pytest.raises(TypeError, match=r"coefficient step_scale=-1 of type int"):
        Fused(launch=numba_launch).run(npoptim.OPTIMIZERS["SGD"].rule, _int_coefficient(),
                                       "key", [p], [g], [None])
    assert (p == 1).all()


@pytest.mark.skipif(torch_threads.torch_launch() is numba_launch, reason=NO_TEAM)
def test_the_team_refuses_to_lay_out_a_coefficient_neither_float_nor_bool():
    """The team's record of coefficients is laid out from the first ``h`` it meets (later
    ones are cast into it, as NumPy casts)."""
    p = np.ones(10, np.float32)
    part = fused_plan([p], [None]).parts[0]
    with pytest.raises(TypeError, match=r"coefficient step_scale=-1 of type int"):
        shares._share_for(npoptim.OPTIMIZERS["SGD"].rule, part, _int_coefficient())


@pytest.mark.skipif(torch_threads.torch_launch() is numba_launch, reason=NO_TEAM)
def test_the_kept_record_is_written_again_unless_the_very_same_coefficients_come_back():
    """A steady rule's coefficients, kept by descentlab.torch, come back as the same object:
    their record is then left as it is; equal coefficients in another object are written."""
    rule = npoptim.OPTIMIZERS["SGD"].rule
    part = fused_plan([np.ones(10, np.float32)], [None]).parts[0]
    h = _int_coefficient()._replace(step_scale=-0.5)

    def kept(coefficients):
        return shares.StepArguments.kept("test", rule, part, part.blocks, coefficients,
                                         torch_threads._team_member)

    arguments = kept(h)
    assert arguments.coefficients[0]["step_scale"] == np.float32(-0.5)
    arguments.coefficients[0]["step_scale"] = 7.0  # marks the record: was it written again?
    assert kept(h) is arguments
    assert arguments.coefficients[0]["step_scale"] == np.float32(7.0)
    assert kept(h._replace()) is arguments  # equal, but another object
    assert arguments.coefficients[0]["step_scale"] == np.float32(-0.5)
    kept(h._replace(step_scale=-0.25))
    assert arguments.coefficients[0]["step_scale"] == np.float32(-0.25)


@pytest.mark.skipif(torch_threads.torch_launch() is numba_launch, reason=NO_TEAM)
def test_a_second_process_loads_the_team_function_from_the_cache(tmp_path):
    script = (
        "import torch, descentlab.torch as dt\n"
        "from descentlab.torch import torch_threads\n"
        "p = torch.nn.Parameter(torch.ones(3)); p.grad = torch.ones(3)\n"
        "dt.Adamax([p]).step()\n"
        "from descentlab.optim.executors import shares\n"
        "(compiled,) = shares._MEMBERS.values()\n"
        "print(compiled.function.cache_hits)\n"
    )
    runs = outputs_of_two_processes(script, tmp_path)
    assert runs == [["0"], ["1"]]  # compiled and stored, then loaded
