"""Sweep configurations: what a valid file becomes, and a one-line error (exit status 2, no
traceback, nothing written) for every kind of mistake."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from descentlab.cli import main
from descentlab.experiments import ConfigError, load
from descentlab.experiments.space import Points, Range

VALID = """
name = "check"
problems = ["quadratic-deep", "rosenbrock"]
trials = 6
seeds = 2
seed = 4

[optimizers."SGD+momentum"]
optimizer = "SGD"
lr = { min = 1e-3, max = 1.0, scaling = "log" }
momentum = [0.5, 0.9]
nesterov = false

[optimizers.Adam]
lr = { min = 1e-4, max = 1e-1, scaling = "log" }
beta1 = [0.8, 0.9]
eps = 1e-8
"""


def _write(tmp_path, text: str):
    path = tmp_path / "sweep.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_valid_configuration(tmp_path):
    config = load(_write(tmp_path, VALID))
    assert (config.name, config.problems, config.trials, config.seeds, config.seed) == \
        ("check", ("quadratic-deep", "rosenbrock"), 6, 2, 4)
    sgd, adam = config.optimizers
    assert (sgd.label, sgd.name, adam.label, adam.name) == ("SGD+momentum", "SGD", "Adam",
                                                           "Adam")
    assert sgd.space.dimensions == {"lr": Range(1e-3, 1.0, log=True),
                                    "momentum": Points((0.5, 0.9)), "nesterov": False}
    # beta1 replaces the first half of Adam's default betas
    assert adam.kwargs({"lr": 0.01, "beta1": 0.8, "eps": 1e-8}) == {
        "lr": 0.01, "betas": (0.8, 0.999), "eps": 1e-8}


def test_an_optimizer_without_lr_uses_its_default(tmp_path):
    config = load(_write(tmp_path, """
        name = "d"
        problems = ["rosenbrock"]
        [optimizers.Adagrad]
    """))
    assert config.optimizers[0].space.dimensions == {"lr": 0.01}
    assert (config.trials, config.seeds, config.seed) == (20, 5, 0)  # the defaults


def test_a_convention_and_its_default_lr(tmp_path):
    """A convention is a fixed choice; without lr the run takes the convention's default."""
    config = load(_write(tmp_path, """
        name = "c"
        problems = ["rosenbrock"]
        [optimizers.keras-sgd]
        optimizer = "SGD"
        convention = "keras"
        momentum = 0.9
        [optimizers.optax-rmsprop]
        optimizer = "RMSprop"
        convention = "optax"
        lr = 0.003
        eps_placement = "outside"
    """))
    keras_sgd, optax_rmsprop = config.optimizers
    assert keras_sgd.space.dimensions == {"convention": "keras", "momentum": 0.9, "lr": 0.01}
    group = keras_sgd.cls([np.zeros(2)], **keras_sgd.kwargs(
        {"convention": "keras", "momentum": 0.9, "lr": 0.01})).param_groups[0]
    assert group["lr_in_momentum"] is True and group["decoupled_weight_decay"] is True
    setting = {"convention": "optax", "lr": 0.003, "eps_placement": "outside"}
    group = optax_rmsprop.cls([np.zeros(2)], **optax_rmsprop.kwargs(setting)).param_groups[0]
    assert (group["alpha"], group["eps_placement"], group["lr"]) == (0.9, "outside", 0.003)


BASE = 'name = "bad"\nproblems = ["rosenbrock"]\n'
ADAM = '[optimizers.Adam]\nlr = { min = 1e-4, max = 1e-1, scaling = "log" }\n'

