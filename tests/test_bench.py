"""``descentlab bench``: what it measures and how it reports it (not how fast anything is)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import outputs_of_two_processes, require_torch

from descentlab.bench.configs import CONFIGS, Config, select
from descentlab.cli import main

# DESIGN.md's bytes per fp32 parameter per step (read g, read and write θ and each state array)
DESIGN_BYTES = {
    "SGD": 12, "SGD+momentum": 20, "Adagrad": 20, "RMSprop": 20, "Lion": 20, "Adam": 28,
    "AdamW": 28, "Adamax": 28, "NAdam": 28, "RAdam": 28, "Adadelta": 28,
}


def test_bytes_per_element_are_the_design_figures():
    assert {c.label: c.bytes_per_element(np.dtype(np.float32)) for c in CONFIGS} == DESIGN_BYTES
    amsgrad = Config("AMSGrad", "Adam", {"amsgrad": True})
    assert amsgrad.bytes_per_element(np.dtype(np.float32)) == 36
    assert amsgrad.bytes_per_element(np.dtype(np.float64)) == 72


def test_select_by_label_or_algorithm_and_refuse_unknown_names():
    assert [c.label for c in select(["adam", "Lion"])] == ["Adam", "Lion"]
    assert [c.label for c in select(["SGD"])] == ["SGD", "SGD+momentum"]
    with pytest.raises(ValueError, match="unknown optimizer Adamm"):
        select(["Adamm"])


def test_bench_writes_a_consistent_record(tmp_path, capsys):
    require_torch()
    out = tmp_path / "bench.json"
    code = main(["bench", "Adam", "RMSprop", "--size", "5000", "--repeats", "2", "--warmup",
                 "1", "--many", "3x100", "--threads", "1", "--json", str(out)])
    assert code == 0
    assert "triad" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["settings"]["size"] == 5000 and result["machine"]["threads"] == 1
    assert [r["optimizer"] for r in result["rows"]] == ["RMSprop", "Adam"]
    assert result["triad_gb_per_s"] > 0
    for row in result["rows"]:
        triad = row["triad_gb_per_s"] * 1e9  # measured in turns with this row's steps
        seconds = row["step_ms"] / 1e3
        moved = row["bytes_per_element"] * 5000
        assert row["gb_per_s"] == pytest.approx(moved / seconds / 1e9)
        assert row["floor_percent"] == pytest.approx(100 * moved / triad / seconds)
        assert row["many_over_one"] == pytest.approx(row["many_ms"] / row["one_ms"])
        assert row["first_call"] in ("compiled", "cache", "in memory")
        torch_ms = row["torch_ms"]
        assert torch_ms["single"] > 0 and torch_ms["foreach"] > 0
        # torch.optim has a fused CPU Adam and no fused RMSprop
        assert (torch_ms["fused"] is None) == (row["optimizer"] == "RMSprop")
        for flavour, ratio in row["torch_over_descentlab"].items():
            if ratio is not None:
                assert ratio == pytest.approx(torch_ms[flavour] / row["step_ms"])
        # descentlab.torch, the same kernels behind torch.optim's interface, timed in turns
        # with torch.optim's best on the same tensors (that pair's own torch time)
        assert row["torch_face_ms"] > 0 and row["torch_paired_ms"] > 0
        assert row["torch_best_over_face"] == pytest.approx(row["torch_paired_ms"]
                                                            / row["torch_face_ms"])
        many = row["torch_many_over_one"]  # torch's best implementation on the same two cases
        assert many["flavour"] == ("foreach" if row["optimizer"] == "RMSprop" else "fused")
        assert many["ratio"] == pytest.approx(many["many_ms"] / many["one_ms"])


@pytest.mark.parametrize("label", ["SGD+momentum", "Adagrad", "RMSprop", "Adadelta", "Adam"])
def test_the_face_is_timed_on_torchs_own_tensors(label):
    """torch.optim's best and the face step one set of tensors: the parameters, and each state
    tensor (after the first step, the face's are torch.optim's), so both steps change them."""
    torch = require_torch()
    from descentlab.bench.steps import torch_and_face_steps

    (config,) = [c for c in CONFIGS if c.label == label]
    theirs, face = torch_and_face_steps(config, [64], np.dtype(np.float32))
    torch_optimizer, face_optimizer = theirs.__self__, face.__self__
    (p,) = torch_optimizer.param_groups[0]["params"]
    assert face_optimizer.param_groups[0]["params"][0] is p
    state = {k: v for k, v in torch_optimizer.state[p].items() if torch.is_tensor(v)
             and v.shape == p.shape}
    assert state and all(face_optimizer.state[p][k] is v for k, v in state.items())
    for step in (face, theirs):  # each step moves the one parameter and the shared state
        before = p.detach().clone(), {k: v.clone() for k, v in state.items()}
        step()
        assert not torch.equal(p.detach(), before[0])
        assert all(not torch.equal(v, before[1][k]) for k, v in state.items())


def test_adopting_state_refuses_other_state_keys():
    torch = require_torch()
    from descentlab.bench.steps import adopt_state
    from descentlab.torch import Adam

    p = torch.nn.Parameter(torch.ones(4))
    p.grad = torch.ones(4)
    with pytest.raises(RuntimeError, match="keeps other state tensors"):
        adopt_state(torch.optim.Adam([p], amsgrad=True), [Adam([p])])


@pytest.mark.parametrize("label, fused", [("Adagrad", True), ("SGD+momentum", True),
                                          ("RMSprop", None), ("Lion", None)])
def test_the_face_is_timed_with_the_flag_of_torchs_fused_kernel(label, fused):
    """Where torch.optim has a fused kernel (its fastest), the face runs with fused=True, the
    rounding of that kernel; elsewhere with torch.optim's signature as it is."""
    require_torch()
    from descentlab.bench.steps import torch_face_step

    (config,) = [c for c in CONFIGS if c.label == label]
    step = torch_face_step(config, [16], np.dtype(np.float32))
    if label == "Lion":  # not in torch.optim: the face has it, with no implementation flags
        assert "fused" not in step.__self__.param_groups[0]
        return
    assert step.__self__.param_groups[0].get("fused") is fused


