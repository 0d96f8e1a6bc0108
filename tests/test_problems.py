"""The problem registry: the built-ins' gradients, data and targets against independent
computations, and the API for users' own problems."""

from __future__ import annotations

import math

import numpy as np
import pytest

from descentlab import optim, problems
from descentlab.data import prepare
from descentlab.experiments.runner import batches, train
from descentlab.problems import Model, Problem, register
from descentlab.problems.builtin import _deep_quadratic_hessian, _regression_data

BUILT_IN = ("linear-regression", "logreg-digits", "deep-sigmoid-digits", "mlp-mnist1d",
            "quadratic-deep", "rosenbrock")


def test_the_six_built_ins_are_registered():
    assert set(BUILT_IN) <= set(problems.names())


def _finite_difference(model: Model, rows, h: float = 1e-6) -> list[np.ndarray]:
    grads = []
    for p in model.params:
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            saved = p[i]
            p[i] = saved + h
            up = model.loss_and_grad(rows)[0]
            p[i] = saved - h
            down = model.loss_and_grad(rows)[0]
            p[i] = saved
            g[i] = (up - down) / (2 * h)
        grads.append(g)
    return grads


@pytest.mark.parametrize("name", ["linear-regression", "quadratic-deep", "rosenbrock"])
def test_float64_problems_have_exact_gradients(name):
    problem = problems.get(name)
    model = problem.setup(3)
    rows = next(batches(problem, 3))
    _, grads = model.loss_and_grad(rows)
    grads = [np.array(g, copy=True) for g in grads]
    for ours, reference in zip(grads, _finite_difference(model, rows), strict=True):
        np.testing.assert_allclose(ours, reference, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_problem_gives_one_gradient_per_parameter_and_a_metric(name):
    problem = problems.get(name)
    model = problem.setup(0)
    loss, grads = model.loss_and_grad(next(batches(problem, 0)))
    assert math.isfinite(loss)
    assert [(g.shape, g.dtype) for g in grads] == [(p.shape, p.dtype) for p in model.params]
    metric = model.evaluate()
    assert math.isfinite(metric)
    if problem.goal == "max":
        assert 0 <= metric <= 1


@pytest.mark.parametrize("name", ["logreg-digits", "deep-sigmoid-digits", "mlp-mnist1d"])
def test_dataset_problems_batch_over_their_training_split(name):
    dataset = "digits" if "digits" in name else "mnist1d"
    from descentlab.data import digits as load_digits
    from descentlab.data import mnist1d

    splits = prepare(load_digits() if dataset == "digits" else mnist1d())
    assert problems.get(name).examples == len(splits.train)


def test_the_seed_draws_the_parameters_not_the_data():
    problem = problems.get("linear-regression")
    a, b, again = problem.setup(1), problem.setup(2), problem.setup(1)
    assert not np.array_equal(a.params[0], b.params[0])
    np.testing.assert_array_equal(a.params[0], again.params[0])
    np.testing.assert_array_equal(next(batches(problem, 1)), next(batches(problem, 1)))
    assert not np.array_equal(next(batches(problem, 1)), next(batches(problem, 2)))


def test_batches_cover_each_epoch_once():
    problem = problems.get("linear-regression")
    rows = batches(problem, 0)
    epoch = np.concatenate([next(rows) for _ in range(problem.steps_per_epoch)])
    np.testing.assert_array_equal(np.sort(epoch), np.arange(problem.examples))


def test_the_deep_quadratic_has_deepobs_spectrum():
    eigenvalues = np.sort(np.linalg.eigvalsh(_deep_quadratic_hessian()))
    assert np.all((eigenvalues[:90] >= 0) & (eigenvalues[:90] <= 1))
    assert np.all((eigenvalues[90:] >= 30) & (eigenvalues[90:] <= 60))


def test_the_regression_target_is_five_percent_above_the_least_squares_fit():
    X, y, Xv, yv = _regression_data()
    # the normal equations, solved independently of the problem's lstsq
    theta = np.linalg.solve(X.T @ X, X.T @ y)
    residual = Xv @ theta - yv
    expected = 1.05 * (residual @ residual) / (2 * len(yv))
    assert problems.get("linear-regression").target == pytest.approx(expected, rel=1e-10)


# a setting that reaches each target within the budget: the targets are attainable
REACHABLE = [
    ("linear-regression", "SGD", {"lr": 0.1}, 1),
    ("logreg-digits", "Adam", {"lr": 0.01}, 1),
    ("deep-sigmoid-digits", "RMSprop", {"lr": 3e-4}, 1),
    ("mlp-mnist1d", "SGD", {"lr": 0.05, "momentum": 0.9}, 1),
    ("quadratic-deep", "SGD", {"lr": 0.02, "momentum": 0.9}, 1),
    ("rosenbrock", "Adam", {"lr": 0.05}, 1),
]


@pytest.mark.parametrize("name,optimizer,kwargs,seed", REACHABLE)
def test_each_target_is_reached_by_a_tuned_optimizer(name, optimizer, kwargs, seed):
    problem = problems.get(name)
    outcome = train(problem, optim.OPTIMIZERS[optimizer], kwargs, seed)
    assert outcome.status == "finished"
    assert outcome.steps == problem.total_steps
    assert outcome.steps_to_target is not None, outcome.final_metric
    # the first evaluation at or past the target is the one recorded
    first = next(step for step, _, metric, _ in outcome.curve if problem.reached(metric))
    assert outcome.steps_to_target == first


def test_an_untuned_optimizer_misses_the_quadratic_target():
    problem = problems.get("quadratic-deep")
    outcome = train(problem, optim.SGD, {"lr": 1e-3}, 1)
    assert outcome.status == "finished" and outcome.steps_to_target is None


def test_a_diverging_run_is_stopped_and_says_so():
    problem = problems.get("quadratic-deep")
    # gradient descent on a quadratic diverges above lr = 2 / largest eigenvalue; at 10 /
    # largest the error grows 9-fold per step and overflows long before the budget ends
    largest = np.linalg.eigvalsh(_deep_quadratic_hessian()).max()
    outcome = train(problem, optim.SGD, {"lr": 10 / largest}, 1)
    assert outcome.status == "diverged"
    assert outcome.steps < problem.total_steps
    assert math.isnan(outcome.final_metric)


# -- users' problems ----------------------------------------------------------------------------

def _mean_problem(name: str = "test-mean", **overrides) -> Problem:
    data = np.arange(10.0)

    def setup(seed):
        w = np.array([float(seed)])

        def loss_and_grad(rows):
            x = data if rows is None else data[rows]
            return float(np.mean((w[0] - x) ** 2) / 2), [np.array([np.mean(w[0] - x)])]

        return Model([w], loss_and_grad, lambda: float(abs(w[0] - data.mean())))

    settings = {"metric": "distance to the mean", "goal": "min", "target": 0.1, "steps": 50,
                "examples": 10, "batch_size": 5, **overrides}
    return Problem(name, setup, **settings)


def test_a_user_problem_registers_and_trains():
    problem = register(_mean_problem("test-mean-registered"), replace=True)
    assert problems.get("test-mean-registered") is problem
    outcome = train(problem, optim.SGD, {"lr": 0.5}, 7)
    assert outcome.status == "finished" and outcome.final_metric < 0.5


def test_a_taken_name_is_refused_unless_replaced():
    register(_mean_problem("test-mean-taken"), replace=True)
    with pytest.raises(ValueError, match="already registered"):
        register(_mean_problem("test-mean-taken"))


def test_an_unknown_name_is_refused_with_the_close_match():
    with pytest.raises(ValueError, match=r"unknown problem 'rosenbrok' \(did you mean "
                                         r"'rosenbrock'\?\)"):
        problems.get("rosenbrok")


@pytest.mark.parametrize("overrides,message", [
    ({"goal": "maximise"}, "goal must be 'max' or 'min'"),
    ({"target": math.nan}, "target must be a finite number"),
    ({"epochs": 3}, "exactly one"),
    ({"steps": None}, "exactly one"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"steps": 2.5}, "steps must be a positive integer"),
    ({"steps": None, "epochs": 2, "examples": None}, "a budget in epochs needs examples"),
])
def test_a_malformed_problem_is_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        _mean_problem(**overrides)


def test_a_bad_name_or_setup_is_refused():
    with pytest.raises(ValueError, match="problem name"):
        _mean_problem("has space")
    with pytest.raises(TypeError, match="setup must be callable"):
        Problem("x", None, metric="m", goal="min", target=0.0, steps=1)
    with pytest.raises(TypeError, match="expects a descentlab.problems.Problem"):
        register("rosenbrock")


def test_problem_data_does_not_depend_on_the_blas_thread_count():
    """A sweep's driver, its forked workers and Ray's workers must see the same bits: the
    built-ins make their data on one BLAS thread whatever the process allows (a 2-thread
    product rounds differently)."""
    import hashlib
    import os
    import subprocess
    import sys

    script = ("import hashlib; from descentlab.problems.builtin import "
              "_deep_quadratic_hessian as h, _regression_data as r; "
              "print(hashlib.sha256(h().tobytes() + b''.join(a.tobytes() for a in r()))"
              ".hexdigest())")
    ours = hashlib.sha256(_deep_quadratic_hessian().tobytes()
                          + b"".join(a.tobytes() for a in _regression_data())).hexdigest()
    for threads in ("1", "2"):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
        theirs = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                                text=True, check=True).stdout.strip()
        assert theirs == ours, threads