MISTAKES = [
    ('name = "x"\nproblems = [rosenbrock]\n', r"TOML syntax error: .*line 2, column 13"),
    ('name = "x"\nproblems = ["rosenbrock"\n', r"TOML syntax error: Unclosed array"),
    (BASE + "trails = 5\n" + ADAM, r"top level: unknown key 'trails' \(did you mean "
                                   r"'trials'\?\)"),
    (BASE + 'trials = "5"\n' + ADAM, r"trials: must be an integer >= 1, got '5' \(string\)"),
    (BASE + "trials = 0\n" + ADAM, r"trials: must be an integer >= 1, got 0"),
    (BASE + "seeds = true\n" + ADAM, r"seeds: must be an integer >= 1, got True \(boolean\)"),
    ('name = ""\nproblems = ["rosenbrock"]\n' + ADAM, r"name: must be a non-empty string"),
    ('name = "x"\n' + ADAM, r"top level: missing key 'problems'"),
    (BASE, r"top level: missing key 'optimizers'"),
    ('name = "x"\nproblems = "rosenbrock"\n' + ADAM, r"problems: must be a non-empty list"),
    ('name = "x"\nproblems = ["rosenbrok"]\n' + ADAM,
     r"problems: unknown problem 'rosenbrok' \(did you mean 'rosenbrock'\?\)"),
    ('name = "x"\nproblems = ["rosenbrock", "rosenbrock"]\n' + ADAM, r"listed twice"),
    (BASE + "[optimizers.Adamm]\n", r"\[optimizers.Adamm\]: unknown optimizer 'Adamm' "
                                    r"\(did you mean 'Adam'\?\)"),
    (BASE + '[optimizers.Fast]\noptimizer = "Turbo"\n', r"unknown optimizer 'Turbo'"),
    (BASE + "[optimizers.Adam]\nlrr = 0.1\n", r"\[optimizers.Adam\]: unknown key 'lrr' "
                                              r"\(did you mean 'lr'\?\)"),
    (BASE + "[optimizers.Adam]\nmomentum = 0.9\n", r"unknown key 'momentum'"),
    (BASE + '[optimizers.Adam]\nlr = "fast"\n', r"\[optimizers.Adam\] lr: must be a number"),
    (BASE + "[optimizers.Adam]\nlr = { min = 1e-1, max = 1e-4 }\n",
     r"min must be below max, got min=0.1, max=0.0001"),
    (BASE + '[optimizers.Adam]\nlr = { min = 0.0, max = 1.0, scaling = "log" }\n',
     r"a log range needs min > 0"),
    (BASE + '[optimizers.Adam]\nlr = { min = 1e-4, max = 1.0, scaling = "exp" }\n',
     r"scaling must be one of 'log', 'linear', got 'exp'"),
    (BASE + "[optimizers.Adam]\nlr = { min = 1e-4 }\n", r"a range needs min and max"),
    (BASE + "[optimizers.Adam]\nlr = { min = 1e-4, max = 1.0, step = 2 }\n",
     r"lr: unknown key 'step'"),
    (BASE + "[optimizers.Adam]\nlr = []\n", r"lr: an empty list of points"),
    (BASE + "[optimizers.Adam]\namsgrad = 1\n", r"amsgrad: must be true or false, got 1"),
    (BASE + "[optimizers.Adam]\namsgrad = { min = 0, max = 1 }\n", r"amsgrad: is a switch"),
    (BASE + "[optimizers.Adam]\nbetas = [0.9]\n", r"betas: must be a list of 2 numbers"),
    (BASE + "[optimizers.Adam]\nbetas = [0.9, 0.99]\nbeta1 = 0.8\n",
     r"give betas or beta1/beta2, not both"),
    (BASE + "[optimizers.SGD]\nmomentum = { min = -0.5, max = 0.9 }\n",
     r"\[optimizers.SGD\]: SGD refuses momentum=-0.5, lr=0.001: Invalid momentum value: -0.5"),
    (BASE + "[optimizers.Adam]\nbeta2 = [0.99, 1.0]\n", r"Adam refuses .*beta2=1.0"),
    (BASE + 'import = ["no_such_module_xyz"]\n' + ADAM,
     r"import: cannot import module 'no_such_module_xyz'"),
    (BASE + 'import = ["missing.py"]\n' + ADAM, r"import: cannot import .*missing.py"),
    (BASE + "optimizers = 3\n", r"optimizers: must hold at least one"),
    (BASE + "[optimizers]\nAdam = 3\n", r"\[optimizers.Adam\]: must be a table"),
    (BASE + '[optimizers.Adam]\nconvention = "optax"\n',
     r"\[optimizers.Adam\]: optax.adam .*has no default learning rate: give lr"),
    (BASE + '[optimizers.RAdam]\nconvention = "keras"\n', r"keras has no RAdam"),
    (BASE + '[optimizers.Adam]\nconvention = "jax"\n', r"Invalid convention value: 'jax'"),
    (BASE + '[optimizers.Adam]\nconvention = ["torch", "keras"]\n',
     r"convention: must be a string, .*give each its own \[optimizers.LABEL\] table"),
    (BASE + '[optimizers.Adam]\neps_placement = "under"\n',
     r"Adam refuses eps_placement='under'.*must be one of 'outside', 'inside', 'hat'"),
]


@pytest.mark.parametrize("text,message", MISTAKES)
def test_a_mistake_is_one_line_naming_it(tmp_path, capsys, text, message):
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=message):
        load(path)
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"descentlab sweep: {path}: ")
    assert "Traceback" not in captured.err
    assert not out.exists()


def test_a_missing_file_a_folder_and_binary_bytes_are_named(tmp_path, capsys):
    for target, message in ((tmp_path / "nope.toml", "no such file"),
                            (tmp_path, "is a folder"),
                            (tmp_path / "bin.toml", "not UTF-8")):
        if target.name == "bin.toml":
            target.write_bytes(b"name = \xff\xfe\n")
        assert main(["sweep", str(target)]) == 2
        assert message in capsys.readouterr().err


def test_an_import_that_raises_is_named(tmp_path):
    (tmp_path / "broken.py").write_text("raise RuntimeError('half-written')\n")
    path = _write(tmp_path, BASE + 'import = ["broken.py"]\n' + ADAM)
    with pytest.raises(ConfigError, match=r"importing .*broken.py raised RuntimeError: "
                                          r"half-written"):
        load(path)
