"""The 2-D test functions, the optimizers' paths on them and ``descentlab trajectories``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from descentlab.cli import main
from descentlab.trajectories import FUNCTIONS, LEARNING_RATES, OPTIMIZERS, descend, descend_all


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_gradients_match_finite_differences(name):
    function = FUNCTIONS[name]
    rng = np.random.default_rng(0)
    x0, x1, y0, y1 = function.window
    h = 1e-6
    for _ in range(20):
        p = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
        numeric = [(function.value(*(p + h * e)) - function.value(*(p - h * e))) / (2 * h)
                   for e in np.eye(2)]
        np.testing.assert_allclose(function.gradient(p), numeric, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", [n for n, f in FUNCTIONS.items() if f.minimum is not None])
def test_the_stated_minimum_is_where_scipy_finds_it(name):
    function = FUNCTIONS[name]
    found = optimize.minimize(lambda p: function.value(*p), function.start,
                              jac=function.gradient, method="BFGS", tol=1e-12)
    np.testing.assert_allclose(found.x, function.minimum, atol=1e-4)
    assert function.value(*function.minimum) == pytest.approx(0.0, abs=1e-12)


def test_gradient_descent_on_the_quadratic_follows_the_closed_form():
    """On ½(x² + κy²), SGD without momentum multiplies x by (1 − lr) and y by (1 − lr·κ) at
    every step."""
    function = FUNCTIONS["quadratic"]
    lr, steps = 0.01, 40
    path = descend(function, "SGD", "SGD", {}, lr, steps)
    t = np.arange(steps + 1)
    x0, y0 = function.start
    expected = np.stack([x0 * (1 - lr) ** t, y0 * (1 - lr * 50.0) ** t], axis=1)
    np.testing.assert_allclose(path.points, expected, rtol=1e-12)
    assert path.stopped == ""


def test_paths_stop_when_they_leave_the_window_or_diverge():
    saddle = FUNCTIONS["saddle"]
    path = descend(saddle, "SGD", "SGD", {}, 0.5, 2000)  # y grows by 2x per step
    assert path.stopped == "left the window" and len(path.points) < 100
    rosenbrock = FUNCTIONS["rosenbrock"]
    path = descend(rosenbrock, "SGD", "SGD", {}, 1.0, 200)
    assert path.stopped in ("diverged", "left the window")


def test_every_default_optimizer_has_a_rate_for_every_function():
    for name in FUNCTIONS:
        assert set(LEARNING_RATES[name]) == {label for label, *_ in OPTIMIZERS}
        paths = descend_all(FUNCTIONS[name], steps=5)
        assert [p.label for p in paths] == [label for label, *_ in OPTIMIZERS]
    with pytest.raises(ValueError, match="unknown optimizer 'Nope'"):
        descend_all(FUNCTIONS["beale"], 5, labels=["Nope"])
    with pytest.raises(ValueError, match="must be positive"):
        descend_all(FUNCTIONS["beale"], 5, rates={"Adam": -1.0})


def test_the_command_writes_pictures_and_a_gif(tmp_path, capsys):
    assert main(["trajectories", "--functions", "quadratic", "saddle", "--steps", "30",
                 "--optimizers", "SGD", "Adam", "--lr", "Adam=0.2", "--gif",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in ("quadratic", "saddle"):
        assert (tmp_path / f"trajectories_{name}.png").read_bytes().startswith(b"\x89PNG")
        assert (tmp_path / f"trajectories_{name}.gif").read_bytes()[:6] in (b"GIF89a",
                                                                             b"GIF87a")
    assert "0.2" in out and "no minimum" in out
    from PIL import Image

    with Image.open(tmp_path / "trajectories_quadratic.gif") as gif:
        assert gif.n_frames > 10


def test_the_command_refuses_bad_input(tmp_path, capsys):
    assert main(["trajectories", "--lr", "Adam", "--out", str(tmp_path)]) == 2
    assert "expects LABEL=RATE" in capsys.readouterr().err
    assert main(["trajectories", "--lr", "Adam=-3", "--out", str(tmp_path)]) == 2
    assert "must be positive" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
