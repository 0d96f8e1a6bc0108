"""What the report shows, read from the results store (and nothing else, so that any folder can
be re-rendered later by ``descentlab report DIR``).

A study's *final* runs are the ones the report is about; its learning-rate search runs are
counted and their grid and choice are shown with each final run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..experiments.analysis import SweepResult, read_sweeps
from ..lab.store import FILENAME, Store
from ..lab.study import describe
from ..nn import MLPSpec


@dataclass
class Run:
    id: int
    study: str
    optimizer: str  # the study's label, e.g. "SGD+momentum"
    network: str  # describe(spec), e.g. "10x256 sigmoid normal(0.1) +residual"
    spec: dict[str, Any]
    lr: float
    lr_search: list[list[float | None]]  # (lr, validation accuracy, validation loss)
    status: str
    test_accuracy: float
    test_loss: float
    epochs_to_target: int | None
    target_accuracy: float | None
    wall_s: float
    finding: str
    message: str
    epochs: list[dict[str, Any]] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.optimizer} | {self.network}"

    @property
    def chance(self) -> float:
        """The accuracy of always guessing one class of a balanced problem."""
        return 1.0 / self.spec["outputs"]

    def series(self, key: str) -> np.ndarray:
        """A per-epoch metric from epoch 1 on, NaN where not recorded."""
        return np.array([_num(e[key]) for e in self.epochs if e["epoch"] >= 1])

    def layer_matrix(self, key: str) -> np.ndarray:
        """(epochs recorded, layers) of a per-layer statistic; row 0 is initialisation."""
        epochs = sorted({row["epoch"] for row in self.layers})
        count = max((row["layer"] for row in self.layers), default=0)
        matrix = np.full((len(epochs), count), np.nan)
        where = {e: i for i, e in enumerate(epochs)}
        for row in self.layers:
            matrix[where[row["epoch"]], row["layer"] - 1] = _num(row[key])
        return matrix

    def initial_grad_norms(self) -> np.ndarray:
        return self.layer_matrix("grad_norm")[0]

    def update_ratio_profile(self) -> np.ndarray:
        """Per layer, the median over the training epochs of the update-to-weight ratio."""
        matrix = self.layer_matrix("update_ratio")[1:]
        if matrix.size == 0 or np.all(np.isnan(matrix)):
            return np.full(matrix.shape[1], np.nan)
        return np.nanmedian(matrix, axis=0)


@dataclass
class Results:
    folder: str
    runs: list[Run]  # final runs, in the order they were started
    search_runs: int
    unfinished: int  # final runs still "running" (an interrupted study)
    sweeps: list[SweepResult] = field(default_factory=list)

    def studies(self) -> list[str]:
        return list(dict.fromkeys(run.study for run in self.runs))

    def of(self, study: str) -> list[Run]:
        return [run for run in self.runs if run.study == study]


def _num(value) -> float:
    return math.nan if value is None else float(value)


def read(store: Store) -> Results:
    """Every final run of every study in ``store``, with its epochs and layer statistics,
    and every sweep, analysed."""
    finals, searches, unfinished = [], 0, 0
    for row in store.runs():
        config = row["config"]
        if config.get("role") == "search":
            searches += 1
            continue
        if row["status"] == "running":
            unfinished += 1
            continue
        spec = config.get("network", {})
        try:
            network = describe(MLPSpec(**spec))
        except (TypeError, ValueError):
            network = row["name"]
        optimizer = config.get("optimizer", {})
        train = config.get("train", {})
        finals.append(Run(
            id=row["id"], study=row["study"],
            optimizer=optimizer.get("label", row["name"]) if isinstance(optimizer, dict)
            else str(optimizer),
            network=network, spec=spec, lr=_num(config.get("lr")),
            lr_search=config.get("lr_search", []), status=row["status"],
            test_accuracy=_num(row["test_accuracy"]), test_loss=_num(row["test_loss"]),
            epochs_to_target=row["epochs_to_target"],
            target_accuracy=train.get("target_accuracy"), wall_s=_num(row["wall_s"]),
            finding=row["finding"] or "", message=row["message"] or "",
            epochs=store.epochs(row["id"]), layers=store.layers(row["id"])))
    return Results(str(store.folder), finals, searches, unfinished, read_sweeps(store))


def read_folder(folder: str | Path) -> Results:
    """``read`` the store of ``folder``, which must hold one (a new one is never created)."""
    folder = Path(folder)
    if not (folder / FILENAME).is_file():
        raise FileNotFoundError(f"{folder} holds no {FILENAME}: run a study or a sweep into "
                                f"it first (descentlab demo --out {folder}, descentlab vanish "
                                f"or descentlab sweep)")
    with Store(folder) as store:
        return read(store)
