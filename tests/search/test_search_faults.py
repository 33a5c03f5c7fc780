"""Faults, for real on this machine: a LocalCluster of 2 worker processes with one killed
mid-trial, and the driver killed mid-round then started again with the same command (a fake
trainer that sleeps briefly; no Keras)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")
optuna = pytest.importorskip("optuna")

CELL = "random-val_loss"


def _spec(tmp_path: Path, **over) -> Path:
    spec = {"preset": "ci", "trainer": "fake", "algorithms": ["random"], "objectives": ["val_loss"],
            "epochs": 8, "round_size": 4, "budget": 32, "final_seeds": [0], **over}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def _runs(out: Path) -> dict[int, int]:
    """Trial number -> how many times the fake trainer started it."""
    return {int(p.parent.name): len(p.read_text().splitlines())
            for p in (out / "trials" / CELL).glob("*/runs.log")}


def _study(out: Path):
    return optuna.load_study(study_name=None, storage=f"sqlite:///{out / 'study.db'}")  # the one study


def test_worker_killed_mid_trial_is_retried(tmp_path, monkeypatch):
    from pgdl_measures.search.driver import run_search
    from pgdl_measures.search.spec import load_spec

    marker = tmp_path / "killed"
    monkeypatch.setenv("PGDL_SEARCH_FAKE_SLEEP", "0.6")
    monkeypatch.setenv("PGDL_SEARCH_FAKE_KILL", str(marker))
    out = tmp_path / "out"
    summary = run_search(load_spec(_spec(tmp_path)), out, workers=2)
    assert marker.is_file(), "no worker was killed"
    killed = int(marker.read_text().split("/")[-1])
    runs = _runs(out)
    assert runs[killed] == 2  # started, killed with its worker, run again
    assert all(n == 1 for number, n in runs.items() if number != killed)
    trials = _study(out).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4  # none lost
    assert summary["cells"][0]["epochs"] == 32  # none counted twice
    # the killed trial was completed by a live worker process, not the one that died
    assert trials[killed].user_attrs["worker_pid"] != int((out / "trials" / CELL / f"{killed:04d}" / "runs.log")
                                                           .read_text().split()[0])


def test_driver_killed_mid_round_continues(tmp_path):
    spec = _spec(tmp_path, budget=64)
    out = tmp_path / "out"
    command = [sys.executable, "-c", "from pgdl_measures.cli import main; main()", "search", "run", str(spec),
               "--out", str(out), "--workers", "2", "-q"]
    env = {**os.environ, "PGDL_SEARCH_FAKE_SLEEP": "1.0"}
    first = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    second_round = out / "plans" / CELL / "step-0001.json"
    deadline = time.monotonic() + 120
    try:
        while not second_round.is_file():
            assert first.poll() is None, first.stderr.read().decode()
            assert time.monotonic() < deadline, "the search never reached its second round"
            time.sleep(0.1)
        time.sleep(0.4)  # mid-round: the round's trials are running
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the driver and its local cluster
        first.wait()
    before = {t.number for t in _study(out).get_trials() if t.state.name == "COMPLETE"}
    assert 4 <= len(before) < 8
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    trials = _study(out).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 8
    runs = _runs(out)
    assert all(runs[n] == 1 for n in before)  # finished trials were not trained again
    summary = json.loads((out / "search.json").read_text())
    assert summary["cells"][0]["epochs"] == 64 and summary["cells"][0]["configurations"] == 8
    assert (out / "report.md").is_file() and (out / "report.png").is_file()
