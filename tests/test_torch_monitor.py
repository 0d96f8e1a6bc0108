"""descentlab.torch.GradientMonitor: every statistic against a direct computation on the same
model (torch's own norms, a snapshot of the weights, the NumPy lab's activation measures), the
warnings, the store and the report."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from conftest import require_torch

torch = require_torch()
from descentlab.lab import Store  # noqa: E402
from descentlab.nn.activations import make_activation  # noqa: E402
from descentlab.report import read_folder, render  # noqa: E402
from descentlab.torch import GradientMonitor, GradientWarning  # noqa: E402


def deep_sigmoid(depth: int = 6, std: float = 0.1) -> torch.nn.Sequential:
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    for _ in range(depth):
        linear = torch.nn.Linear(16, 16)
        torch.nn.init.normal_(linear.weight, std=std)
        layers += [linear, torch.nn.Sigmoid()]
    return torch.nn.Sequential(*layers, torch.nn.Linear(16, 3))


def batch(rows: int = 32):
    generator = torch.Generator().manual_seed(1)
    return torch.randn(rows, 16, generator=generator), torch.randint(0, 3, (rows,),
                                                                       generator=generator)


def train(model, optimizer, steps: int, x, y, evaluate: bool = False) -> list[dict]:
    """``steps`` SGD steps; returns, per step, what a direct computation finds: gradient and
    weight norms per module before the step, the update norm, the activations seen."""
    seen = []
    for _ in range(steps):
        outputs: dict[str, torch.Tensor] = {}
        handles = [m.register_forward_hook(
            lambda module, i, o, name=name, seen=outputs: seen.__setitem__(
                name, o.detach().clone()))
            for name, m in model.named_children()]
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        for h in handles:
            h.remove()
        before = {name: [p.detach().clone() for p in m.parameters()]
                  for name, m in model.named_children()}
        grads = {name: [p.grad.clone() for p in m.parameters()]
                 for name, m in model.named_children()}
        optimizer.step()
        updates = {name: [p.detach() - b for p, b in zip(m.parameters(), before[name],
                                                         strict=True)]
                   for name, m in model.named_children()}
        seen.append({"before": before, "grads": grads, "updates": updates,
                     "outputs": outputs})
        if evaluate:  # an evaluation pass between steps must not count
            with torch.no_grad():
                model(x * 100)
    return seen


def joint_norm(tensors) -> float:
    return math.sqrt(sum(float(torch.linalg.vector_norm(t.double())) ** 2 for t in tensors))


def test_statistics_equal_a_direct_computation():
    model = deep_sigmoid()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = batch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradientWarning)
        monitor = GradientMonitor(model, every=3, optimizer=optimizer)
        truth = train(model, optimizer, 8, x, y, evaluate=True)
        monitor.close()
    assert [r["step"] for r in monitor.records] == [0, 3, 6]
    for record in monitor.records:
        direct = truth[record["step"]]
        rows = {row["module"]: row for row in record["modules"]}
        assert set(rows) == {str(i) for i in range(13)}  # 7 Linear, 6 Sigmoid; no root
        for name, row in rows.items():
            y_out = direct["outputs"][name].double()
            # float32 statistics of float32 outputs, against float64 ones
            assert row["act_mean"] == pytest.approx(float(y_out.mean()), rel=1e-6, abs=1e-9)
            assert row["act_std"] == pytest.approx(float(y_out.std(unbiased=False)), rel=1e-6)
            assert row["act_nonfinite"] == 0
            if row["kind"] == "Linear":
                assert row["grad_norm"] == pytest.approx(joint_norm(direct["grads"][name]),
                                                         rel=1e-6)
                weight = joint_norm(direct["before"][name])
                update = joint_norm(direct["updates"][name])
                assert row["weight_norm"] == pytest.approx(weight, rel=1e-6)
                assert row["update_norm"] == pytest.approx(update, rel=1e-5)
                assert row["update_ratio"] == pytest.approx(update / weight, rel=1e-5)
                assert row["grad_nonfinite"] == 0 and math.isnan(row["inactive"])
            else:  # the NumPy lab's saturation measure on the same outputs
                expected = make_activation("sigmoid").inactive_fraction(y_out.numpy())
                assert row["inactive"] == pytest.approx(expected, abs=1e-12)
                assert row["grad_norm"] is None and row["weight_norm"] is None


def test_dead_relu_units_are_counted_as_the_numpy_lab_counts_them():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(),
                                torch.nn.Linear(64, 3))
    with torch.no_grad():
        model[0].bias[:20] = -50.0  # 20 of 64 units never fire
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = batch()
    monitor = GradientMonitor(model, every=1, optimizer=optimizer, warn=False)
    truth = train(model, optimizer, 1, x, y)
    monitor.close()
    relu = {row["module"]: row for row in monitor.table()}["1"]
    expected = make_activation("relu").inactive_fraction(truth[0]["outputs"]["1"].numpy())
    assert relu["inactive"] == pytest.approx(expected) and expected >= 20 / 64


def test_vanishing_gradients_warn_once_naming_the_modules():
    model = deep_sigmoid(depth=8, std=0.1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = batch()
    with pytest.warns(GradientWarning) as caught:
        with GradientMonitor(model, every=2, optimizer=optimizer) as monitor:
            train(model, optimizer, 6, x, y)
    messages = [str(w.message) for w in caught if w.category is GradientWarning]
    assert len(messages) == 1  # the finding did not change: warned once
    assert messages[0].startswith("step 0: vanishing gradients: 0 (Linear)'s gradient norm")
    assert "16 (Linear)" in messages[0]
    # the first Linear's gradient really is that much smaller than the last's
    rows = {r["module"]: r for r in monitor.table(0)}
    assert rows["0"]["grad_norm"] / rows["16"]["grad_norm"] < 1e-3
    assert monitor.finding.kind == "vanishing"


def test_a_healthy_network_does_not_warn():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = batch()
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradientWarning)
        with GradientMonitor(model, every=1, optimizer=optimizer) as monitor:
            train(model, optimizer, 3, x, y)
    assert monitor.finding.kind == "healthy"


def test_non_finite_gradients_are_counted_and_called_exploding():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = GradientMonitor(model, every=1, optimizer=optimizer, warn=False)
    model(torch.randn(5, 4)).sum().backward()
    model[0].weight.grad[0, :3] = torch.tensor([math.inf, -math.inf, math.nan])
    optimizer.step()
    monitor.close()
    rows = {r["module"]: r for r in monitor.table()}
    assert rows["0"]["grad_nonfinite"] == 3 and rows["2"]["grad_nonfinite"] == 0
    assert monitor.finding.kind == "exploding" and "0 (Linear)" in monitor.finding.message


def test_without_an_optimizer_any_optimizer_of_the_model_is_followed():
    model, other = deep_sigmoid(depth=2), torch.nn.Linear(3, 3)
    optimizer = torch.optim.Adam(model.parameters())
    unrelated = torch.optim.SGD(other.parameters(), lr=0.1)
    x, y = batch()
    monitor = GradientMonitor(model, every=2, warn=False)
    for _ in range(4):
        train(model, optimizer, 1, x, y)
        other(torch.ones(3)).sum().backward()
        unrelated.step()  # not the model's: neither counted nor recorded
    monitor.close()
    assert monitor.steps == 4 and [r["step"] for r in monitor.records] == [0, 2]
    optimizer.step()  # after close the hooks are gone
    assert monitor.steps == 4


def test_another_models_forward_pass_in_a_recorded_step_is_not_recorded():
    model, other = deep_sigmoid(depth=2), torch.nn.Sequential(torch.nn.Linear(16, 16),
                                                               torch.nn.Tanh())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = batch()
    with GradientMonitor(model, every=1, optimizer=optimizer, warn=False) as monitor:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        other(x)  # not the model's modules: neither measured nor recorded
        optimizer.step()
    assert {r["kind"] for r in monitor.table()} == {"Linear", "Sigmoid"}
    assert {r["module"] for r in monitor.table()} == {str(i) for i in range(5)}


def test_steps_between_records_leave_no_hooks():
    model = deep_sigmoid(depth=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = batch()
    global_hooks = torch.nn.modules.module._global_forward_hooks
    before = len(global_hooks)
    monitor = GradientMonitor(model, every=10, optimizer=optimizer, warn=False)
    assert len(global_hooks) == before + 1  # armed for step 0's forward pass
    train(model, optimizer, 1, x, y)
    assert len(global_hooks) == before and all(not m._forward_hooks for m in model.modules())
    train(model, optimizer, 9, x, y)
    assert len(global_hooks) == before + 1  # armed again for step 10
    monitor.close()
    assert len(global_hooks) == before


def test_records_go_to_the_store_and_the_report(tmp_path):
    model = deep_sigmoid(depth=8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = batch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradientWarning)
        with GradientMonitor(model, every=2, optimizer=optimizer, store=tmp_path,
                             name="sigmoid8") as monitor:
            train(model, optimizer, 5, x, y)
    with Store(tmp_path) as store:
        (run,) = store.runs()
        rows = store.modules(run["id"])
    assert run["status"] == "finished" and run["finding"] == "vanishing"
    assert run["config"]["role"] == "monitor" and run["epochs"] == 5
    assert {r["step"] for r in rows} == {0, 2, 4}
    first = [r for r in rows if r["step"] == 2 and r["module"] == "0"][0]
    expected = {r["module"]: r for r in monitor.table(2)}["0"]
    assert first["grad_norm"] == pytest.approx(expected["grad_norm"], rel=1e-12)
    results = read_folder(tmp_path)
    assert not results.runs and [m.name for m in results.monitored] == ["sigmoid8"]
    steps, names, matrix = results.monitored[0].matrix("grad_norm", ["0", "16"])
    assert steps == [0, 2, 4] and names == ["0", "16"] and np.all(matrix[:, 0] < matrix[:, 1])
    html = render(results)
    assert "Monitored model “sigmoid8”" in html and "vanishing gradients: 0 (Linear)" in html


def test_the_cli_report_prints_the_finding(tmp_path, capsys):
    from descentlab.cli import main

    model = deep_sigmoid(depth=8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = batch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradientWarning)
        with GradientMonitor(model, every=2, optimizer=optimizer, store=tmp_path, name="m"):
            train(model, optimizer, 2, x, y)
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "monitored m: 2 steps (finished); vanishing gradients" in out
    assert (tmp_path / "report.html").is_file()


@pytest.mark.parametrize("kwargs, error, match", [
    ({"model": "not a module"}, TypeError, "torch.nn.Module"),
    ({"every": 0}, ValueError, "every must be a positive integer"),
    ({"optimizer": object()}, TypeError, "torch.optim.Optimizer"),
    ({"vanishing": 2.0}, ValueError, "0 < vanishing < 1 < exploding"),
])
def test_bad_arguments_are_refused(kwargs, error, match):
    arguments = {"model": deep_sigmoid(depth=1), **kwargs}
    with pytest.raises(error, match=match):
        GradientMonitor(**arguments)


def test_a_model_without_trainable_parameters_is_refused():
    model = torch.nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no parameters that require gradients"):
        GradientMonitor(model)


def test_the_readme_example_runs(tmp_path, monkeypatch):
    """The README's GradientMonitor example, as written."""
    import re
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    example = next(b for b in blocks if "GradientMonitor(" in b)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    with pytest.warns(GradientWarning):
        exec(example, namespace)
    assert namespace["monitor"].finding.kind == "vanishing"
    assert [m.name for m in read_folder(tmp_path / "monitor-run").monitored] == ["monitor"]
