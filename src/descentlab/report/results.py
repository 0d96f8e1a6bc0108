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
    modules: list[dict[str, Any]] = field(default_factory=list)  # a torch model's monitor
    timesteps: list[dict[str, Any]] = field(default_factory=list)  # a recurrent network's
    # the torch lab's task (its data and loss, e.g. "cnn-digits"); "" for the NumPy lab, whose
    # studies all share one dataset
    task: str = ""

    @property
    def label(self) -> str:
        return f"{self.optimizer} | {self.network}"

    @property
    def chance(self) -> float:
        """The accuracy of always guessing one class of a balanced problem (or the chance
        level a network's description states, for a task that is not classification)."""
        return self.spec.get("chance", 1.0 / self.spec["outputs"])

    def monitored(self) -> Monitored | None:
        """The run's ``GradientMonitor`` records (a torch model's), if it has any."""
        if not self.modules:
            return None
        return Monitored(self.id, self.label, self.status, None, None, self.finding,
                         self.message, self.modules)

    def timestep_matrix(self) -> tuple[list[int], np.ndarray]:
        """The epochs recorded and (epochs, time steps) of ‖∂L/∂h_t‖."""
        epochs = sorted({row["epoch"] for row in self.timesteps})
        count = max((row["t"] for row in self.timesteps), default=0)
        matrix = np.full((len(epochs), count), np.nan)
        where = {e: i for i, e in enumerate(epochs)}
        for row in self.timesteps:
            matrix[where[row["epoch"]], row["t"] - 1] = _num(row["grad_norm"])
        return epochs, matrix


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
class Monitored:
    """A run of ``descentlab.torch.GradientMonitor``: its records, module by module."""

    id: int
    name: str
    status: str
    steps: int | None  # optimizer steps seen
    every: int | None
    finding: str
    message: str
    modules: list[dict[str, Any]]

    def matrix(self, key: str, modules: list[str] | None = None
               ) -> tuple[list[int], list[str], np.ndarray]:
        """Recorded steps, module names (in model order; ``modules`` to choose) and the
        (steps, modules) matrix of statistic ``key``, NaN where not recorded."""
        steps = sorted({row["step"] for row in self.modules})
        order = sorted({(row["position"], row["module"]) for row in self.modules})
        names = [name for _, name in order if modules is None or name in modules]
        matrix = np.full((len(steps), len(names)), np.nan)
        row_of = {s: i for i, s in enumerate(steps)}
        column_of = {n: i for i, n in enumerate(names)}
        for row in self.modules:
            if row["module"] in column_of:
                matrix[row_of[row["step"]], column_of[row["module"]]] = _num(row[key])
        return steps, names, matrix

    def having(self, key: str) -> list[str]:
        """The modules with at least one recorded value of ``key``, in model order."""
        order = sorted({(row["position"], row["module"]) for row in self.modules
                        if row[key] is not None})
        return list(dict.fromkeys(name for _, name in order))

@dataclass
class Results:
    folder: str
    runs: list[Run]  # final runs, in the order they were started
    search_runs: int
    unfinished: int  # final runs still "running" (an interrupted study)
    sweeps: list[SweepResult] = field(default_factory=list)
    monitored: list[Monitored] = field(default_factory=list)  # GradientMonitor runs

    def studies(self) -> list[str]:
        return list(dict.fromkeys(run.study for run in self.runs))

    def of(self, study: str) -> list[Run]:
        return [run for run in self.runs if run.study == study]


def _num(value) -> float:
    return math.nan if value is None else float(value)


def read(store: Store) -> Results:
    """Every final run of every study in ``store``, with its epochs and layer statistics,
    and every sweep, analysed."""
    finals, searches, unfinished, monitored = [], 0, 0, []
    for row in store.runs():
        config = row["config"]
        if config.get("role") == "search":
            searches += 1
            continue
        if config.get("role") == "monitor":
            monitored.append(Monitored(row["id"], row["name"], row["status"], row["epochs"],
                                       config.get("every"), row["finding"] or "",
                                       row["message"] or "", store.modules(row["id"])))
            continue
        if row["status"] == "running":
            unfinished += 1
            continue
        spec = config.get("network", {})
        try:  # a torch network describes itself; an nn.MLP is described from its spec
            network = spec.get("description") or describe(MLPSpec(**spec))
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
            epochs=store.epochs(row["id"]), layers=store.layers(row["id"]),
            modules=store.modules(row["id"]), timesteps=store.timesteps(row["id"]),
            task=str(config.get("task", ""))))
    return Results(str(store.folder), finals, searches, unfinished, read_sweeps(store),
                   monitored)


def read_folder(folder: str | Path) -> Results:
    """``read`` the store of ``folder``, which must hold one (a new one is never created)."""
    folder = Path(folder)
    if not (folder / FILENAME).is_file():
        raise FileNotFoundError(f"{folder} holds no {FILENAME}: run a study or a sweep into "
                                f"it first (descentlab demo --out {folder}, descentlab vanish "
                                f"or descentlab sweep)")
    with Store(folder) as store:
        return read(store)
