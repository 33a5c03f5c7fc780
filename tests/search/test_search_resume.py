"""A search killed (SIGKILL, a real process) at random points and started again asks exactly
what the uninterrupted search asked, for every algorithm, and reports the same best values.

Each run is a forked child that SIGKILLs itself just before its K-th write (to the study's
SQLite storage or a plan/state/result file), K drawn from a seeded generator: kills land
while asking a step (orphan trials), between a trial's attributes and its value, between a
plan and its trials, ... The trainer is the deterministic fake one and the engine the
synchronous stand-in (no Dask: the driver's own resume is what is tested)."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("optuna")
pytest.importorskip("nevergrad")

SPEC = {"preset": "ci", "trainer": "fake", "algorithms": ["random", "cmaes", "pso", "bohb"],
        "objectives": ["val_loss"], "epochs": 4, "round_size": 3, "budget": 24,
        "bohb": {"eta": 2, "min_epochs": 1}, "final_seeds": [0]}
WRITES = ("create_new_trial", "set_trial_param", "set_trial_state_values", "set_trial_user_attr",
          "set_trial_system_attr", "set_trial_intermediate_value")


def _search(out: str, kill_at: int | None, engine_class) -> None:
    """The forked child: the search into `out`, SIGKILLed before its `kill_at`-th write."""
    from optuna.storages import RDBStorage

    import scoring.files
    from pgdl_measures.search.driver import Driver
    from pgdl_measures.search.spec import load_spec

    count = [0]

    def counted(fn):
        def wrapper(*args, **kwargs):
            count[0] += 1
            if count[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return fn(*args, **kwargs)
        return wrapper

    for name in WRITES:
        setattr(RDBStorage, name, counted(getattr(RDBStorage, name)))
    scoring.files.atomic_write = counted(scoring.files.atomic_write)
    Driver(load_spec(SPEC), out, engine=engine_class(), storage=None).run()
    Path(out, "writes").write_text(str(count[0]))


def _run(out: Path, kill_at: int | None, engine_class) -> int:
    child = multiprocessing.get_context("fork").Process(target=_search, args=(str(out), kill_at, engine_class))
    child.start()
    child.join(300)
    return child.exitcode


def _asked(out: Path) -> dict[str, list]:
    """Cell -> every step's asked (parameters, epochs), in order (trial numbers left out)."""
    cells = {}
    for folder in sorted((out / "plans").iterdir()):
        steps = sorted(folder.glob("step-*.json"))
        cells[folder.name] = [[(e["params"], e["epochs"]) for e in json.loads(p.read_text())["trials"]]
                              for p in steps]
    return cells


def _outcome(out: Path) -> dict[str, dict]:
    keys = ("best_value", "best_params", "configurations", "trials", "epochs", "rounds")
    summary = json.loads((out / "search.json").read_text())
    return {c["cell"]: {k: c[k] for k in keys} for c in summary["cells"]}


@pytest.fixture(scope="module")
def shm(tmp_path_factory):
    """A folder in memory where there is one (SQLite's syncs on a busy disk take most of the time)."""
    if not os.access("/dev/shm", os.W_OK):
        yield tmp_path_factory.mktemp("resume")
        return
    folder = Path(tempfile.mkdtemp(prefix="pgdl-resume-", dir="/dev/shm"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def uninterrupted(shm, sync_engine_class):
    out = shm / "uninterrupted"
    assert _run(out, None, sync_engine_class) == 0
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_killed_search_asks_what_the_uninterrupted_one_asked(shm, uninterrupted, sync_engine_class, seed):
    writes = int((uninterrupted / "writes").read_text())
    rng = random.Random(seed)
    out = shm / f"killed-{seed}"
    kills = 0
    for _ in range(4):
        code = _run(out, rng.randint(1, writes // 3), sync_engine_class)
        if code == 0:
            break
        assert code == -signal.SIGKILL
        kills += 1
    else:
        assert _run(out, None, sync_engine_class) == 0
    assert kills >= 2
    reference = _asked(uninterrupted)
    assert set(reference) == {"random-val_loss", "cmaes-val_loss", "pso-val_loss", "bohb-val_loss"}
    assert _asked(out) == reference
    assert _outcome(out) == _outcome(uninterrupted)
