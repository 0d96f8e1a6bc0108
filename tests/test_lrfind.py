"""The learning-rate range test, against gradient descent's closed-form stability limit on a
quadratic, and its command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from descentlab import optim, problems
from descentlab.cli import main
from descentlab.experiments.lrfind import BLOW_UP, SMOOTHING, range_test
from descentlab.problems.builtin import _deep_quadratic_hessian


def test_gradient_descent_on_a_quadratic_blows_up_only_past_its_stability_limit():
    # for lr < 2 / λmax every eigen-component shrinks, so the loss cannot grow: the test must
    # stop at a rate past that limit, and suggest one below it
    limit = 2 / np.linalg.eigvalsh(_deep_quadratic_hessian()).max()
    test = range_test(problems.get("quadratic-deep"), optim.SGD, start=1e-5, end=10.0,
                      steps=200)
    assert test.stopped, "the loss should blow up before lr = 10"
    assert test.lrs[-1] > limit
    assert 0 < test.suggestion < limit
    assert test.minimum_over_10 < limit
    # below the limit the raw loss never rises (deterministic gradient descent)
    below = [loss for lr, loss in zip(test.lrs, test.losses, strict=True) if lr < limit]
    assert np.all(np.diff(below) <= 1e-12 * np.abs(below[:-1]))


def test_the_curve_is_the_bias_corrected_moving_average():
    test = range_test(problems.get("linear-regression"), optim.SGD, steps=50)
    average = 0.0
    for step, (loss, smooth) in enumerate(zip(test.losses, test.smoothed, strict=True),
                                          start=1):
        average = SMOOTHING * average + (1 - SMOOTHING) * loss
        assert smooth == pytest.approx(average / (1 - SMOOTHING ** step), rel=1e-12)
    assert test.lrs[0] == pytest.approx(1e-7) and np.all(np.diff(np.log(test.lrs)) > 0)
    if test.stopped:
        assert test.smoothed[-1] > BLOW_UP * min(test.smoothed)


@pytest.mark.parametrize("kwargs,message", [
    ({"start": 1.0, "end": 0.1}, "need 0 < start < end"),
    ({"start": 0.0}, "need 0 < start < end"),
    ({"end": math.inf}, "need 0 < start < end"),
    ({"steps": 3}, "steps must be an integer >= 5"),
])
def test_bad_ranges_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        range_test(problems.get("rosenbrock"), optim.Adam, **kwargs)


def test_giving_lr_is_refused():
    with pytest.raises(ValueError, match="sets the learning rate itself"):
        range_test(problems.get("rosenbrock"), optim.Adam, {"lr": 0.1})


def test_the_command_writes_the_plot_and_the_curve(tmp_path, capsys):
    out, record = tmp_path / "plots", tmp_path / "curve.json"
    assert main(["lr-find", "quadratic-deep", "SGD", "--set", "momentum=0.9", "--out",
                 str(out), "--json", str(record)]) == 0
    text = capsys.readouterr().out
    assert "suggested lr" in text
    png = out / "lr_find_quadratic-deep_SGD.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(record.read_text())
    assert data["kwargs"] == {"momentum": 0.9}
    assert len(data["lr"]) == len(data["loss"]) == len(data["smoothed"])
    assert f"{data['suggestion']:.3g}" in text


@pytest.mark.parametrize("argv,message", [
    (["lr-find", "rosenbrok", "Adam"], "unknown problem 'rosenbrok' (did you mean "
                                       "'rosenbrock'?)"),
    (["lr-find", "rosenbrock", "Adamm"], "unknown optimizer 'Adamm' (did you mean 'Adam'?)"),
    (["lr-find", "rosenbrock", "Adam", "--set", "betas"], "--set expects KEY=VALUE"),
    (["lr-find", "rosenbrock", "Adam", "--set", "eps=tiny"], "--set eps: expected a number"),
    (["lr-find", "rosenbrock", "Adam", "--set", "eps=-1"], "Invalid epsilon value: -1.0"),
    (["lr-find", "rosenbrock", "Adam", "--set", "momentum=0.9"],
     "unknown hyperparameter of Adam in --set 'momentum'"),
    (["lr-find", "rosenbrock", "Adam", "--steps", "2"], "steps must be an integer >= 5"),
    (["lr-find", "rosenbrock", "Adam", "--import", "no_such_module_xyz"],
     "cannot import module 'no_such_module_xyz'"),
])
def test_command_mistakes_are_one_line(argv, message, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_an_unwritable_output_folder_is_refused_before_the_test_runs(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["lr-find", "rosenbrock", "Adam", "--out", str(blocker)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists and is not a folder" in err[0]
