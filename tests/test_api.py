"""The public face: torch.optim's signatures, documentation, the command line and the example."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import require_torch

import descentlab.optim as optim
from descentlab.optim import conventions
from descentlab.optim.algorithms import IMPLEMENTATION

ROOT = Path(__file__).resolve().parent.parent
TORCH_NAMES = [name for name in optim.OPTIMIZERS if name != "Lion"]


@pytest.mark.parametrize("name", TORCH_NAMES)
def test_signature_matches_torch(name):
    """Same argument names and defaults; our positional arguments are a prefix of torch's."""
    torch = require_torch()
    ours = inspect.signature(optim.OPTIMIZERS[name]).parameters
    theirs = inspect.signature(getattr(torch.optim, name)).parameters
    ours = {arg: p for arg, p in ours.items() if arg not in IMPLEMENTATION}  # our own keywords
    for arg, parameter in ours.items():
        if arg not in theirs:
            # ours alone: the convention switches, keyword-only so that torch's positions hold
            assert arg in [*conventions.SWITCHES, "convention"], \
                f"{name}({arg}) is neither a torch.optim argument nor a convention switch"
            assert parameter.kind is parameter.KEYWORD_ONLY, (name, arg)
            continue
        assert parameter.default == theirs[arg].default, (name, arg)
    positional = [a for a, p in ours.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    theirs_positional = [a for a, p in theirs.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert theirs_positional[: len(positional)] == positional
    # every algorithmic argument of torch's is here (implementation flags are torch-only)
    torch_only = {"foreach", "fused", "capturable", "differentiable"}
    assert set(theirs) - set(ours) <= torch_only, set(theirs) - set(ours)


def test_lion_defaults_are_the_authors():
    assert optim.defaults_of(optim.Lion) == {
        "lr": 1e-4, "betas": (0.9, 0.99), "weight_decay": 0, "maximize": False,
        "convention": "torch"}


@pytest.mark.parametrize("name", list(optim.OPTIMIZERS))
def test_docstring_states_update_paper_and_differences(name):
    doc = optim.OPTIMIZERS[name].__doc__
    assert "θ" in doc and "←" in doc, "the update in plain math"
    assert re.search(r"Reference", doc) and "https://" in doc, "the paper, with a link"
    assert "Where libraries differ" in doc
    for library in ("optax", "Keras"):
        assert library in doc, f"{name}'s docstring does not say how {library} differs"


def test_plain_gradient_descent_is_documented_as_full_batch_sgd():
    assert "full-batch" in optim.SGD.__doc__
    assert "full-batch" in (ROOT / "README.md").read_text()


def test_readme_algorithm_table_matches_the_code():
    """Each README table row lists the class's real defaults (so the table cannot drift)."""
    readme = (ROOT / "README.md").read_text()
    for name, cls in optim.OPTIMIZERS.items():
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{name}`")),
                   None)
        assert row is not None, f"README has no table row for {name}"
        for arg, default in optim.defaults_of(cls).items():
            if arg in ("maximize", "convention", *conventions.SWITCHES):
                continue  # documented once for all optimizers (docs/conventions.md)
            text = f"{arg}={default}" if not isinstance(default, tuple) else \
                f"{arg}=({default[0]}, {default[1]})"
            assert text in row, f"README row for {name} lacks {text!r}: {row}"


def test_updates_in_place_and_keeps_dtype():
    w = np.ones((3, 4), dtype=np.float32)[:, ::2]  # a non-contiguous view
    base = w.base
    opt = optim.Adam([w], lr=0.1)
    opt.step([np.ones((3, 2), dtype=np.float32)])
    assert w.dtype == np.float32 and w.base is base
    np.testing.assert_allclose(base[:, ::2], 0.9, rtol=1e-6)
    np.testing.assert_array_equal(base[:, 1::2], 1.0)


def test_none_gradient_leaves_parameter_and_state_alone():
    a, b = np.ones(2), np.ones(2)
    opt = optim.Adam([a, b], lr=0.1)
    opt.step([np.ones(2), None])
    assert 1 not in opt.state and np.array_equal(b, np.ones(2))
    opt.step([None, np.ones(2)])
    assert opt.state[0]["step"] == 1 and opt.state[1]["step"] == 1


def test_scalar_gradient_for_a_0d_parameter():
    w = np.array(2.0)
    optim.SGD([w], lr=0.5).step([np.float64(2.0)])
    assert w == 1.0


def test_param_groups_defaults_and_add_param_group():
    a, b, c = np.zeros(2), np.zeros(2), np.zeros(2)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["momentum"] == 0.9
    opt.add_param_group({"params": [c], "lr": 1.0})
    opt.step([np.ones(2), np.ones(2), np.ones(2)])
    np.testing.assert_allclose([a[0], b[0], c[0]], [-0.1, -0.5, -1.0])
    assert "Parameter Group 2" in repr(opt)


def run(*args, **kwargs):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, **kwargs)


def test_cli_help_and_optimizers():
    result = run("-m", "descentlab", "--help")
    assert result.returncode == 0 and "optimizers" in result.stdout
    result = run("-m", "descentlab", "optimizers", "--help")
    assert result.returncode == 0 and "--json" in result.stdout
    result = run("-m", "descentlab", "optimizers", "--json")
    assert result.returncode == 0
    listed = {row["name"]: row["defaults"] for row in json.loads(result.stdout)}
    assert listed["Adam"]["betas"] == [0.9, 0.999] and set(listed) == set(optim.OPTIMIZERS)


def test_cli_unknown_command_fails_with_usage():
    result = run("-m", "descentlab", "frobnicate")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_linear_regression_example_reaches_lstsq():
    result = run(str(ROOT / "examples" / "linear_regression.py"))
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines()
            if line.split()[:1] and line.split()[0] in
            ("gradient", "mini-batch", "AdaGrad", "RMSprop", "Adadelta", "Adam")]
    assert len(rows) == 6, result.stdout
    for row in rows:
        distance, accepted = (float(x) for x in row.split()[-2:])
        assert distance <= accepted, row


def test_linear_regression_example_reports_failure():
    result = run(str(ROOT / "examples" / "linear_regression.py"), "--steps", "10")
    assert result.returncode == 1 and "farther from the optimum" in result.stderr


def test_readme_checkpoint_example_runs(tmp_path, monkeypatch):
    """The README's second Python example (NaN skipping, a named checkpoint), as written."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    example = next(b for b in blocks if "optim.save" in b)
    monkeypatch.chdir(tmp_path)
    exec(example, {})  # its own asserts check the result
    assert (tmp_path / "adam.npz").is_file()


def test_readme_quickstart_runs_and_converges():
    """The README's Python example, run as written."""
    code = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    namespace: dict = {}
    exec(code, namespace)
    np.testing.assert_allclose(namespace["w"], np.ones(3), atol=1e-2)
    np.testing.assert_allclose(namespace["b"], -1.0, atol=1e-2)
    assert namespace["state"]["state"][0]["step"] == 500


def test_readme_user_problem_example_runs(tmp_path, monkeypatch):
    """The README's example of a user's problem and a sweep from Python, as written."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    example = next(b for b in blocks if "run_sweep" in b)
    monkeypatch.chdir(tmp_path)
    exec(example, {})  # its own assert checks the count of runs
    from descentlab.lab import Store

    with Store(tmp_path / "my-sweep") as store:
        rows = store.sweep_runs("mine")
    finals = [r for r in rows if r["phase"] == "final"]
    # noiseless least squares: a tuned optimizer gets the coefficients within the target
    assert finals and min(r["final_metric"] for r in finals) < 1e-3


def test_the_example_sweep_configuration_is_valid():
    from descentlab.experiments import load

    config = load(ROOT / "examples" / "sweep.toml")
    assert len(config.problems) == 6 and len(config.optimizers) == 4
