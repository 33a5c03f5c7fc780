"""The results store of `pgdl evaluate`: one SQLite row per (task, model, measure, parameters, backend,
contents).

Every result is committed as soon as it is produced, one transaction per row, so a run killed
at any point (SIGKILL included) loses at most the computation in flight: SQLite's journal
rolls an interrupted transaction back when the file is next opened. A run started again reads
what is there and computes only what is missing.

Schema (table ``results``; the key is the first five columns and ``contents``)::

    task      TEXT  the task's name (pgdl_toy_data, task1_v4, ...)
    model     TEXT  model_<k>
    measure   TEXT  the measure's registry name
    params    TEXT  the measure's parameters as canonical JSON (sorted keys, no spaces)
    backend   TEXT  the Keras backend that computed it (tensorflow, jax)
    status    TEXT  "ok", "error" or "exceeded" (the per-model time budget ran out)
    value     REAL  the measure's value when status is "ok", else NULL
    error     TEXT  what went wrong when status is "error" or "exceeded", else NULL
    seconds   REAL  wall-clock seconds the computation took
    version   TEXT  pgdl_measures.__version__ of the run that computed it
    finished  TEXT  when it was stored (UTC, ISO 8601)
    contents  TEXT  what the model is: a digest of its files and its task's data
                    (:meth:`pgdl_measures.tasks.Task.model_digest`), so a different task that
                    has the same name never reuses these results; "" in rows migrated from
                    schema version 1, which did not record it (such rows are never reused)

A table ``meta`` holds ``schema_version``. A store of schema version 1 (before ``contents``) is
migrated in place when opened; its rows are kept, readable, with ``contents`` "".
:func:`scoring.files.atomic_write` writes the other outputs (``.predict`` files, reports) so that
a kill never leaves half a file.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pgdl_measures.errors import PGDLError
from scoring.rules import Status

STORE_NAME = "results.sqlite"
SCHEMA_VERSION = "2"
#: A row's status (:class:`scoring.rules.Status`); the ``.predict`` file shows a result over its
#: time budget as the competition's marker :data:`scoring.rules.EXCEEDED` (``"EXCEEDED"``).
STATUSES = tuple(s.value for s in Status)

_RESULTS_TABLE = """
CREATE TABLE IF NOT EXISTS results (
    task     TEXT NOT NULL,
    model    TEXT NOT NULL,
    measure  TEXT NOT NULL,
    params   TEXT NOT NULL,
    backend  TEXT NOT NULL,
    status   TEXT NOT NULL CHECK (status IN ('ok', 'error', 'exceeded')),
    value    REAL,
    error    TEXT,
    seconds  REAL NOT NULL,
    version  TEXT NOT NULL,
    finished TEXT NOT NULL,
    contents TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (task, model, measure, params, backend, contents)
)"""
_SCHEMA = _RESULTS_TABLE + ";\nCREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
_COLUMNS = ("task", "model", "measure", "params", "backend", "status", "value", "error", "seconds",
            "version", "finished", "contents")
#: the columns of schema version 1, which version 2 extends with ``contents``
_COLUMNS_V1 = _COLUMNS[:-1]


def canonical_params(params: dict[str, Any]) -> str:
    """A measure's parameters as canonical JSON: sorted keys, no whitespace.

    Two runs with the same parameters give the same string, whatever the order they were given in.

    Raises:
        PGDLError: a parameter value that JSON cannot record.
    """
    try:
        return json.dumps(params, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PGDLError(f"measure parameters {params!r} cannot be recorded as JSON: {exc}") from None


REVISION_KEY = "__revision__"
"""The parameter a measure's :attr:`~pgdl_measures.measures.base.Measure.revision` is stored under."""


def measure_key(measure: Any) -> str:
    """What the store keys a measure's results on: its parameters, and its revision when above 1.

    A measure whose computation changed with the same parameters bumps its ``revision``, so that
    values stored by the earlier computation are not reused (revision 1 adds nothing: keys of
    measures that never changed stay as they were).
    """
    params = dict(measure.params)
    revision = int(getattr(measure, "revision", 1))
    if revision != 1:
        params[REVISION_KEY] = revision
    return canonical_params(params)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Key:
    """What identifies one result."""

    task: str
    model: str
    measure: str
    params: str
    backend: str
    contents: str = ""


