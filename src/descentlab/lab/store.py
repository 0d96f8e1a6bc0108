"""The results store: one SQLite database per output folder, written as runs go.

Tables (``descentlab report`` and ``--json`` read only these):

- ``runs``: one row per training run, inserted when it starts (status ``running``) and
  completed when it ends (``finished`` or ``diverged``): its configuration as JSON, wall time,
  test metrics, epochs to the target accuracy, the vanishing/exploding finding at
  initialisation. A ``GradientMonitor``'s own run (configuration role ``monitor``) puts the
  optimizer steps it saw in ``epochs`` and its last finding in ``finding``.
- ``epochs``: per run and epoch, training loss, validation loss and accuracy, elapsed time.
  Epoch 0 is the network at initialisation.
- ``layers``: per run, epoch and layer, the statistics of ``diagnostics.LayerStats``.
- ``sweeps``: one row per sweep (``descentlab sweep``): its name and configuration, with the
  problems' metrics and targets, so that a report needs no registry.
- ``sweep_runs``: one row per sweep run, keyed by the sweep and a key naming the problem,
  optimizer, phase (tune or final) and trial: inserted when the run starts (``running``),
  completed in one transaction with its curve when it ends (``finished``, ``diverged`` or
  ``failed``). A rerun of the sweep keeps finished and diverged runs and redoes the others.
- ``sweep_curves``: per sweep run and evaluation, the step, the mean training loss since the
  last evaluation, the validation metric and the training time so far.
- ``modules``: per run, recorded step and module of a torch model, what
  ``descentlab.torch.GradientMonitor`` measured: gradient, weight and update norms, activation
  statistics, non-finite counts. ``position`` orders the modules as the model registers them.
- ``timesteps``: per run, epoch and time step t of a recurrent network, the norm of the loss's
  gradient with respect to the hidden state h_t (the lab's RNN and LSTM on the adding problem).

Only one process writes (the study's or the sweep's driver); workers return results to it.
Numbers that are not finite (a diverged loss) are stored as NULL, SQLite's only choice, and
exported to JSON as null. Writes are committed as they happen, so an interrupted study keeps
every epoch it finished. WAL mode lets a reader (a report) open the file while a study writes.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from .diagnostics import LayerStats

# 2 added the sweep tables, 3 the modules and timesteps tables; an older store is upgraded in
# place (its new tables are created empty)
SCHEMA_VERSION = 3
FILENAME = "results.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    study TEXT NOT NULL,
    name TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    started REAL NOT NULL,
    wall_s REAL,
    epochs INTEGER,
    test_loss REAL,
    test_accuracy REAL,
    epochs_to_target INTEGER,
    finding TEXT,
    message TEXT
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    epoch INTEGER NOT NULL,
    train_loss REAL,
    val_loss REAL,
    val_accuracy REAL,
    elapsed_s REAL,
    PRIMARY KEY (run_id, epoch)
);
CREATE TABLE IF NOT EXISTS layers (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    epoch INTEGER NOT NULL,
    layer INTEGER NOT NULL,
    grad_norm REAL,
    weight_norm REAL,
    update_norm REAL,
    update_ratio REAL,
    inactive REAL,
    PRIMARY KEY (run_id, epoch, layer)
);
CREATE TABLE IF NOT EXISTS sweeps (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    problems TEXT NOT NULL,
    started REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sweep_runs (
    id INTEGER PRIMARY KEY,
    sweep TEXT NOT NULL REFERENCES sweeps(name),
    key TEXT NOT NULL,
    problem TEXT NOT NULL,
    optimizer TEXT NOT NULL,
    phase TEXT NOT NULL,
    trial INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    hparams TEXT NOT NULL,
    status TEXT NOT NULL,
    started REAL NOT NULL,
    wall_s REAL,
    steps INTEGER,
    final_metric REAL,
    best_metric REAL,
    train_loss REAL,
    test_metric REAL,
    steps_to_target INTEGER,
    time_to_target REAL,
    message TEXT,
    UNIQUE (sweep, key)
);
CREATE TABLE IF NOT EXISTS sweep_curves (
    run_id INTEGER NOT NULL REFERENCES sweep_runs(id),
    step INTEGER NOT NULL,
    train_loss REAL,
    metric REAL,
    elapsed_s REAL,
    PRIMARY KEY (run_id, step)
);
CREATE TABLE IF NOT EXISTS modules (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    step INTEGER NOT NULL,
    position INTEGER NOT NULL,
    module TEXT NOT NULL,
    kind TEXT NOT NULL,
    grad_norm REAL,
    weight_norm REAL,
    update_norm REAL,
    update_ratio REAL,
    act_mean REAL,
    act_std REAL,
    inactive REAL,
    grad_nonfinite INTEGER,
    act_nonfinite INTEGER,
    PRIMARY KEY (run_id, step, position)
);
CREATE TABLE IF NOT EXISTS timesteps (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    epoch INTEGER NOT NULL,
    t INTEGER NOT NULL,
    grad_norm REAL,
    PRIMARY KEY (run_id, epoch, t)
);
"""

