"""The results store: keys, replacement, durability across a kill, unwritable folders."""

from __future__ import annotations

import math
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from pgdl_measures.errors import PGDLError
from pgdl_measures.evaluate.store import STORE_NAME, Key, ResultStore, Row, canonical_params
from scoring.rules import Status


def _row(model="model_0", status=Status.OK, value=1.5, **kw):
    base = dict(task="toy", model=model, measure="vc_dimension", params="{}", backend="tensorflow",
                status=status, value=value if status == Status.OK else None,
                error=None if status == Status.OK else "boom", seconds=0.25, version="0.1.0")
    base.update(kw)
    return Row(**base)


def test_canonical_params_ignore_order_and_spacing():
    assert canonical_params({"b": 1, "a": [1, 2]}) == canonical_params({"a": [1, 2], "b": 1}) == '{"a":[1,2],"b":1}'
    assert canonical_params({}) == "{}"
    with pytest.raises(PGDLError, match="cannot be recorded as JSON"):
        canonical_params({"x": object()})
    with pytest.raises(PGDLError):
        canonical_params({"x": math.nan})


def test_put_get_replace_and_reopen(tmp_path):
    with ResultStore.in_folder(tmp_path / "new" / "folder") as store:
        store.put(_row("model_0"))
        store.put(_row("model_1", Status.ERROR))
        store.put(_row("model_2", Status.EXCEEDED))
        store.put(_row("model_1", Status.OK, 2.0))  # a retried error replaces the row with its key
        assert len(store) == 3
        key = Key("toy", "model_1", "vc_dimension", "{}", "tensorflow")
        assert store.get(key).value == 2.0 and store.get(key).status == Status.OK
        assert store.get(Key("toy", "model_1", "vc_dimension", "{}", "jax")) is None
    with ResultStore(tmp_path / "new" / "folder" / STORE_NAME) as store:
        rows = store.rows()
        assert [r.model for r in rows] == ["model_0", "model_1", "model_2"]
        assert [r.status for r in rows] == [Status.OK, Status.OK, Status.EXCEEDED]
        assert store.rows(status=Status.EXCEEDED)[0].error == "boom"
        assert set(store.index()) == {r.key for r in rows}
        with pytest.raises(ValueError, match="unknown columns"):
            store.rows(colour="red")


def test_row_checks_its_status_and_value():
    with pytest.raises(ValueError, match="status"):
        _row(status="done")
    with pytest.raises(ValueError, match="finite"):
        _row(value=math.inf)


def test_unwritable_folder_is_named(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(PGDLError, match="cannot write the results store") as err:
        ResultStore.in_folder(blocker / "out")
    assert str(blocker) in str(err.value)


def test_foreign_schema_is_refused(tmp_path):
    db = sqlite3.connect(tmp_path / STORE_NAME)
    db.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                     "INSERT INTO meta VALUES ('schema_version', '99');")
    db.commit()
    db.close()
    with pytest.raises(PGDLError, match="schema version 99"):
        ResultStore.in_folder(tmp_path)


def test_rows_survive_sigkill(tmp_path):
    """Each put is committed: a process killed right after its third put leaves three rows."""
    script = textwrap.dedent(f"""
        import os, signal
        from pgdl_measures.evaluate.store import ResultStore, Row
        store = ResultStore.in_folder({str(tmp_path)!r})
        for i in range(3):
            store.put(Row("toy", f"model_{{i}}", "m", "{{}}", "tensorflow", "ok", value=float(i)))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with ResultStore.in_folder(tmp_path) as store:
        assert [r.value for r in store.rows()] == [0.0, 1.0, 2.0]


def test_schema_1_store_is_migrated_and_its_rows_kept(tmp_path):
    """A store written before results were keyed on the task's contents opens, keeps its rows
    (contents "", never reused by evaluate) and takes new rows beside them."""
    path = tmp_path / STORE_NAME
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE results (task TEXT NOT NULL, model TEXT NOT NULL, measure TEXT NOT NULL, params TEXT NOT NULL,
            backend TEXT NOT NULL, status TEXT NOT NULL, value REAL, error TEXT, seconds REAL NOT NULL,
            version TEXT NOT NULL, finished TEXT NOT NULL, PRIMARY KEY (task, model, measure, params, backend));
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        INSERT INTO results VALUES ('toy', 'model_0', 'vc_dimension', '{}', 'tensorflow', 'ok', 1.5, NULL, 0.5,
            '0.1.0', '2026-01-01T00:00:00+00:00');
    """)
    db.commit()
    db.close()
    with ResultStore(path) as store:
        (old,) = store.rows()
        assert (old.model, old.value, old.contents) == ("model_0", 1.5, "")
        store.put(_row("model_0", value=2.5, contents="abc"))  # the same key on other contents: a second row
        assert len(store) == 2
        assert store.get(Key("toy", "model_0", "vc_dimension", "{}", "tensorflow", "abc")).value == 2.5
    with ResultStore(path) as store:  # reopening does not migrate again
        assert len(store) == 2
    assert sqlite3.connect(path).execute("SELECT value FROM meta").fetchone()[0] == "2"


def test_a_measure_revision_keys_results_apart():
    """A measure whose computation changed with the same parameters does not reuse old values."""
    from pgdl_measures.evaluate.store import REVISION_KEY, measure_key
    from pgdl_measures.registry import get_measure

    measure = get_measure("augment_robustness")
    assert measure.revision == 2
    assert f'"{REVISION_KEY}":2' in measure_key(measure)
    unchanged = get_measure("vc_dimension")
    assert measure_key(unchanged) == canonical_params(unchanged.params)  # revision 1: keys as before