def test_bench_without_torch_and_lion(tmp_path):
    out = tmp_path / "bench.json"
    assert main(["bench", "Lion", "--size", "1000", "--repeats", "1", "--many", "2x10",
                 "--no-torch", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["optimizer"] == "Lion" and "torch_ms" not in row
    assert json.loads(out.read_text())["settings"]["nonfinite"] == "raise"


def test_bench_cold_compiles_what_the_cache_holds(tmp_path):
    """``--cold`` points Numba at an empty cache even after Numba was imported: the second run
    compiles the job that the first one stored in the cache it was given."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    kinds = []
    for extra in ([], ["--cold"]):
        out = tmp_path / f"bench{len(kinds)}.json"
        subprocess.run([sys.executable, "-m", "descentlab", "bench", "Lion", "--size", "100",
                        "--repeats", "1", "--warmup", "0", "--many", "2x10", "--no-torch",
                        "--json", str(out), *extra], env=env, check=True, capture_output=True)
        kinds.append(json.loads(out.read_text())["rows"][0]["first_call"])
    assert kinds[0] in ("compiled", "cache")
    assert kinds[1] == "compiled", kinds


def test_bench_passes_the_nonfinite_mode_to_the_optimizers(monkeypatch):
    import importlib

    run = importlib.import_module("descentlab.bench.run")  # the module, not the function
    seen = []
    real = run.descentlab_step

    def spy(config, sizes, dtype, nonfinite="raise"):
        step = real(config, sizes, dtype, nonfinite)
        seen.append(step.__closure__ and [c.cell_contents for c in step.__closure__
                                          if hasattr(c.cell_contents, "nonfinite")][0].nonfinite)
        return step

    monkeypatch.setattr(run, "descentlab_step", spy)
    assert main(["bench", "SGD", "--size", "100", "--repeats", "1", "--warmup", "0",
                 "--many", "2x10", "--no-torch", "--nonfinite", "off"]) == 0
    assert seen and set(seen) == {"off"}  # every row: the big array, many and one


@pytest.mark.parametrize("argv, message", [
    (["bench", "Adamm"], "unknown optimizer Adamm"),
    (["bench", "--size", "0"], "--size must be at least 1"),
    (["bench", "--threads", "0"], "--threads must be at least 1"),
    (["bench", "--json", "/nonexistent-folder/out.json"], "cannot write --json"),
])
def test_bench_refuses_bad_arguments_in_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bench_many_must_be_count_x_size(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--many", "1000"])
    assert exit_info.value.code == 2
    assert "expected COUNTxSIZE" in capsys.readouterr().err


def test_bench_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--help"])
    assert exit_info.value.code == 0
    assert "STREAM triad" in capsys.readouterr().out


def test_first_call_tells_compiling_from_loading_the_cache(tmp_path):
    """In a fresh process the first step compiles (empty cache) or loads (a second process)."""
    script = ("import numpy as np\n"
              "from descentlab.bench.configs import select\n"
              "from descentlab.bench.steps import first_call\n"
              "print(first_call(select(['Adamax'])[0], np.dtype(np.float32))[1])\n")
    kinds = outputs_of_two_processes(script, tmp_path)
    assert kinds == [["compiled"], ["cache"]]


def test_mirrored_makes_every_step_twice_in_mirrored_order_and_averages_each_turn(monkeypatch):
    """Each implementation's memory is allocated once early and once late (``mirrored``); a
    turn's time for it is the mean of its two steps' times in that turn."""
    from descentlab.bench import steps

    made: list[str] = []

    def maker(name):
        def make():
            made.append(name)
            return lambda: None
        return make

    fake = {("a", 0): [1.0, 5.0], ("b", 0): [2.0, 2.0], ("b", 1): [4.0, 2.0],
            ("a", 1): [3.0, 1.0]}

    def interleaved(steps_, repeats, warmup):
        assert list(steps_) == [("a", 0), ("b", 0), ("none", 0), ("none", 1), ("b", 1),
                                ("a", 1)]
        return {key: (steps.Timing(0.0, fake[key]) if key in fake else None) for key in steps_}

    monkeypatch.setattr(steps, "interleaved", interleaved)
    timings = steps.mirrored({"a": maker("a"), "b": maker("b"), "none": lambda: None}, 2, 0)
    assert made == ["a", "b", "b", "a"]
    assert timings["a"].times_s == [2.0, 3.0] and timings["a"].median_s == 2.5
    assert timings["b"].times_s == [3.0, 2.0] and timings["b"].median_s == 2.5
    assert timings["none"] is None
