"""A search's output folder: its JSON files, the storage it records and the lock a driver holds.

``storage.json`` records the Optuna storage URL of the search (null: the folder's ``study.db``)
and the folder's search id; a run or a report given another ``--storage`` is refused, one given
none uses the recorded one (:func:`search_storage`). ``.lock`` is held while a driver writes the
folder (:func:`folder_lock`). Storage errors of Optuna and SQLAlchemy become one line
(:func:`storage_failure`).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from pgdl_measures.errors import PGDLError
from scoring import files


def write(path: Path, payload: Any) -> None:
    """`payload` as JSON at `path`, atomically (numpy numbers as numbers, sets as sorted lists).

    Raises:
        PGDLError: the file cannot be written (a full disk), naming it.
    """
    try:
        files.atomic_write(path, json.dumps(payload, indent=1, default=_json_default))
    except OSError as exc:
        raise PGDLError(f"cannot write: {exc.strerror or exc} (results so far are kept in the study)", path) \
            from None


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, set):
        return sorted(value)
    return str(value)


def read(path: Path) -> Any:
    """The JSON at `path` (:func:`scoring.files.read_json`: a malformed file is one PGDLError)."""
    return files.read_json(path, path.name)



def default_storage(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"


def normal_url(url: str) -> str:
    """A storage URL with a SQLite file's path resolved (for comparing two URLs)."""
    if url.startswith("sqlite:///"):
        return "sqlite:///" + str(Path(url[len("sqlite:///"):]).resolve())
    return url


def storage_record(out: Path) -> dict[str, Any] | None:
    """``storage.json`` of a search folder (None in a folder of an older version)."""
    path = out / "storage.json"
    return read(path) if path.is_file() else None


def search_storage(out: Path, given: str | None) -> tuple[str, bool]:
    """The storage URL of the search in `out` and whether the folder recorded it: the recorded
    one (``storage.json``; for a folder of an older version, the ``storage`` of ``search.json``),
    else `given`, else the folder's ``study.db``.

    Raises:
        PGDLError: `given` differs from the recorded storage.
    """
    record = storage_record(out)
    if record is not None:
        recorded = record.get("storage") or default_storage(out)
    elif (out / "search.json").is_file():
        recorded = read(out / "search.json").get("storage")
    else:
        recorded = None
    if recorded is None:
        return given or default_storage(out), False
    if given is not None and normal_url(given) != normal_url(recorded):
        raise PGDLError(f"the search in this folder uses the storage {recorded}, not {given}; "
                        f"give its storage or none", out / ("storage.json" if record is not None else "search.json"))
    return recorded, True


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for other storages)."""
    return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None


def storage_failure(exc: BaseException) -> str | None:
    """The innermost message of an Optuna or SQLAlchemy storage error (None for another error)."""
    from optuna.exceptions import StorageInternalError

    try:
        from sqlalchemy.exc import SQLAlchemyError
    except ImportError:  # pragma: no cover - sqlalchemy comes with optuna
        SQLAlchemyError = StorageInternalError  # noqa: N806
    if not isinstance(exc, (StorageInternalError, SQLAlchemyError)):
        return None
    inner = exc
    while inner.__cause__ is not None or inner.__context__ is not None:
        inner = inner.__cause__ or inner.__context__
    text = str(getattr(inner, "orig", None) or inner).splitlines()[0]
    return text


@contextlib.contextmanager
def folder_lock(out: Path):
    """Holds ``out/.lock`` (:func:`scoring.files.folder_lock`) while a driver writes the folder.

    Raises:
        PGDLError: another process holds it (another ``search run`` on the folder).
    """
    from scoring.files import FolderBusy
    from scoring.files import folder_lock as lock

    try:
        with lock(out, ".lock"):
            yield
    except FolderBusy as busy:
        raise PGDLError(f"another `pgdl search run` (pid {busy.holder}) is writing this search folder; wait for it "
                        f"to end or use another --out", out) from None


def optuna_module():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def open_storage(url: str):
    """An Optuna storage for `url` (``:memory:``: in memory, for tests)."""
    if url == ":memory:":
        import optuna

        return optuna.storages.InMemoryStorage()
    return url