@dataclass(frozen=True)
class Row:
    """One result: a value, an error, or "exceeded" (see the module docstring for the columns)."""

    task: str
    model: str
    measure: str
    params: str
    backend: str
    status: str
    value: float | None = None
    error: str | None = None
    seconds: float = 0.0
    version: str = ""
    finished: str = field(default_factory=_now)
    contents: str = ""

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.status == Status.OK and (self.value is None or not math.isfinite(self.value)):
            raise ValueError(f"an 'ok' row needs a finite value, got {self.value!r}")

    @property
    def key(self) -> Key:
        return Key(self.task, self.model, self.measure, self.params, self.backend, self.contents)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ResultStore:
    """The SQLite results store of an output folder (``<out>/results.sqlite``).

    Use as a context manager, or call :meth:`close`. One process writes at a time (SQLite locks
    the file; a second writer waits up to 30 s).

    Args:
        path: the database file; its folder is created when missing.

    Raises:
        PGDLError: the folder cannot be created or the file cannot be written (it is named).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self._db.execute("PRAGMA synchronous = FULL")
            self._migrate_v1()
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                             (SCHEMA_VERSION,))
            found = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        except (OSError, sqlite3.Error) as exc:
            raise PGDLError(f"cannot write the results store here ({exc}); choose a writable output "
                            "folder (--out)", self.path) from None
        if found != SCHEMA_VERSION:
            self._db.close()
            raise PGDLError(f"results store has schema version {found}, this toolkit writes "
                            f"{SCHEMA_VERSION}; use another output folder", self.path)

    def _migrate_v1(self) -> None:
        """Bring a schema-1 store (no ``contents`` column) to schema 2, in one transaction.

        Its rows keep their values with ``contents`` "" (unknown): they stay readable, and
        :func:`pgdl_measures.evaluate.pipeline.compute_measures` never reuses them, saying so.
        """
        has_meta = self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
        if not has_meta:
            return
        found = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if found is None or found[0] != "1":
            return
        columns = ", ".join(_COLUMNS_V1)
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("ALTER TABLE results RENAME TO results_v1")
            self._db.execute(_RESULTS_TABLE)
            self._db.execute(f"INSERT INTO results ({columns}, contents) SELECT {columns}, '' FROM results_v1")
            self._db.execute("DROP TABLE results_v1")
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))

    @classmethod
    def in_folder(cls, out_dir: str | os.PathLike) -> ResultStore:
        """The store of an output folder (``<out_dir>/results.sqlite``)."""
        return cls(Path(out_dir) / STORE_NAME)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._db.close()

    def put(self, row: Row) -> None:
        """Store `row` (replacing any row with its key) and commit at once.

        Raises:
            PGDLError: the file can no longer be written (disk full, folder removed, ...).
        """
        values = tuple(getattr(row, c) for c in _COLUMNS)
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(f"INSERT OR REPLACE INTO results ({', '.join(_COLUMNS)}) "
                                 f"VALUES ({', '.join('?' * len(_COLUMNS))})", values)
        except sqlite3.Error as exc:
            raise PGDLError(f"cannot write to the results store: {exc}", self.path) from None

    def get(self, key: Key) -> Row | None:
        """The row with `key`, or None."""
        cur = self._db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM results WHERE task = ? AND model = ? AND measure = ? "
            "AND params = ? AND backend = ? AND contents = ?",
            (key.task, key.model, key.measure, key.params, key.backend, key.contents))
        found = cur.fetchone()
        return None if found is None else Row(*found)

    def rows(self, **where: str) -> list[Row]:
        """All rows, or those whose columns equal the given values (e.g. ``task="t", backend="jax"``),
        ordered by task, measure, parameters, backend and model."""
        unknown = set(where) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown columns {sorted(unknown)}; columns are {_COLUMNS}")
        clause = " AND ".join(f"{name} = ?" for name in where)
        cur = self._db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM results" + (f" WHERE {clause}" if clause else "")
            + " ORDER BY task, measure, params, backend, model", tuple(where.values()))
        return [Row(*found) for found in cur.fetchall()]

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows())

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def index(self, keys: Iterable[Key] | None = None) -> dict[Key, Row]:
        """Rows by key (all rows, or those among `keys`)."""
        rows = {row.key: row for row in self.rows()}
        if keys is None:
            return rows
        return {k: rows[k] for k in keys if k in rows}


