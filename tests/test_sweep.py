"""Sweeps: the protocol, bit-identical results whatever runs them (1 or 2 workers, Ray, a rerun
after SIGKILL), resuming, users' problems, failures, and the report."""

from __future__ import annotations

import math
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from descentlab import problems
from descentlab.cli import main
from descentlab.experiments import load, run_sweep
from descentlab.experiments.analysis import read_sweeps, recommend
from descentlab.lab import Store
from descentlab.report import write_report

SMALL = """
name = "small"
problems = ["quadratic-deep", "linear-regression"]
trials = 5
seeds = 3

[optimizers.SGD]
lr = { min = 1e-3, max = 1.0, scaling = "log" }

[optimizers.Adam]
lr = { min = 1e-4, max = 3e-1, scaling = "log" }
"""


def _config(tmp_path: Path, text: str = SMALL, name: str = "sweep.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# the columns that must not depend on who ran a run or when (times are measured, not computed)
RESULT = ("problem", "optimizer", "phase", "trial", "seed", "hparams", "status", "steps",
          "final_metric", "best_metric", "train_loss", "test_metric", "steps_to_target",
          "message")


def _snapshot(folder: Path, sweep: str = "small") -> dict:
    with Store(folder) as store:
        return {r["key"]: ({k: r[k] for k in RESULT},
                           [(p["step"], p["train_loss"], p["metric"])
                            for p in store.sweep_curve(r["id"])])
                for r in store.sweep_runs(sweep)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The small sweep, run once, uninterrupted, with one worker."""
    folder = tmp_path_factory.mktemp("reference")
    config = load(_config(folder))
    summary = run_sweep(config, folder / "out", workers=1)
    return config, summary, folder / "out"


def test_the_protocol_tunes_then_reruns_the_best_setting(reference):
    config, summary, folder = reference
    assert summary.total == summary.ran == 2 * 2 * (5 + 3) and summary.failed == []
    with Store(folder) as store:
        rows = store.sweep_runs("small")
        problem_info = store.sweeps()[0]["problems"]
    assert len(rows) == summary.total and len({r["key"] for r in rows}) == len(rows)
    for problem in config.problems:
        goal = problem_info[problem]["goal"]
        for label in ("SGD", "Adam"):
            tune = [r for r in rows if r["problem"] == problem and r["optimizer"] == label
                    and r["phase"] == "tune"]
            final = [r for r in rows if r["problem"] == problem and r["optimizer"] == label
                     and r["phase"] == "final"]
            assert len(tune) == 5 and {r["seed"] for r in tune} == {0}
            assert sorted(r["seed"] for r in final) == [1, 2, 3]
            # the chosen setting is the best final metric among the finished trials
            usable = [r for r in tune if r["status"] == "finished"]
            pick = (max if goal == "max" else min)(usable, key=lambda r: r["final_metric"])
            assert all(r["hparams"] == pick["hparams"] for r in final)
            # the learning rates are the log-range's quasi-random points: all different
            assert len({r["hparams"]["lr"] for r in tune}) == 5


def test_a_diverged_trial_is_recorded_never_chosen(reference):
    _, _, folder = reference
    with Store(folder) as store:
        rows = store.sweep_runs("small")
    diverged = [r for r in rows if r["status"] == "diverged"]
    # SGD with lr up to 1 diverges on the quadratic, whose largest eigenvalue is above 30
    assert any(r["problem"] == "quadratic-deep" and r["optimizer"] == "SGD" for r in diverged)
    for r in diverged:
        assert r["final_metric"] is None and r["message"]
        assert r["phase"] == "tune"


def test_steps_and_time_to_target_come_from_the_curve(reference):
    _, _, folder = reference
    with Store(folder) as store:
        target = {name: info["target"] for name, info in store.sweeps()[0]["problems"].items()}
        for row in store.sweep_runs("small"):
            curve = store.sweep_curve(row["id"])
            hits = [p for p in curve if p["metric"] is not None
                    and p["metric"] <= target[row["problem"]]]  # both problems minimise
            if hits:
                assert row["steps_to_target"] == hits[0]["step"]
                assert row["time_to_target"] == hits[0]["elapsed_s"]
            else:
                assert row["steps_to_target"] is None and row["time_to_target"] is None


def test_two_workers_give_bit_identical_results(reference, tmp_path):
    config, _, folder = reference
    run_sweep(config, tmp_path / "two", workers=2)
    assert _snapshot(tmp_path / "two") == _snapshot(folder)


def test_the_same_configuration_twice_is_bit_identical(reference, tmp_path):
    config, _, folder = reference
    run_sweep(config, tmp_path / "again", workers=1)
    assert _snapshot(tmp_path / "again") == _snapshot(folder)


def test_a_rerun_of_a_finished_sweep_runs_nothing(reference, tmp_path):
    config, _, folder = reference
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    summary = run_sweep(config, copy, workers=1)
    assert summary.ran == 0 and summary.kept == summary.total
    assert _snapshot(copy) == _snapshot(folder)


def test_another_configuration_in_the_same_folder_is_refused(reference, tmp_path, capsys):
    _, _, folder = reference
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    changed = _config(tmp_path, SMALL.replace("seeds = 3", "seeds = 4"))
    before = _snapshot(copy)
    assert main(["sweep", str(changed), "--out", str(copy), "--quiet", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "holds a sweep named 'small' with another configuration" in err
    assert _snapshot(copy) == before
    # --overwrite replaces the old results
    assert main(["sweep", str(changed), "--out", str(copy), "--quiet", "--no-report",
                 "--overwrite"]) == 0
    assert len(_snapshot(copy)) == 2 * 2 * (5 + 4)


KILL = SMALL.replace('["quadratic-deep", "linear-regression"]',
                     '["logreg-digits", "quadratic-deep"]').replace("trials = 5", "trials = 8")


def test_a_sweep_killed_midway_resumes_to_the_uninterrupted_result(tmp_path):
    config_path = _config(tmp_path, KILL)
    config = load(config_path)
    total = 2 * 2 * (8 + 3)
    command = [sys.executable, "-m", "descentlab", "sweep", str(config_path), "--out",
               str(tmp_path / "killed"), "--workers", "2", "--quiet", "--no-report"]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    database = tmp_path / "killed" / "results.sqlite"
    deadline = time.monotonic() + 120
    finished = 0
    while time.monotonic() < deadline and process.poll() is None:
        if database.exists():
            try:
                with sqlite3.connect(database) as db:
                    finished = db.execute("SELECT COUNT(*) FROM sweep_runs WHERE status != "
                                          "'running'").fetchone()[0]
            except sqlite3.OperationalError:  # the tables are not there yet
                finished = 0
        if finished >= 10:
            break
        time.sleep(0.02)
    assert process.poll() is None, process.stderr.read().decode()
    os.killpg(process.pid, signal.SIGKILL)  # the driver and its workers, as a crash would
    process.wait()
    interrupted = _snapshot(tmp_path / "killed")
    assert 10 <= sum(r[0]["status"] != "running" for r in interrupted.values()) < total

    summary = run_sweep(config, tmp_path / "killed", workers=2)
    assert summary.kept >= 10 and summary.kept + summary.ran == total
    run_sweep(config, tmp_path / "whole", workers=2)
    resumed = _snapshot(tmp_path / "killed")
    assert len(resumed) == total
    assert resumed == _snapshot(tmp_path / "whole")
    # what was finished before the kill was kept as it was
    for key, (row, curve) in interrupted.items():
        if row["status"] != "running":
            assert resumed[key] == (row, curve)


# -- problems from users --------------------------------------------------------------------------

USER_PROBLEM = '''
import numpy as np
from descentlab.problems import Model, Problem, register

def setup(seed):
    w = np.random.default_rng(seed).standard_normal(3)
    target = np.array([1.0, -2.0, 0.5])

    def loss_and_grad(rows):
        d = w - target
        return float(d @ d / 2), [d.copy()]

    return Model([w], loss_and_grad, lambda: float(np.abs(w - target).max()))

register(Problem("user-bowl", setup, metric="max error", goal="min", target=1e-3, steps=100,
                 eval_every=10), replace=True)

def broken(seed):
    w = np.zeros(2)

    def loss_and_grad(rows):
        raise RuntimeError("the user's gradient is broken")

    return Model([w], loss_and_grad, lambda: 0.0)

register(Problem("user-broken", broken, metric="m", goal="min", target=0.0, steps=5),
         replace=True)
'''


def test_a_users_problem_file_runs_in_the_workers(tmp_path, capsys):
    (tmp_path / "mine.py").write_text(USER_PROBLEM)
    config = _config(tmp_path, """
        name = "user"
        problems = ["user-bowl"]
        import = ["mine.py"]
        trials = 4
        seeds = 2
        [optimizers.SGD]
        lr = [0.01, 0.1, 0.5, 1.0]
    """)
    exported = tmp_path / "all.json"
    assert main(["sweep", str(config), "--out", str(tmp_path / "out"), "--workers", "2",
                 "--quiet", "--no-report", "--json", str(exported)]) == 0
    with Store(tmp_path / "out") as store:
        rows = store.sweep_runs("user")
    assert len(rows) == 6 and all(r["status"] == "finished" for r in rows)
    # --json exports the sweep: its configuration, problems, and each run with its curve
    import json

    (sweep,) = json.loads(exported.read_text())["sweeps"]
    assert sweep["name"] == "user" and sweep["problems"]["user-bowl"]["target"] == 1e-3
    assert len(sweep["runs"]) == 6
    assert all(len(r["curve"]) == 11 for r in sweep["runs"])  # step 0 and every 10 of 100
    # gradient descent on ½‖w − t‖² shrinks the error by |1 − lr| per step, exactly
    import numpy as np

    start = np.random.default_rng(0).standard_normal(3) - np.array([1.0, -2.0, 0.5])
    slow = next(r for r in rows if r["phase"] == "tune" and r["hparams"]["lr"] == 0.01)
    assert slow["final_metric"] == pytest.approx(np.abs(start).max() * 0.99 ** 100, rel=1e-9)
    assert slow["steps_to_target"] is None
    # lr 0.5 and 1 both end at 0 error; the tie goes to the earlier trial
    finals = [r for r in rows if r["phase"] == "final"]
    assert all(r["hparams"]["lr"] == 0.5 and r["final_metric"] == 0.0 for r in finals)
    assert "On user-bowl, SGD did best" in capsys.readouterr().out


def test_a_run_that_raises_is_recorded_as_failed_and_retried(tmp_path, capsys):
    (tmp_path / "mine.py").write_text(USER_PROBLEM)
    config = _config(tmp_path, """
        name = "broken"
        problems = ["user-broken"]
        import = ["mine.py"]
        trials = 2
        seeds = 2
        [optimizers.SGD]
        lr = [0.01, 0.1]
    """)
    out = tmp_path / "out"
    assert main(["sweep", str(config), "--out", str(out), "--quiet", "--no-report"]) == 1
    err = capsys.readouterr().err
    assert "2 run(s) raised an error" in err and "the user's gradient is broken" in err
    with Store(out) as store:
        rows = store.sweep_runs("broken")
    # no setting is usable, so no finals; the failures are recorded with their message
    assert [r["status"] for r in rows] == ["failed", "failed"]
    assert "RuntimeError: the user's gradient is broken" in rows[0]["message"]
    # a rerun retries them (and they fail again, deterministically)
    assert main(["sweep", str(config), "--out", str(out), "--quiet", "--no-report"]) == 1
    assert "2 run(s) raised an error" in capsys.readouterr().err


def test_an_unwritable_output_folder_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["sweep", str(_config(tmp_path)), "--out", str(blocker), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists and is not a folder" in err[0]


# -- Ray ------------------------------------------------------------------------------------------

def _require_ray():
    if os.environ.get("DESCENTLAB_REQUIRE_RAY") == "1":
        import ray  # an ImportError fails the test, as it should in CI

        return ray
    return pytest.importorskip("ray", reason="ray is not installed (pip install "
                                             "'descentlab[ray]')")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_cluster(tmp_path):
    """A local Ray cluster of 2 CPUs, started as a user would (ray start), stopped after."""
    _require_ray()
    ray_cli = Path(sys.executable).parent / "ray"
    port = _free_port()
    started = subprocess.run(
        [str(ray_cli), "start", "--head", f"--port={port}", "--num-cpus=2",
         "--include-dashboard=false", "--disable-usage-stats"],
        capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stderr
    try:
        yield "auto"
    finally:
        subprocess.run([str(ray_cli), "stop", "--force"], capture_output=True, timeout=120)


def test_a_sweep_on_ray_equals_the_local_pool(reference, ray_cluster, tmp_path):
    config, _, folder = reference
    summary = run_sweep(config, tmp_path / "ray", ray=ray_cluster)
    assert summary.ran == summary.total and summary.failed == []
    assert _snapshot(tmp_path / "ray") == _snapshot(folder)


def test_a_missing_cluster_is_one_line(tmp_path, capsys):
    _require_ray()
    port = _free_port()
    assert main(["sweep", str(_config(tmp_path)), "--out", str(tmp_path / "o"), "--quiet",
                 "--ray", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot connect to the Ray cluster" in err[0]


# -- analysis and report -----------------------------------------------------------------------

def test_the_recommendation_is_worded_from_the_numbers(reference):
    _, _, folder = reference
    with Store(folder) as store:
        sweep = read_sweeps(store)[0]
    for problem in sweep.problems:
        best = problem.entries[0]
        others = problem.entries[1:]
        # the ranking is by median final metric over the finished seeds (both minimise)
        assert all(best.median <= e.median or math.isnan(e.median) for e in others)
        text = recommend(problem)
        assert text.startswith(f"On {problem.name}, {best.optimizer} did best: median "
                               f"{problem.metric} {best.median:.3g}")
        good, trials, _ = best.sensitivity()
        assert f"{best.optimizer} {good} of {trials}" in text


def test_the_performance_profile_counts_problems_within_tau(reference):
    import numpy as np

    _, _, folder = reference
    with Store(folder) as store:
        sweep = read_sweeps(store)[0]
    ratios = {o: [] for o in sweep.optimizers}
    for problem in sweep.problems:
        times = {e.optimizer: e.time_to_target for e in problem.entries}
        best = min(times.values())
        for o in sweep.optimizers:
            ratios[o].append(times[o] / best if math.isfinite(best) else math.inf)
    profile = sweep.profile(np.array([1.0, 3.0, 1e9]))
    for o in sweep.optimizers:
        expected = [sum(r <= tau for r in ratios[o]) / 2 for tau in (1.0, 3.0, 1e9)]
        assert list(profile[o]) == expected
    # at τ = 1 only the fastest counts: the fractions add up to the problems someone solved
    solved = sum(any(math.isfinite(e.time_to_target) for e in p.entries)
                 for p in sweep.problems)
    assert sum(profile[o][0] for o in sweep.optimizers) >= solved / 2


HOSTILE = "<script>alert(1)</script>"


def test_the_sweep_report_renders_escaped_in_chromium(tmp_path):
    config = _config(tmp_path, f"""
        name = "{HOSTILE}"
        problems = ["quadratic-deep", "rosenbrock"]
        trials = 3
        seeds = 2
        [optimizers."{HOSTILE}"]
        optimizer = "Adam"
        lr = {{ min = 1e-3, max = 1e-1, scaling = "log" }}
        [optimizers.SGD]
        lr = {{ min = 1e-4, max = 1e-2, scaling = "log" }}
    """)
    out = tmp_path / "out"
    assert main(["sweep", str(config), "--out", str(out), "--quiet"]) == 0
    html = (out / "report.html").read_text()
    assert "<script" not in html.lower() and "&lt;script&gt;" in html
    import browser

    page = browser.required().open_page((out / "report.html").as_uri())
    assert len(page.images) == 2 * 2 + 1  # per problem: curves and sensitivity; the profile
    for image in page.images:
        assert image["complete"] and image["naturalWidth"] > 0
    assert page.errors == [] and page.dialogs == []


def test_report_rerenders_a_sweep_folder(reference, tmp_path, capsys):
    _, _, folder = reference
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    assert main(["report", str(copy)]) == 0
    out = capsys.readouterr().out
    assert "On quadratic-deep" in out and (copy / "report.html").exists()
    assert write_report(copy).read_text().count("<h3") == 3  # two problems, the profile


def test_problems_lists_the_registry(capsys):
    assert main(["problems"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in problems.names())
