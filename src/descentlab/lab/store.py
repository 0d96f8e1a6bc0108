"""The results store: one SQLite database per output folder, written as runs go.

Tables (``descentlab report`` and ``--json`` read only these):

- ``runs``: one row per training run, inserted when it starts (status ``running``) and
  completed when it ends (``finished`` or ``diverged``): its configuration as JSON, wall time,
  test metrics, epochs to the target accuracy, the vanishing/exploding finding at
  initialisation.
- ``epochs``: per run and epoch, training loss, validation loss and accuracy, elapsed time.
  Epoch 0 is the network at initialisation.
- ``layers``: per run, epoch and layer, the statistics of ``diagnostics.LayerStats``.

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

SCHEMA_VERSION = 1
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
"""


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

    def _rows(self, query: str, *args) -> list[dict[str, Any]]:
        cursor = self.db.execute(query, args)
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def export(self) -> dict[str, Any]:
        """Everything: each run with its configuration, epochs and layer statistics."""
        return {"schema": SCHEMA_VERSION,
                "runs": [{**run, "epochs": self.epochs(run["id"]),
                          "layers": self.layers(run["id"])} for run in self.runs()]}

    def export_json(self, path: str | Path) -> None:
        text = json.dumps(self.export(), indent=1, allow_nan=False)
        Path(path).write_text(text)
