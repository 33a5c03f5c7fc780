"""`pgdl evaluate` on a real 2-worker Dask LocalCluster (data/mini, a few models): the same store,
.predict files and report as the serial run; a worker killed mid-model; a model that kills every
worker it lands on; the driver killed then started again; an unreachable scheduler."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pgdl_test_measures import KillsWorker, Slow

from pgdl_measures.evaluate.store import STORE_NAME, ResultStore
from scoring.rules import Status

pytest.importorskip("distributed")

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
# model_18's gradient norm differs in its last bits when TensorFlow sums over another thread count
MODELS = ["model_0", "model_1", "model_2", "model_18"]
MEASURES = ["vc_dimension", "distance_from_init", "gradient_norm", Slow(seconds=0.1), KillsWorker()]
KILL_ENV = ("PGDL_TEST_KILL_MODEL", "PGDL_TEST_KILL_LOG", "PGDL_TEST_KILL_ONCE")
# the model whose worker two_workers kills once: the last one sent, so that the surviving worker is
# soon free to run it again and the restarted worker (and its Keras import) is seldom needed
KILLED = MODELS[-1]


def _evaluate(mini, out, *, env=None, **kwargs):
    from pgdl_measures.evaluate.pipeline import evaluate

    with pytest.MonkeyPatch.context() as mp:
        for name in KILL_ENV:
            mp.delenv(name, raising=False)
        for name, value in (env or {}).items():
            mp.setenv(name, value)
        return evaluate([mini], kwargs.pop("measures", MEASURES), out, models=kwargs.pop("models", MODELS),
                        n_resamples=20, n_permutations=20, **kwargs)


def _values(out: Path) -> dict:
    with ResultStore.in_folder(out) as store:
        return {r.key: (r.status, r.value) for r in store.rows()}


def _predicts(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.glob("*/*.predict"))}


@pytest.fixture(scope="module")
def serial(mini_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    return out, _evaluate(mini_path, out)


@pytest.fixture(scope="module")
def two_workers(mini_path, tmp_path_factory):
    """2 workers; the worker computing KILLED is SIGKILLed once, mid-model."""
    out = tmp_path_factory.mktemp("dask")
    log = out.parent / "dask-kills.log"
    result = _evaluate(mini_path, out, workers=2,
                       env={"PGDL_TEST_KILL_MODEL": KILLED, "PGDL_TEST_KILL_LOG": str(log), "PGDL_TEST_KILL_ONCE": "1"})
    return out, result, log


def test_two_workers_give_the_serial_results(serial, two_workers):
    (serial_out, _), (out, result, _) = serial, two_workers
    assert _values(out) == _values(serial_out)
    assert {s for s, _ in _values(out).values()} == {Status.OK}
    assert _predicts(out) == _predicts(serial_out) and len(_predicts(out)) == len(MEASURES)
    assert (out / "report.md").read_bytes() == (serial_out / "report.md").read_bytes()
    assert (out / "ranking.json").read_bytes() == (serial_out / "ranking.json").read_bytes()
    assert sorted(d["model"] for d in result.stats.dispatch) == sorted(MODELS)


def test_killed_worker_is_retried_and_counted_once(two_workers):
    out, result, log = two_workers
    (killed,) = [int(line) for line in log.read_text().split()]
    assert result.stats.computed == {Status.OK: len(MODELS) * len(MEASURES)}  # each model once, nothing lost
    (retried,) = [d for d in result.stats.dispatch if d["model"] == KILLED]
    assert retried["pid"] != killed  # completed by a live worker
    with pytest.raises(ProcessLookupError):
        os.kill(killed, 0)


KILLED_TWICE = "computing digits_vgg/model_2 killed 2 Dask worker processes (the most tries allowed)"
AFTER_A_LOSS = ", after 1 earlier run whose shipped data died with the workers holding it"


def _kills_every_worker(serial, mini_path, out: Path, log: Path, workers: int, ship_data: bool):
    result = _evaluate(mini_path, out, workers=workers, max_tries=2, models=["model_0", "model_2"], ship_data=ship_data,
                       measures=["vc_dimension", KillsWorker()],
                       env={"PGDL_TEST_KILL_MODEL": "model_2", "PGDL_TEST_KILL_LOG": str(log)})
    rows = {(k.model, k.measure): (s, v) for k, (s, v) in _values(out).items()}
    assert rows[("model_2", "test_kills_worker")][0] == Status.ERROR and rows[("model_2", "vc_dimension")][0] == Status.ERROR
    assert rows[("model_0", "test_kills_worker")][0] == Status.OK and rows[("model_0", "vc_dimension")][0] == Status.OK
    assert result.failed_counts() == {Status.ERROR: 2}
    with ResultStore.in_folder(out) as store:
        (error,) = {r.error for r in store.rows() if r.status == Status.ERROR}
    expected = {k: v for k, v in _values(serial[0]).items()
                if k.model == "model_0" and k.measure in ("vc_dimension", "test_kills_worker")}
    assert {k: v for k, v in _values(out).items() if k.model == "model_0"} == expected
    return len(log.read_text().split()), error


def test_model_that_kills_every_worker_is_recorded_after_the_tries(serial, mini_path, tmp_path):
    """(The workers read the task's folder: nothing shipped can be lost.) Two workers died, then no third try."""
    deaths, error = _kills_every_worker(serial, mini_path, tmp_path / "out", tmp_path / "kills.log", workers=2,
                                        ship_data=False)
    assert (deaths, error) == (2, KILLED_TWICE + "; not tried again")


def test_a_model_whose_shipped_data_dies_under_it_ends_after_its_tries(serial, mini_path, tmp_path):
    """(With the task's files shipped to the one worker, which reads only those.) The model's first
    death takes the only copy of the shipped data, and Dask cancels the model; it runs once more
    carrying the data, and its tries end it (it used to be resubmitted with fresh tries for ever)."""
    deaths, error = _kills_every_worker(serial, mini_path, tmp_path / "out", tmp_path / "kills.log", workers=1,
                                        ship_data=True)
    assert (deaths, error) == (3, KILLED_TWICE + AFTER_A_LOSS + "; not tried again")


def _stored(out: Path) -> int:
    try:
        db = sqlite3.connect(f"file:{out / STORE_NAME}?mode=ro", uri=True)
        try:
            return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        finally:
            db.close()
    except sqlite3.OperationalError:  # not created yet, or locked
        return 0


def test_killed_driver_continues_and_computes_nothing_twice(serial, cli, mini_path, tmp_path):
    """`pgdl evaluate --workers 1` SIGKILLed (with its local cluster) after its first stored result,
    then the same command again: it computes only what is missing, and the store ends as the
    serial run's.

    The killed run is the CLI's click command in a child (not `main()`, which first imports Keras
    for nothing here: seconds); the second run is in this process, whose Keras the other CLI
    tests of this module import anyway. One worker: each run starts one measure worker, not two."""
    out = tmp_path / "out"
    args = ["evaluate", str(mini_path), "-m", "vc_dimension,distance_from_init", "--models", ",".join(MODELS),
            "--out", str(out), "--workers", "1", "--resamples", "0", "--permutations", "0", "-q"]
    command = [sys.executable, "-c", "import sys; from pgdl_measures.cli import cli; cli.main(sys.argv[1:], prog_name='pgdl')",
               *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    first = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    try:
        while not (out / STORE_NAME).exists() or _stored(out) == 0:
            assert first.poll() is None, first.stderr.read().decode()
            assert time.monotonic() < deadline, "nothing stored in 240 s"
            time.sleep(0.05)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the driver and its local cluster
        first.wait()
    stored = _stored(out)
    assert 0 < stored < 2 * len(MODELS)
    second = cli(args)
    assert second.exit_code == 0, second.output
    assert f"computed {2 * len(MODELS) - stored} results" in second.output
    expected = {k: v for k, v in _values(serial[0]).items() if k.measure in ("vc_dimension", "distance_from_init")}
    assert _values(out) == expected


def test_unreachable_scheduler_is_one_line_exit_2(cli, mini_path, tmp_path):
    result = cli(["evaluate", str(mini_path), "-m", "vc_dimension", "--out", str(tmp_path / "out"),
                  "--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "2"])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: cannot reach the Dask scheduler at tcp://127.0.0.1:9")


@pytest.mark.parametrize("value", ["0", "two"])
def test_bad_workers_exit_2(cli, mini_path, tmp_path, value):
    result = cli(["evaluate", str(mini_path), "-m", "vc_dimension", "--out", str(tmp_path), "--workers", value])
    assert result.exit_code == 2 and "expected a number of workers (1 or more) or auto" in result.output
    assert "Traceback" not in result.output
