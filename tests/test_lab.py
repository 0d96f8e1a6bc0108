"""The lab's training loop, diagnostics and results store."""

from __future__ import annotations

import json
import math
import sqlite3

import numpy as np
import pytest

from descentlab import data, nn, optim
from descentlab.lab import Store, TrainConfig, detect, train


@pytest.fixture(scope="module")
def digits():
    return data.prepare("digits")


def net_of(depth=3, width=16, activation="tanh", init="glorot_normal", **options):
    return nn.MLP(nn.MLPSpec(64, 10, depth=depth, width=width, activation=activation,
                             init=init, **options), seed=0)


def test_detector_names_the_layers():
    finding = detect([1e-9, 2e-8, 1e-5, 0.3, 1.0])
    assert finding.kind == "vanishing" and finding.flagged
    assert "layer(s) 1-3 are below" in finding.message and "layer 5's" in finding.message
    assert detect([5e3, 1.0, 1.0]).kind == "exploding"
    assert "layer(s) 2" in detect([1.0, math.inf, 1.0]).message
    assert detect([0.5, 1.0]).kind == "healthy"


def test_a_deep_sigmoid_network_is_flagged_at_initialisation(digits):
    """Small random weights in ten sigmoid layers: the gradient shrinks towards the input
    (at least the 0.25 of sigmoid's derivative per layer), so layer 1 gets far below 1e-3 of
    the last layer's gradient."""
    net = net_of(depth=10, width=64, activation="sigmoid", init="normal")
    result = train(net, optim.SGD(net.params, lr=0.1), digits, TrainConfig(epochs=1))
    norms = [s.grad_norm for s in result.initial]
    assert result.finding == "vanishing"
    assert all(a < b for a, b in zip(norms, norms[1:], strict=False))  # shrinking to the input
    healthy = net_of(depth=3, width=64, activation="relu", init="he_normal")
    assert train(healthy, optim.SGD(healthy.params, lr=0.1), digits,
                 TrainConfig(epochs=1)).finding == "healthy"


def test_training_learns_and_records_everything(digits, tmp_path):
    net = net_of()
    with Store(tmp_path) as store:
        run = store.start_run("unit", "adam", {"optimizer": "Adam"})
        result = train(net, optim.Adam(net.params, lr=1e-2), digits,
                       TrainConfig(epochs=5, target_accuracy=0.8), store=store, run_id=run)
        assert result.status == "finished" and result.epochs == 5
        assert result.val_accuracy[-1] > 0.9 and result.test_accuracy > 0.9
        assert result.epochs_to_target is not None
        assert result.train_loss[-1] < result.train_loss[0]
        (row,) = store.runs()
        assert row["status"] == "finished" and row["test_accuracy"] == pytest.approx(
            result.test_accuracy)
        assert [e["epoch"] for e in store.epochs(run)] == list(range(6))  # 0 = initialisation
        layers = store.layers(run)
        assert len(layers) == 6 * 4  # 4 weight layers per epoch
        last = [r for r in layers if r["epoch"] == 5]
        for stats, r in zip(result.layers[-1], last, strict=True):
            assert r["grad_norm"] == pytest.approx(stats.grad_norm)
            assert r["update_ratio"] == pytest.approx(r["update_norm"] / r["weight_norm"])
            if r["layer"] < 4:  # hidden layers; the output layer has no activation (NULL)
                assert 0 <= r["inactive"] <= 1
            else:
                assert r["inactive"] is None
        exported = store.export()
    assert exported["runs"][0]["config"] == {"optimizer": "Adam"}
    assert len(exported["runs"][0]["epochs"]) == 6


def test_update_norm_is_the_last_steps_change(digits):
    """Full-batch GD with plain SGD: one step per epoch, ΔW = −lr·∂L/∂W exactly."""
    net = net_of(depth=2)
    before = [w.copy() for w in net.weights]
    result = train(net, optim.SGD(net.params, lr=0.05), digits,
                   TrainConfig(epochs=1, batch_size=None))
    for stats, w, w0 in zip(result.layers[0], net.weights, before, strict=True):
        assert stats.update_norm == pytest.approx(float(np.linalg.norm(w - w0)), rel=1e-5)
        assert stats.update_norm == pytest.approx(0.05 * stats.grad_norm, rel=1e-4)


def test_divergence_stops_the_run_and_is_recorded(digits, tmp_path):
    net = net_of(activation="relu", init="he_normal")
    with Store(tmp_path) as store:
        run = store.start_run("unit", "too fast", {})
        result = train(net, optim.SGD(net.params, lr=1e6), digits, TrainConfig(epochs=20),
                       store=store, run_id=run)
        assert result.diverged and result.epochs < 20
        row = store.runs()[0]
        assert row["status"] == "diverged"
        assert all(np.isfinite(p).all() for p in net.params)  # the bad step was not taken
        exported = json.dumps(store.export(), allow_nan=False)  # non-finite stored as null
    assert "diverged" in exported


def test_same_seed_same_batches(digits):
    results = []
    for _ in range(2):
        net = net_of()
        results.append(train(net, optim.SGD(net.params, lr=0.1), digits,
                             TrainConfig(epochs=2, seed=3)).train_loss)
    assert results[0] == results[1]


def test_store_refuses_another_schema_and_unwritable_folders(tmp_path):
    Store(tmp_path).close()
    db = sqlite3.connect(tmp_path / "results.sqlite")
    db.execute("UPDATE meta SET value='99' WHERE key='schema'")
    db.commit()
    db.close()
    with pytest.raises(ValueError, match="schema version 99"):
        Store(tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError, match="cannot write results"):
        Store(tmp_path / "file" / "sub")


def test_bad_training_settings_are_refused():
    with pytest.raises(ValueError, match="epochs must be"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="batch_size must be"):
        TrainConfig(batch_size=0)


def test_the_readme_lab_example_runs_as_written(tmp_path, monkeypatch, capsys):
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    (code,) = re.findall(r"```\n(from descentlab import data.*?)```", readme, re.S)
    monkeypatch.chdir(tmp_path)
    exec(code, {})
    assert "vanishing gradients: layer 1's gradient norm is" in capsys.readouterr().out
    assert (tmp_path / "results" / "results.sqlite").exists()
