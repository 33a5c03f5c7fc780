"""The search's storage: searches sharing one keep their own studies, the folder records its
storage (reports and later runs read it), a damaged or missing database is one line, a second
`search run` on a folder is refused while the first runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from pgdl_measures.errors import PGDLError
from pgdl_measures.search.driver import Driver
from pgdl_measures.search.report import write_report
from pgdl_measures.search.spec import load_spec

optuna = pytest.importorskip("optuna")


def _spec(**over):
    return load_spec({"preset": "ci", "trainer": "fake", "algorithms": ["random"], "objectives": ["val_loss"],
                      "round_size": 4, "final_seeds": [0], **over})


def _one_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_searches_sharing_a_storage_keep_their_own_studies(tmp_path, sync_engine):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    first = Driver(_spec(budget=64), tmp_path / "first", engine=sync_engine, storage=storage).run()
    assert first["cells"][0]["configurations"] == 8
    # another search into the same storage counts only its own configurations
    second = Driver(_spec(budget=32), tmp_path / "second", engine=sync_engine, storage=storage).run()
    assert second["cells"][0]["configurations"] == 4 and second["cells"][0]["epochs"] == 32
    # and a narrower space's best configuration lies in its own space
    narrow = _spec(budget=32, space={"learning_rate": {"low": 0.001, "high": 0.002, "log": True}},
                   start={"learning_rate": 0.0015})
    third = Driver(narrow, tmp_path / "third", engine=sync_engine, storage=storage).run()
    assert 0.001 <= third["cells"][0]["best_params"]["learning_rate"] <= 0.002
    assert third["cells"][0]["configurations"] == 4
    names = optuna.get_all_study_names(storage)
    assert len(names) == 3 and all(name.startswith("random-val_loss@") for name in names)
    # the same spec searched into another folder with the same storage is refused
    with pytest.raises(PGDLError, match="another output folder"):
        Driver(_spec(budget=64), tmp_path / "fourth", engine=sync_engine, storage=storage).run()
    assert not (tmp_path / "fourth" / "plans").exists()


def test_report_and_later_runs_read_the_recorded_storage(cli, tmp_path, sync_engine):
    storage = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    out = tmp_path / "out"
    spec = _spec(budget=32)
    summary = Driver(spec, out, engine=sync_engine, storage=storage).run()
    result = cli(["search", "report", str(out)])  # no --storage: the recorded one
    assert result.exit_code == 0, result.output
    assert "| random | val_loss | - | 4 | 4 | 32 |" in result.output
    assert not (out / "study.db").exists()  # no empty database created
    report = (out / "report.md").read_bytes()
    line = _one_line(cli(["search", "report", str(out), "--storage", f"sqlite:///{tmp_path / 'wrong.db'}"]))
    assert "storage.json" in line and "elsewhere.db" in line
    assert (out / "report.md").read_bytes() == report and not (tmp_path / "wrong.db").exists()
    # a later run without --storage continues in the recorded storage (nothing trained again)
    trained = dict(sync_engine.epochs)
    again = Driver(spec, out, engine=sync_engine, storage=None).run()
    assert again["cells"] == summary["cells"] and dict(sync_engine.epochs) == trained


def test_report_refuses_a_missing_or_damaged_database(cli, tmp_path, sync_engine):
    out = tmp_path / "out"
    Driver(_spec(budget=32), out, engine=sync_engine, storage=None).run()
    write_report(out)
    report = (out / "report.md").read_bytes()
    db = out / "study.db"
    db.write_bytes(b"this is not a database\n" * 200)
    line = _one_line(cli(["search", "report", str(out)]))
    assert "study.db" in line and "cannot read the Optuna storage" in line
    db.unlink()
    line = _one_line(cli(["search", "report", str(out)]))
    assert "study.db" in line and "no study database" in line
    assert not db.exists() and (out / "report.md").read_bytes() == report


def test_a_folder_of_an_older_version_is_refused(tmp_path, sync_engine):
    spec = _spec(budget=32)
    out = tmp_path / "out"
    out.mkdir()
    (out / "spec.json").write_text(spec.to_json())  # what an older version left: studies named by the cell
    optuna.create_study(study_name="random-val_loss", storage=f"sqlite:///{out / 'study.db'}")
    with pytest.raises(PGDLError, match="older pgdl version"):
        Driver(spec, out, engine=sync_engine, storage=None).run()


def test_a_second_run_on_a_running_folder_is_refused(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"preset": "ci", "trainer": "fake", "algorithms": ["random"],
                                "objectives": ["val_loss"], "round_size": 4, "budget": 64, "final_seeds": [0]}))
    out = tmp_path / "out"
    command = [sys.executable, "-c", "from pgdl_measures.cli import main; main()", "search", "run", str(spec),
               "--out", str(out), "--workers", "1", "-q"]
    env = {**os.environ, "PGDL_SEARCH_FAKE_SLEEP": "0.3"}
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "plans").is_dir():  # the first run holds the folder and has started
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"another `pgdl search run` (pid {first.pid})" in lines[0], second.stderr
        _, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    # nothing mixed or lost: the first run's 8 configurations, each trained once
    trials = optuna.load_study(study_name=None, storage=f"sqlite:///{out / 'study.db'}").get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 8
    runs = [len(p.read_text().splitlines()) for p in (out / "trials").glob("*/*/runs.log")]
    assert runs == [1] * 8
    assert json.loads((out / "search.json").read_text())["cells"][0]["configurations"] == 8
    assert sorted(p.name for p in (out / "plans" / "random-val_loss").iterdir()) == ["step-0000.json",
                                                                                      "step-0001.json"]


def test_an_unusable_storage_is_not_recorded(tmp_path, sync_engine):
    out = tmp_path / "out"
    with pytest.raises(PGDLError, match="cannot open the Optuna storage"):
        Driver(_spec(budget=32), out, engine=sync_engine, storage="sqlite:////nonexistent/dir/study.db").run()
    assert not (out / "storage.json").exists()
    summary = Driver(_spec(budget=32), out, engine=sync_engine, storage=None).run()  # the fixed command runs
    assert summary["cells"][0]["configurations"] == 4


def test_a_lost_database_is_refused_not_recreated(tmp_path, sync_engine):
    out = tmp_path / "out"
    Driver(_spec(budget=32), out, engine=sync_engine, storage=None).run()
    (out / "study.db").unlink()
    with pytest.raises(PGDLError, match="study database of this search is missing"):
        Driver(_spec(budget=32), out, engine=sync_engine, storage=None).run()
    assert not (out / "study.db").exists()