# a module record's columns after (run_id, step), in the order ``add_modules`` writes them
MODULE_COLUMNS = ("position", "module", "kind", "grad_norm", "weight_norm", "update_norm",
                  "update_ratio", "act_mean", "act_std", "inactive", "grad_nonfinite",
                  "act_nonfinite")

# a sweep run's summary columns, in the order ``finish_sweep_run`` writes them
SWEEP_RESULT = ("wall_s", "steps", "final_metric", "best_metric", "train_loss", "test_metric",
                "steps_to_target", "time_to_target", "message")


def fresh_folder(folder: str | Path, overwrite: bool = False) -> Path:
    """Make ``folder`` ready for a new study: created if needed, and holding no results.

    A folder that already holds a results store is refused, so that nothing is lost, unless
    ``overwrite``, which deletes the store and the report first.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"output folder {folder} exists and is not a folder")
    database = folder / FILENAME
    if database.exists():
        if not overwrite:
            raise ValueError(f"{folder} already holds results ({FILENAME}); choose another "
                             f"folder or pass --overwrite to replace them")
        for name in (FILENAME, FILENAME + "-wal", FILENAME + "-shm", "report.html"):
            (folder / name).unlink(missing_ok=True)
    return writable_folder(folder)


def writable_folder(folder: str | Path) -> Path:
    """``folder``, created if needed; refused if it cannot be written."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"output folder {folder} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create output folder {folder}: {exc.strerror}") from exc
    if not os.access(folder, os.W_OK):
        raise ValueError(f"cannot write to output folder {folder}")
    return folder


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


