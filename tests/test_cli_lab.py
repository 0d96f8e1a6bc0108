"""``descentlab demo``, ``vanish`` and ``report`` end to end, and their refusals."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from descentlab import cli
from descentlab.cli import main
from descentlab.lab import Store
from descentlab.lab.demo import BASELINE, OPTIMIZERS, REMEDY_OPTIMIZERS, remedies
from descentlab.lab.store import FILENAME, fresh_folder


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    """``descentlab demo --quick`` as a user runs it: a separate process."""
    folder = tmp_path_factory.mktemp("demo") / "out"
    export = folder.parent / "all.json"
    done = subprocess.run([sys.executable, "-m", "descentlab", "demo", "--quick", "--quiet",
                           "--out", str(folder), "--json", str(export)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return folder, export, done.stdout


def test_the_quick_demo_runs_every_optimizer_and_remedy(quick_demo):
    folder, export, stdout = quick_demo
    with Store(folder) as store:
        finals = [r for r in store.runs() if r["config"]["role"] == "final"]
        searches = [r for r in store.runs() if r["config"]["role"] == "search"]
    by_study = {}
    for run in finals:
        by_study.setdefault(run["study"], []).append(run["config"]["optimizer"]["label"])
    assert by_study["optimizers"] == [c.label for c in OPTIMIZERS]
    assert by_study["remedies"] == list(REMEDY_OPTIMIZERS) * len(remedies(BASELINE))
    assert len(searches) == 3 * len(finals)  # three learning rates each
    assert all(r["status"] in ("finished", "diverged") for r in finals + searches)
    assert (folder / "report.html").is_file()
    # the summary on the terminal: a row per final run, the conclusion, the report's path
    for label in ("GD", "SGD+momentum", "AdaGrad", "Adadelta"):
        assert label in stdout
    assert "Best run overall" in stdout and "report.html" in stdout and "demo took" in stdout
    exported = json.loads(export.read_text())
    assert len(exported["runs"]) == len(finals) + len(searches)
    first = exported["runs"][0]
    assert first["config"]["network"]["depth"] == 10 and first["epochs"] and first["layers"]


def test_the_demo_refuses_to_overwrite_results(quick_demo, capsys):
    folder, _, _ = quick_demo
    before = (folder / FILENAME).read_bytes()
    assert main(["demo", "--quick", "--out", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "already holds results" in err and "--overwrite" in err and "\n" == err[-1]
    assert err.count("\n") == 1
    assert (folder / FILENAME).read_bytes() == before


def test_fresh_folder(tmp_path):
    (tmp_path / FILENAME).write_text("old")
    (tmp_path / "report.html").write_text("old")
    (tmp_path / "mine.txt").write_text("kept")
    with pytest.raises(ValueError, match="already holds results"):
        fresh_folder(tmp_path)
    fresh_folder(tmp_path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]
    with pytest.raises(ValueError, match="is not a folder"):
        fresh_folder(tmp_path / "mine.txt")


def test_vanish_runs_the_grid_and_report_rerenders_it(tmp_path, capsys):
    out = tmp_path / "v"
    export = tmp_path / "v.json"
    assert main(["vanish", "--depth", "2", "3", "--width", "8", "--activation", "tanh",
                 "--init", "glorot_uniform", "--arch", "plain", "residual",
                 "--optimizers", "SGD", "adam", "--epochs", "2", "--search-epochs", "1",
                 "--quiet", "--out", str(out), "--json", str(export)]) == 0
    with Store(out) as store:
        finals = [r for r in store.runs() if r["config"]["role"] == "final"]
    assert len(finals) == 2 * 2 * 2  # depths x architectures x optimizers
    assert {(r["config"]["network"]["depth"], r["config"]["network"]["residual"])
            for r in finals} == {(2, False), (2, True), (3, False), (3, True)}
    assert {r["config"]["optimizer"]["name"] for r in finals} == {"SGD", "Adam"}
    assert all(r["config"]["train"]["epochs"] == 2 for r in finals)
    assert len(json.loads(export.read_text())["runs"]) == 8 + 8 * 3
    (out / "report.html").unlink()
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    assert (out / "report.html").is_file() and "Best run overall" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["vanish", "--optimizers", "Foo"], "unknown optimizer 'Foo'"),
    (["vanish", "--epochs", "0"], "epochs must be a positive integer"),
    (["vanish", "--target", "3"], "target_accuracy must be in (0, 1]"),
    (["vanish", "--json", "/nonexistent/dir/x.json"], "cannot write --json"),
    (["report", "/nonexistent/dir"], "holds no results.sqlite"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    out = tmp_path / "never"
    extra = ["--out", str(out)] if argv[0] == "vanish" else []
    assert main(argv + extra) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_every_lab_command_has_help(capsys):
    for command in ("demo", "vanish", "report", "trajectories"):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0
        assert "usage: descentlab " + command in capsys.readouterr().out


def test_debug_shows_the_traceback_and_internal_errors_are_one_line(tmp_path, capsys,
                                                                     monkeypatch):
    argv = ["vanish", "--optimizers", "Foo", "--out", str(tmp_path / "x")]
    assert main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(ValueError):
        main(["--debug", *argv])

    def broken(args):
        raise RuntimeError("a bug")

    parser = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: _with_command(parser(), broken))
    assert main(["optimizers"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error RuntimeError: a bug" in err
    assert "--debug" in err
    with pytest.raises(RuntimeError, match="a bug"):
        main(["--debug", "optimizers"])


def _with_command(parser, run):
    """``parser`` with the ``optimizers`` command running ``run``."""
    commands = next(a for a in parser._actions if a.dest == "command")
    commands.choices["optimizers"].set_defaults(run=run)
    return parser
