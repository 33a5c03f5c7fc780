"""`pgdl evaluate` on the official sample task: outputs, rerun, kill and restart, time budget, bad input.

Test-only measures (tests/pgdl_test_measures.py) are registered as a plugin through a fake
distribution's entry points, in this process (sys.path) and in subprocesses (PYTHONPATH).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pgdl_test_measures import ENTRY_POINTS

from pgdl_measures.evaluate.store import STORE_NAME, ResultStore
from pgdl_measures.registry import ENTRY_POINT_GROUP, available_measures
from scoring.rules import Status

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
MODELS = "model_0,model_1,model_2,model_3,model_4,model_5"
MEASURES = ["-m", "vc_dimension,distance_from_init", "-m", "test_slow", "-p", "test_slow.seconds=0.1"]
N_ROWS = 6 * 3


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """A folder holding the fake distribution `pgdl-test-measures`, on sys.path for this module."""
    site = tmp_path_factory.mktemp("site")
    info = site / "pgdl_test_measures-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pgdl-test-measures\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n" + "".join(f"{k} = {v}\n" for k, v in ENTRY_POINTS.items()))
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(site))
        available_measures.cache_clear()
        yield site
    available_measures.cache_clear()


def _env(site: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(TESTS), str(ROOT)]
                                        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def _store(out: Path) -> dict:
    with ResultStore.in_folder(out) as store:
        return {r.key: (r.status, r.value, r.error) for r in store.rows()}


def _worker_starts(out: Path) -> list[int]:
    log = out / "worker.log"
    return [int(p) for p in re.findall(r"pgdl worker (\d+) started", log.read_text())] if log.exists() else []


@pytest.fixture(scope="module")
def full_run(cli, plugin_site, toy_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    result = cli(["evaluate", str(toy_path), *MEASURES, "--models", MODELS, "--out", str(out),
                  "--bootstrap", "20"])
    assert result.exit_code == 0, result.output
    return out, result


def test_outputs(full_run):
    out, result = full_run
    assert "computed 18 results (18 ok); 0 already stored" in result.output
    assert "competition_cmi" in result.output and "average" in result.output
    for name in ("vc_dimension", "distance_from_init", "test_slow"):
        assert name in result.output
    rows = _store(out)
    assert len(rows) == N_ROWS and {status for status, _, _ in rows.values()} == {Status.OK}
    for measure in ("vc_dimension", "distance_from_init", "test_slow"):
        prediction = json.loads((out / measure / "pgdl_toy_data.predict").read_text())
        assert list(prediction) == MODELS.split(",")
    slow = json.loads((out / "test_slow" / "pgdl_toy_data.predict").read_text())
    assert all(v < 0 for v in slow.values())  # direction -1: predictions are negated values
    report = (out / "report.md").read_text()
    assert "| measure | pgdl_toy_data | p null | grp | average | grp |" in report
    assert "breakdown by conditioning set" in report and "plots/pgdl_toy_data.png" in report
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 1 and "<table>" in page and "distance_from_init" in page
    ranking = json.loads((out / "ranking.json").read_text())
    assert set(ranking["rankers"]) >= {"competition_cmi", "kendall_tau", "granulated_kendall"}
    assert len(_worker_starts(out)) == 1


def test_rerun_computes_nothing(cli, full_run, toy_path):
    out, _ = full_run
    before = _store(out)
    result = cli(["evaluate", str(toy_path), *MEASURES, "--models", MODELS, "--out", str(out),
                  "--bootstrap", "20", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "computed 0 results (nothing new); 18 already stored" in result.output
    assert _store(out) == before
    assert len(_worker_starts(out)) == 1  # no worker was started


def test_kill_and_restart_gives_the_same_store(cli, full_run, plugin_site, toy_path, tmp_path):
    out = tmp_path / "killed"
    args = ["evaluate", str(toy_path), *MEASURES, "--models", MODELS, "--out", str(out), "--bootstrap", "20",
            "--no-progress"]
    with open(tmp_path / "cli.log", "wb") as log:
        # the click command itself, not `main()`, which first imports Keras for nothing here (seconds)
        proc = subprocess.Popen([sys.executable, "-c", "import sys; from pgdl_measures.cli import cli; "
                                 "cli.main(sys.argv[1:], prog_name='pgdl')", *args],
                                env=_env(plugin_site), stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
        try:
            deadline = time.monotonic() + 240
            rows = 0
            while rows == 0:
                assert proc.poll() is None, (tmp_path / "cli.log").read_text()
                assert time.monotonic() < deadline, "no result stored in 240 s"
                time.sleep(0.05)
                if (out / STORE_NAME).exists():
                    try:
                        db = sqlite3.connect(f"file:{out / STORE_NAME}?mode=ro", uri=True)
                        rows = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
                        db.close()
                    except sqlite3.OperationalError:  # not created yet, or locked
                        pass
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
    stored = len(_store(out))
    assert 0 < stored < N_ROWS
    workers = _worker_starts(out)
    assert len(workers) == 1
    for _ in range(100):  # the orphaned worker notices its parent is gone and exits
        try:
            os.kill(workers[0], 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the worker {workers[0]} outlived the killed CLI")
    result = cli(args)
    assert result.exit_code == 0, result.output
    assert f"computed {N_ROWS - stored} results" in result.output
    assert _store(out) == _store(full_run[0])


def test_hanging_measure_is_exceeded(cli, plugin_site, toy_path, tmp_path):
    out = tmp_path / "out"
    result = cli(["evaluate", str(toy_path), "-m", "vc_dimension,test_hangs", "-p", "test_hangs.model=model_0",
                  "--models", "model_0,model_1", "--time-budget", "3", "--out", str(out), "--bootstrap", "0"])
    # the exit status tells that a result is not a value (the README's promise); the results are kept
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1].startswith("1 results are not values (1 exceeded)")
    rows = {(key.model, key.measure): value for key, value in _store(out).items()}
    assert rows[("model_0", "test_hangs")][0] == Status.EXCEEDED
    assert "exceeded the time budget of 3 s for pgdl_toy_data/model_0" in rows[("model_0", "test_hangs")][2]
    assert {rows[k][0] for k in rows if k != ("model_0", "test_hangs")} == {Status.OK}
    prediction = json.loads((out / "test_hangs" / "pgdl_toy_data.predict").read_text())
    assert prediction["model_0"] == "EXCEEDED" and isinstance(prediction["model_1"], float)
    assert len(_worker_starts(out)) == 2  # the hung worker was killed and a fresh one took model_1


@pytest.mark.parametrize("args, message", [
    (["-m", "nope"], "unknown measure 'nope'; available: "),
    (["-m", "vc_dimension", "-p", "sigma=1"], "expected NAME.key=value"),
    (["-m", "vc_dimension", "-p", "vc_dimension.sigma=1"], "has no parameter sigma"),
    (["-m", "vc_dimension", "--models", "model_99"], "no task has model model_99"),
    (["-m", "vc_dimension", "-p", "vc_dimension.use_input_size=banana"],
     "--param vc_dimension.use_input_size=banana: expected true or false"),
])
def test_bad_input_exits_2(cli, toy_path, tmp_path, args, message):
    result = cli(["evaluate", str(toy_path), *args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_unwritable_out_exits_2(cli, toy_path, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = cli(["evaluate", str(toy_path), "-m", "vc_dimension", "--out", str(blocker / "out")])
    assert result.exit_code == 2
    assert f"{blocker / 'out'}: the output folder is not writable" in result.output
    assert "Traceback" not in result.output


def test_default_task_is_the_mini_task(cli, mini_path, tmp_path):
    result = cli(["evaluate", "-m", "vc_dimension", "--models", "model_0,model_1", "--out", str(tmp_path),
                  "--bootstrap", "0", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "computed 2 results (2 ok)" in result.output
    assert json.loads((tmp_path / "vc_dimension" / "digits_vgg.predict").read_text()).keys() == {"model_0", "model_1"}


def _copy_out(out: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(out, dest)
    return dest


def test_subset_run_keeps_the_complete_outputs(cli, full_run, plugin_site, toy_path, tmp_path):
    """--models SUBSET into a folder holding a complete run: the .predict files and the report
    still cover every model stored for the task, not only the subset."""
    out = _copy_out(full_run[0], tmp_path / "out")
    result = cli(["evaluate", str(toy_path), *MEASURES, "--models", "model_0", "--out", str(out),
                  "--bootstrap", "0", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "computed 0 results (nothing new); 3 already stored" in result.output
    for measure in ("vc_dimension", "distance_from_init", "test_slow"):
        prediction = json.loads((out / measure / "pgdl_toy_data.predict").read_text())
        assert list(prediction) == MODELS.split(",")
    ranking = json.loads((out / "ranking.json").read_text())
    score = ranking["rankers"]["competition_cmi"]["scores"]["vc_dimension"]["pgdl_toy_data"]
    assert score["models"] == 6


def test_same_name_other_contents_is_not_reused(cli, full_run, plugin_site, toy_path, tmp_path):
    """A different task with the same name (its model_0 is the sample's model_1) does not get the
    stored values of the sample task: they are computed, and the output says why."""
    import shutil

    out = _copy_out(full_run[0], tmp_path / "out")
    other = tmp_path / "other" / "pgdl_toy_data"
    shutil.copytree(toy_path / "dataset_1", other / "dataset_1")
    specs = json.loads((toy_path / "model_configs.json").read_text())
    (other / "model_configs.json").write_text(json.dumps({"0": specs["1"], "1": specs["0"]}))
    shutil.copytree(toy_path / "model_1", other / "model_0")
    shutil.copytree(toy_path / "model_0", other / "model_1")
    before = {(k.model, k.measure): v for k, v in _store(out).items()}
    result = cli(["evaluate", str(other), "-m", "vc_dimension,distance_from_init", "--models", "model_0,model_1",
                  "--out", str(out), "--bootstrap", "0", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "computed 4 results (4 ok); 0 already stored" in result.output
    said = " ".join(result.output.split())  # rich wraps long lines
    assert "4 stored results were computed on other contents of a task named 'pgdl_toy_data'" in said
    with ResultStore.in_folder(out) as store:
        digests = _task_digests(other)
        now = {(r.model, r.measure): r.value for r in store.rows() if r.contents == digests.get(r.model)}
    assert now[("model_0", "distance_from_init")] == before[("model_1", "distance_from_init")][1]
    assert now[("model_1", "distance_from_init")] == before[("model_0", "distance_from_init")][1]
    prediction = json.loads((out / "distance_from_init" / "pgdl_toy_data.predict").read_text())
    assert list(prediction) == ["model_0", "model_1"]  # this task's two models, not the sample's six


def _task_digests(path: Path) -> dict[str, str]:
    from pgdl_measures.tasks import find_tasks

    (task,) = find_tasks(path)
    return task.model_digests()


def test_malformed_reference_is_refused_before_computing(cli, toy_path, tmp_path):
    import shutil

    task = tmp_path / "pgdl_toy_data"
    shutil.copytree(toy_path / "dataset_1", task / "dataset_1")
    shutil.copytree(toy_path / "model_0", task / "model_0")
    specs = json.loads((toy_path / "model_configs.json").read_text())
    specs["0"]["metrics"]["train_acc"] = "high"
    (task / "model_configs.json").write_text(json.dumps(specs))
    out = tmp_path / "out"
    result = cli(["evaluate", str(task), "-m", "vc_dimension", "--out", str(out), "--no-progress"])
    assert result.exit_code == 2, result.output
    assert f"{task / 'model_configs.json'}: model '0': metrics.train_acc must be a finite number" in result.output
    assert "nothing was computed" in result.output and "Traceback" not in result.output
    assert not (out / STORE_NAME).exists()
    score = cli(["score", str(task), str(tmp_path)])  # the same file, the same message from pgdl score
    assert score.exit_code == 2 and "metrics.train_acc must be a finite number" in score.output


@pytest.mark.parametrize("change, message", [
    ("extra", "1 model(s) with no model folder in {task} (model_2)"),
    ("missing", "1 model(s) missing although the task has their folders (model_1)"),
])
def test_reference_that_pgdl_score_refuses_is_refused_before_computing(cli, toy_path, tmp_path, change, message):
    """A model_configs.json listing a model the task lacks, or lacking one it has: `pgdl score`
    refuses every .predict of the task, so evaluate refuses it before computing, not after."""
    import shutil

    task = tmp_path / "pgdl_toy_data"
    shutil.copytree(toy_path / "dataset_1", task / "dataset_1")
    for k in (0, 1):
        shutil.copytree(toy_path / f"model_{k}", task / f"model_{k}")
    specs = json.loads((toy_path / "model_configs.json").read_text())
    listed = ["0", "1", "2"] if change == "extra" else ["0"]
    (task / "model_configs.json").write_text(json.dumps({k: specs[k] for k in listed}))
    out = tmp_path / "out"
    result = cli(["evaluate", str(task), "-m", "vc_dimension", "--out", str(out), "--no-progress"])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"Error: {task / 'model_configs.json'}: ") and message.format(task=task) in line
    assert "nothing was computed" in line and not (out / STORE_NAME).exists()


def test_names_and_paths_are_plain_text_and_the_cmi_is_x100(cli, mini_path, tmp_path):
    """A task and an output folder named with rich markup ([/x], [bold]) are printed as they are
    (progress, tables, paths), and the competition's CMI is shown x100, labelled."""
    import shutil

    models = [f"model_{k}" for k in range(8)]
    task = tmp_path / "t[/x]k[bold]"
    source = mini_path / "input_data" / "digits_vgg"
    for name in models + ["dataset_1"]:
        shutil.copytree(source / name, task / name)
    reference = json.loads((mini_path / "reference_data" / "digits_vgg" / "model_configs.json").read_text())
    (task / "model_configs.json").write_text(json.dumps({k.split("_")[1]: reference[k.split("_")[1]] for k in models}))
    out = tmp_path / "out[/x]"
    result = cli(["evaluate", str(task), "-m", "vc_dimension", "--out", str(out), "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"results: {out / 'results.sqlite'}" in result.output
    assert "k[bold]/model_" in text  # the progress line, as it is (the table may wrap the name)
    assert "competition_cmi (x100)" in text
    ranking = json.loads((out / "ranking.json").read_text())["rankers"]["competition_cmi"]
    assert ranking["scale"] == 100
    (value,) = [score["value"] for score in ranking["scores"]["vc_dimension"].values()]
    assert f"{value:.1f}" in text  # the terminal shows the x100 value of ranking.json