class Store:
    """The database ``FILENAME`` in ``folder`` (created if needed)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.folder / FILENAME)
        except (OSError, sqlite3.Error) as exc:
            raise OSError(f"cannot write results to {self.folder}: {exc}") from exc
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)
        row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            self.db.commit()
        elif row[0] in ("1", "2"):  # the newer tables were just created
            self.db.execute("UPDATE meta SET value = ? WHERE key = 'schema'",
                            (str(SCHEMA_VERSION),))
            self.db.commit()
        elif int(row[0]) != SCHEMA_VERSION:
            raise ValueError(f"{self.folder / FILENAME} has schema version {row[0]}; this "
                             f"descentlab reads version {SCHEMA_VERSION}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------

    def start_run(self, study: str, name: str, config: dict[str, Any]) -> int:
        cursor = self.db.execute(
            "INSERT INTO runs (study, name, config, status, started) VALUES (?, ?, ?, ?, ?)",
            (study, name, json.dumps(config, sort_keys=True), "running", time.time()))
        self.db.commit()
        return int(cursor.lastrowid)

    def add_epoch(self, run_id: int, epoch: int, train_loss: float | None,
                  val_loss: float | None, val_accuracy: float | None, elapsed_s: float,
                  layers: list[LayerStats]) -> None:
        self.db.execute("INSERT OR REPLACE INTO epochs VALUES (?, ?, ?, ?, ?, ?)",
                        (run_id, epoch, _finite(train_loss), _finite(val_loss),
                         _finite(val_accuracy), elapsed_s))
        self.db.executemany(
            "INSERT OR REPLACE INTO layers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(run_id, epoch, s.layer, _finite(s.grad_norm), _finite(s.weight_norm),
              _finite(s.update_norm), _finite(s.update_ratio), _finite(s.inactive))
             for s in layers])
        self.db.commit()

    def finish_run(self, run_id: int, status: str, **summary: Any) -> None:
        allowed = {"wall_s", "epochs", "test_loss", "test_accuracy", "epochs_to_target",
                   "finding", "message"}
        unknown = set(summary) - allowed
        if unknown:
            raise ValueError(f"unknown run summary fields {sorted(unknown)}")
        values = {k: (_finite(v) if isinstance(v, float) else v) for k, v in summary.items()}
        assignments = ", ".join(f"{k} = ?" for k in ["status", *values])
        self.db.execute(f"UPDATE runs SET {assignments} WHERE id = ?",
                        (status, *values.values(), run_id))
        self.db.commit()

    def add_modules(self, run_id: int, records: list[tuple[int, list[dict[str, Any]]]]
                    ) -> None:
        """Recorded steps of a monitored torch model, in one transaction: per step, a dict
        per module with the keys of ``MODULE_COLUMNS`` (a missing statistic is None)."""
        marks = ", ".join("?" * (2 + len(MODULE_COLUMNS)))
        with self.db:
            self.db.executemany(
                f"INSERT OR REPLACE INTO modules VALUES ({marks})",
                [(run_id, step, *(_finite(v) if isinstance(v, float) else v
                                  for v in (row.get(k) for k in MODULE_COLUMNS)))
                 for step, rows in records for row in rows])

    def add_timesteps(self, run_id: int, epoch: int, grad_norms: list[float]) -> None:
        """‖∂L/∂h_t‖ for t = 1, 2, ... of a recurrent network at ``epoch``."""
        self.db.executemany("INSERT OR REPLACE INTO timesteps VALUES (?, ?, ?, ?)",
                            [(run_id, epoch, t, _finite(g))
                             for t, g in enumerate(grad_norms, start=1)])
        self.db.commit()

    # -- sweeps --------------------------------------------------------------------------------

    def open_sweep(self, name: str, config: dict[str, Any], problems: dict[str, Any]) -> int:
        """Record sweep ``name`` or, if the store holds it already with the same configuration,
        prepare to resume it: runs that did not finish (``running`` after a crash, or
        ``failed``) are deleted with their curves, to be redone. Returns how many were.

        A sweep of that name with another configuration is refused: its results would mix.
        """
        text = json.dumps(config, sort_keys=True)
        row = self.db.execute("SELECT config FROM sweeps WHERE name = ?", (name,)).fetchone()
        if row is not None and row[0] != text:
            raise ValueError(f"{self.folder / FILENAME} holds a sweep named {name!r} with "
                             "another configuration; rerun it with the same configuration to "
                             "resume it, or choose another --out or name")
        with self.db:  # one transaction
            if row is None:
                self.db.execute("INSERT INTO sweeps VALUES (?, ?, ?, ?)",
                                (name, text, json.dumps(problems, sort_keys=True),
                                 time.time()))
            stale = "SELECT id FROM sweep_runs WHERE sweep = ? AND status IN ('running', " \
                    "'failed')"
            self.db.execute(f"DELETE FROM sweep_curves WHERE run_id IN ({stale})", (name,))
            return self.db.execute("DELETE FROM sweep_runs WHERE sweep = ? AND status IN "
                                   "('running', 'failed')", (name,)).rowcount

    def start_sweep_run(self, sweep: str, key: str, problem: str, optimizer: str, phase: str,
                        trial: int, seed: int, hparams: dict[str, Any]) -> int:
        cursor = self.db.execute(
            "INSERT INTO sweep_runs (sweep, key, problem, optimizer, phase, trial, seed, "
            "hparams, status, started) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?)",
            (sweep, key, problem, optimizer, phase, trial, seed,
             json.dumps(hparams, sort_keys=True), time.time()))
        self.db.commit()
        return int(cursor.lastrowid)

    def finish_sweep_run(self, run_id: int, status: str, result: dict[str, Any],
                         curve: list[tuple[int, float, float, float]]) -> None:
        """Complete a run and write its curve, in one transaction: a crash leaves the run
        either ``running`` (to be redone) or complete."""
        values = [_finite(v) if isinstance(v, float) else v
                  for v in (result.get(k) for k in SWEEP_RESULT)]
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO sweep_curves VALUES (?, ?, ?, ?, ?)",
                [(run_id, step, _finite(loss), _finite(metric), elapsed)
                 for step, loss, metric, elapsed in curve])
            assignments = ", ".join(f"{k} = ?" for k in SWEEP_RESULT)
            self.db.execute(f"UPDATE sweep_runs SET status = ?, {assignments} WHERE id = ?",
                            (status, *values, run_id))

    def sweeps(self) -> list[dict[str, Any]]:
        rows = self._rows("SELECT name, config, problems, started FROM sweeps ORDER BY started")
        for row in rows:
            row["config"], row["problems"] = json.loads(row["config"]), json.loads(
                row["problems"])
        return rows

    def sweep_runs(self, sweep: str) -> list[dict[str, Any]]:
        rows = self._rows("SELECT * FROM sweep_runs WHERE sweep = ? ORDER BY id", sweep)
        for row in rows:
            row["hparams"] = json.loads(row["hparams"])
        return rows

    def sweep_curve(self, run_id: int) -> list[dict[str, Any]]:
        return self._rows("SELECT step, train_loss, metric, elapsed_s FROM sweep_curves "
                          "WHERE run_id = ? ORDER BY step", run_id)

    # -- reading -------------------------------------------------------------------------------

    def runs(self, study: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT * FROM runs" + (" WHERE study = ?" if study else "") + " ORDER BY id"
        rows = self._rows(query, *((study,) if study else ()))
        for row in rows:
            row["config"] = json.loads(row["config"])
        return rows

    def epochs(self, run_id: int) -> list[dict[str, Any]]:
        return self._rows("SELECT epoch, train_loss, val_loss, val_accuracy, elapsed_s FROM "
                          "epochs WHERE run_id = ? ORDER BY epoch", run_id)

    def layers(self, run_id: int) -> list[dict[str, Any]]:
        return self._rows("SELECT epoch, layer, grad_norm, weight_norm, update_norm, "
                          "update_ratio, inactive FROM layers WHERE run_id = ? "
                          "ORDER BY epoch, layer", run_id)

    def modules(self, run_id: int) -> list[dict[str, Any]]:
        return self._rows(f"SELECT step, {', '.join(MODULE_COLUMNS)} FROM modules WHERE "
                          "run_id = ? ORDER BY step, position", run_id)

    def timesteps(self, run_id: int) -> list[dict[str, Any]]:
        return self._rows("SELECT epoch, t, grad_norm FROM timesteps WHERE run_id = ? "
                          "ORDER BY epoch, t", run_id)

    def _rows(self, query: str, *args) -> list[dict[str, Any]]:
        cursor = self.db.execute(query, args)
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def export(self) -> dict[str, Any]:
        """Everything: each run with its configuration, epochs, layer, module and time-step
        statistics; each sweep with its configuration and runs, each run with its curve."""
        return {"schema": SCHEMA_VERSION,
                "runs": [{**run, "epochs": self.epochs(run["id"]),
                          "layers": self.layers(run["id"]),
                          "modules": self.modules(run["id"]),
                          "timesteps": self.timesteps(run["id"])} for run in self.runs()],
                "sweeps": [{**sweep, "runs": [{**run, "curve": self.sweep_curve(run["id"])}
                                              for run in self.sweep_runs(sweep["name"])]}
                           for sweep in self.sweeps()]}

    def export_json(self, path: str | Path) -> None:
        text = json.dumps(self.export(), indent=1, allow_nan=False)
        Path(path).write_text(text)
