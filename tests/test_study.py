"""Studies: the learning-rate search and the study's records."""

from __future__ import annotations

import json
import math

import pytest

from descentlab import data, nn
from descentlab.lab import Store
from descentlab.lab.study import OptimizerChoice, Study, choose_lr, log_grid, run_study


@pytest.fixture(scope="module")
def digits():
    return data.prepare("digits")


SPEC = nn.MLPSpec(64, 10, depth=2, width=16, activation="tanh", init="glorot_normal")


def test_log_grid():
    assert log_grid(1e-3) == (1e-5, 1e-4, 1e-3, 1e-2)
    assert log_grid(0.1, 1, 0) == (0.01, 0.1)


def test_the_search_keeps_the_best_validation_accuracy_and_never_a_diverged_run(digits):
    relu = nn.MLPSpec(64, 10, depth=2, width=16, activation="relu", init="he_normal")
    choice = OptimizerChoice("SGD", "SGD", lr_grid=(1e-4, 0.1, 1e7))
    study = Study("s", [relu], [choice], epochs=2, search_epochs=2)
    found = choose_lr(choice, relu, digits, study.config(choice, 2), net_seed=0)
    by_lr = {lr: (acc, loss) for lr, acc, loss in found.tried}
    assert math.isnan(by_lr[1e7][0])  # diverged
    assert found.lr == 0.1 and by_lr[0.1][0] > by_lr[1e-4][0]
    everything_diverges = OptimizerChoice("SGD", "SGD", lr_grid=(1e7, 1e8))
    assert choose_lr(everything_diverges, relu, digits, study.config(choice, 1), 0).lr == 1e7


def test_a_study_records_its_searches_and_runs_with_shared_starting_points(digits, tmp_path):
    choices = [OptimizerChoice("GD", "SGD", lr_grid=(0.1, 1e12), batch_size=None),
               OptimizerChoice("Adam", "Adam", lr_grid=(1e-3, 1e-2))]
    relu = nn.MLPSpec(64, 10, depth=2, width=16, activation="relu", init="he_normal")
    study = Study("unit", [relu], choices, epochs=3, search_epochs=3)
    with Store(tmp_path) as store:
        runs = run_study(study, digits, store)
        rows = store.runs("unit")
        finals = [r for r in rows if r["config"]["role"] == "final"]
        searches = [r for r in rows if r["config"]["role"] == "search"]
        assert len(finals) == 2 and len(searches) == 4
        assert next(r for r in searches if r["config"]["lr"] == 1e12)["status"] == "diverged"
        for run, row in zip(runs, finals, strict=True):
            assert row["config"]["lr"] == run.choice.lr
            recorded = row["config"]["lr_search"]
            assert len(recorded) == len(run.choice.tried) == 2
            for saved, tried in zip(recorded, run.choice.tried, strict=True):
                assert saved == [v if math.isfinite(v) else None for v in tried]
            assert row["status"] == "finished" and row["epochs"] == 3
        # the same network at initialisation for both optimizers
        first = [store.layers(r["id"]) for r in finals]
        initial = [[(x["layer"], x["grad_norm"], x["weight_norm"]) for x in rows_ if
                    x["epoch"] == 0] for rows_ in first]
        assert initial[0] == initial[1]
        exported = json.dumps(store.export(), allow_nan=False)
        gd = next(r for r in finals if r["name"].startswith("GD"))
        assert gd["config"]["lr_search"][1] == [1e12, None, None]  # diverged, recorded as such
        assert gd["config"]["lr"] == 0.1
    assert '"role": "search"' in exported
    assert runs[0].result.epochs == 3


def test_bad_optimizer_choices_are_refused():
    with pytest.raises(ValueError, match="unknown optimizer 'Adamm'"):
        OptimizerChoice("x", "Adamm", lr_grid=(1e-3,))
    with pytest.raises(ValueError, match="lr_grid"):
        OptimizerChoice("x", "Adam", {"lr": 1e-3}, lr_grid=(1e-3,))
    with pytest.raises(ValueError, match="positive learning rates"):
        OptimizerChoice("x", "Adam", lr_grid=(-1.0,))
    with pytest.raises(ValueError, match="positive learning rates"):
        OptimizerChoice("x", "Adam")
