"""`pgdl run-submission`: 2020-style submissions on the official sample task.

The fixture submissions live in tests/competition/submissions/ (see its README). Every model runs in a
child process that imports TensorFlow (several seconds each), so the runs are restricted to one
or two models of the toy task; the unit tests above them need no child.
"""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pgdl_measures.competition import run as sub
from pgdl_measures.competition._ingestion_child import as_float, complexity_kwargs
from pgdl_measures.errors import PGDLError
from pgdl_measures.tasks import find_tasks

SUBMISSIONS = Path(__file__).resolve().parent / "submissions"


# ------------------------------------------------------------------------ numpy references


def read_weights(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(kernel, bias) per layer, in layer order, from an HDF5 file written by tf.keras 2.x."""
    import h5py

    out = []
    with h5py.File(path, "r") as f:
        for layer in f.attrs["layer_names"]:
            group = f[layer]
            names = list(group.attrs["weight_names"])
            if names:
                out.append(tuple(np.array(group[n]) for n in names))
    return out


ACTIVATIONS = {None: lambda a: a, "linear": lambda a: a, "relu": lambda a: np.maximum(a, 0.0),
               "tanh": np.tanh}


def numpy_forward(model_dir: Path, x: np.ndarray) -> list[np.ndarray]:
    """[input, output of each Dense layer] of a toy MLP, in float64."""
    config = json.loads((model_dir / "config.json").read_text())
    activations = [ACTIVATIONS[layer.get("activation")] for layer in config["model_config"]]
    outs = [x.astype(np.float64)]
    for (kernel, bias), act in zip(read_weights(model_dir / "weights.hdf5"), activations):
        outs.append(act(outs[-1] @ kernel + bias))
    return outs


def toy_train(toy: Path) -> tuple[np.ndarray, np.ndarray]:
    """The toy task's training data, shards in natural order, without TensorFlow."""
    from pgdl_measures.tasks.tfrecords import iter_batches

    xs, ys = zip(*iter_batches(toy / "dataset_1" / "train", 1000))
    return np.concatenate(xs), np.concatenate(ys)


def dense_shapes(model_dir: Path) -> list[tuple[int, int]]:
    """(fan_in, units) of every Dense layer, from config.json only."""
    config = json.loads((model_dir / "config.json").read_text())
    fan_in, shapes = config["input_shape"][0], []
    for layer in config["model_config"]:
        shapes.append((fan_in, layer["units"]))
        fan_in = layer["units"]
    return shapes


def predict(out: Path, task: str = "pgdl_toy_data") -> dict:
    return json.loads((out / f"{task}.predict").read_text())


def zip_folder(folder: Path, archive: Path, *, nested: bool) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                rel = path.relative_to(folder)
                zf.write(path, str(Path(folder.name) / rel if nested else rel))
    return archive


# ------------------------------------------------------------------------ unit tests, no child


def test_complexity_kwargs_passes_program_dir_only_when_declared():
    def two(model, dataset):
        pass

    def three(model, dataset, program_dir):
        pass

    def extra(model, dataset, program_dir=None, verbose=False, n=3):
        pass

    def keyword_only(model, dataset, *, program_dir=None):
        pass

    def var_kw(model, dataset, **kwargs):
        pass

    assert complexity_kwargs(two, "/p") == {}
    assert complexity_kwargs(three, "/p") == {"program_dir": "/p"}
    assert complexity_kwargs(extra, "/p") == {"program_dir": "/p"}
    assert complexity_kwargs(keyword_only, "/p") == {"program_dir": "/p"}
    assert complexity_kwargs(var_kw, "/p") == {}


def test_as_float_accepts_scalars_and_names_the_model_otherwise():
    assert as_float(np.float32(1.5), "model_3") == 1.5
    assert as_float(np.array(2.0), "model_3") == 2.0
    assert as_float(7, "model_3") == 7.0
    for bad in ("abc", None, [1.0, 2.0], {"a": 1}):
        with pytest.raises(TypeError, match="model_3: complexity returned"):
            as_float(bad, "model_3")
    for bad in (float("nan"), np.inf, -np.inf, np.float32("nan"), "nan"):
        with pytest.raises(ValueError, match="model_3: complexity returned .*finite"):
            as_float(bad, "model_3")


def test_zip_with_files_at_top_level_or_in_one_folder(tmp_path):
    for nested in (False, True):
        archive = zip_folder(SUBMISSIONS / "program_dir_helper", tmp_path / f"s{nested}.zip",
                             nested=nested)
        with sub.prepared_submission(archive) as root:
            assert (root / "complexity.py").is_file()
            assert (root / "helper" / "scale.json").is_file()
            kept = root
        assert not kept.exists()  # the temporary folder is gone


@pytest.mark.parametrize("name, why", [
    ("../evil.py", "'..'"),
    ("/etc/evil.py", "absolute path"),
    ("ok/../../evil.py", "'..'"),
])
def test_unsafe_zip_is_refused_before_writing(tmp_path, name, why):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("complexity.py", "def complexity(model, dataset):\n  return 0.0\n")
        zf.writestr(name, "x")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(PGDLError, match=why):
        sub.unpack_submission(archive, dest)
    assert list(dest.iterdir()) == []


def test_zip_with_symlink_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("complexity.py", "def complexity(model, dataset):\n  return 0.0\n")
        info = zipfile.ZipInfo("helper")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(PGDLError, match="symbolic link"):
        sub.unpack_submission(archive, tmp_path)


def test_submission_without_complexity_py(tmp_path, cli, toy_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(PGDLError, match="no complexity.py"):
        sub.find_submission_root(tmp_path)
    archive = tmp_path / "empty.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("readme.txt", "nothing")
    result = cli(["run-submission", str(archive), str(toy_path), str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "no complexity.py" in result.output


def test_unknown_model_id_is_a_user_error(cli, toy_path, tmp_path):
    result = cli(["run-submission", str(SUBMISSIONS / "vc_dimension"), str(toy_path),
                  str(tmp_path / "out"), "--models", "model_0,model_99"])
    assert result.exit_code == 2
    assert "model_99" in result.output
    assert "Traceback" not in result.output


def test_select_models_accepts_bare_numbers(toy_path):
    from pgdl_measures.tasks import find_tasks

    tasks = find_tasks(toy_path)
    assert sub.select_models(tasks, ["1", "model_10"]) == {"pgdl_toy_data": ["model_1", "model_10"]}
    assert len(sub.select_models(tasks, None)["pgdl_toy_data"]) == 18


def test_help_describes_the_command(cli):
    result = cli(["run-submission", "--help"])
    assert result.exit_code == 0
    for text in ("SUBMISSION", "--time-budget", "--keras", "--models", "--jobs", "EXCEEDED"):
        assert text in result.output


# ------------------------------------------------------------------------ end to end (children)


def test_baselines_match_hand_computations(tmp_path, cli, toy_path, two_runs):
    """VC dimension (as a nested zip, run by :func:`two_runs`), distance from init, Jacobian
    norm, two models each.

    Both models of a submission run in one child (--reuse-process), as in the competition.
    """
    models = ["model_0", "model_10"]  # 1 hidden layer of 64 units; 3 hidden layers of 128
    values = {"vc": {m: predict(two_runs[1])[m] for m in models}}
    for name, submission in [("dist", SUBMISSIONS / "distance_from_init"),
                             ("jac", SUBMISSIONS / "jacobian_norm")]:
        out = tmp_path / name
        result = cli(["run-submission", str(submission), str(toy_path), str(out),
                      "--models", ",".join(models), "--reuse-process"])
        assert result.exit_code == 0, result.output
        values[name] = predict(out)
        assert list(values[name]) == models
        assert not (out / "pgdl_toy_data.errors.json").exists()

    x, _ = toy_train(toy_path)
    for model_id in models:
        model_dir = toy_path / model_id
        # VC dimension: W * L * log W from the architecture alone
        shapes = dense_shapes(model_dir)
        num_params = sum(i * u + u for i, u in shapes)
        assert values["vc"][model_id] == pytest.approx(num_params * len(shapes) * np.log(num_params), rel=1e-9)
        # distance from initialisation from the two weight files
        trained = [w for pair in read_weights(model_dir / "weights.hdf5") for w in pair]
        initial = [w for pair in read_weights(model_dir / "weights_init.hdf5") for w in pair]
        expected = np.sqrt(sum(np.sum((a.astype(np.float64) - b) ** 2) for a, b in zip(trained, initial)))
        assert expected > 0
        assert values["dist"][model_id] == pytest.approx(expected, rel=1e-5)
        # Jacobian norms: d logits/d x = W_1 D_1 ... W_L per example; d logits/d h_L = W_L^T
        outs = numpy_forward(model_dir, x)
        weights = read_weights(model_dir / "weights.hdf5")
        config = json.loads((model_dir / "config.json").read_text())["model_config"]
        norms = []
        for n in range(len(x)):
            jac = np.eye(x.shape[1])
            for k, (kernel, _) in enumerate(weights):
                jac = jac @ kernel
                act = config[k].get("activation")
                if act == "relu":
                    jac = jac * (outs[k + 1][n] > 0)
                elif act == "tanh":
                    jac = jac * (1 - outs[k + 1][n] ** 2)
            norms.append(np.linalg.norm(jac))
        expected = np.mean(norms) + np.linalg.norm(weights[-1][0])
        assert values["jac"][model_id] == pytest.approx(expected, rel=1e-4)


#: the models tests/competition/submissions/misbehaves meets, in the order one child runs them
MISBEHAVING = {  # model: (value in the .predict, error message, stage)
    "model_0": (None, "ValueError: deliberate failure in complexity", "complexity"),
    "model_1": (None, "model_1: complexity returned str 'not a number'", "complexity"),
    "model_2": ("EXCEEDED", None, None),  # never returns: killed at the budget, then a restart
    "model_3": (None, "the child process died (exit status 3) while running this model", "crash"),
    "model_10": (None, "model_10: complexity returned nan", "complexity"),
    "model_11": (None, "model_11: complexity returned inf", "complexity"),
    "model_12": (2.0, None, None),  # after starting `setsid sleep 1000`
}
MISBEHAVING_BUDGET = 4.0


#: $PGDL_WARM_UP_SECONDS and the per-model budget of the warm_up runs (:func:`overlapping_runs`)
WARM_UP_SECONDS, WARM_UP_BUDGET = 6.0, 5.0


@pytest.fixture(scope="module")
def overlapping_runs(toy_path, tmp_path_factory, cli):
    """Runs of fixture submissions started together, so that the waits of some (a model that
    hangs until the budget kills it, a warm-up sleep) overlap the start-up of the others (each
    child imports TensorFlow: seconds of CPU).

    In the background:

    * misbehaves: a `pgdl run-submission` process of its own, --reuse-process over
      :data:`MISBEHAVING` (three children: the hang and the crash each cost a restart, no more),
      its environment carrying a marker; the live processes carrying the marker are listed as
      it ends;
    * warm_up, through :func:`run_submission` in two threads: per model (the default) on
      model_0, and per task with --reuse-process on model_0 and model_1.

    Meanwhile, `pgdl run-submission` in this process, one after the other: missing_module on
    model_0 and model_1, legacy_idioms on model_0, program_dir_helper on model 0.
    """
    import os
    import signal
    import subprocess
    import sys
    import uuid
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    root = tmp_path_factory.mktemp("overlapping")
    marker = f"pgdl-test-{uuid.uuid4().hex}"
    log = root / "misbehaves.log"
    command = [sys.executable, "-c", "from pgdl_measures.cli import main; main()", "run-submission",
               str(SUBMISSIONS / "misbehaves"), str(toy_path), str(root / "misbehaves"),
               "--models", ",".join(MISBEHAVING), "--reuse-process", "--time-budget", str(MISBEHAVING_BUDGET)]
    warm_up = SUBMISSIONS / "warm_up"
    with open(log, "w") as out:
        misbehaves = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, text=True,
                                      env={**os.environ, "PGDL_TEST_MARKER": marker})
    try:
        with pytest.MonkeyPatch.context() as mp, ThreadPoolExecutor(2) as pool:
            mp.setenv("PGDL_WARM_UP_SECONDS", str(WARM_UP_SECONDS))
            per_model = pool.submit(sub.run_submission, warm_up, toy_path, root / "per_model",
                                    time_budget=WARM_UP_BUDGET, models=["model_0"])
            per_task = pool.submit(sub.run_submission, warm_up, toy_path, root / "per_task",
                                   time_budget=WARM_UP_BUDGET, budget_rule="per-task", reuse_process=True,
                                   models=["model_0", "model_1"])  # 10 s for both: 4 s to load them
            missing = cli(["run-submission", str(SUBMISSIONS / "missing_module"), str(toy_path),
                           str(root / "missing_module"), "--models", "model_0,model_1"])
            legacy = cli(["run-submission", str(SUBMISSIONS / "legacy_idioms"), str(toy_path),
                          str(root / "legacy"), "--models", "model_0"])
            program_dir = cli(["run-submission", str(SUBMISSIONS / "program_dir_helper"), str(toy_path),
                               str(root / "program_dir"), "--models", "0"])
            per_model.result()
            per_task_run = per_task.result()
        exit_code = misbehaves.wait(timeout=600)
        survivors = _processes_with(marker)
    finally:
        if misbehaves.poll() is None:
            misbehaves.kill()
            misbehaves.wait()
        for pid in _processes_with(marker):
            os.kill(pid, signal.SIGKILL)
    return SimpleNamespace(misbehaves=SimpleNamespace(exit_code=exit_code, output=log.read_text()),
                           misbehaves_out=root / "misbehaves", survivors=survivors,
                           missing=missing, missing_out=root / "missing_module",
                           per_model_out=root / "per_model", per_task_out=root / "per_task",
                           per_task_run=per_task_run, legacy=legacy, legacy_out=root / "legacy",
                           program_dir=program_dir, program_dir_out=root / "program_dir")


def test_legacy_idioms_and_program_dir(overlapping_runs, toy_path):
    runs = overlapping_runs
    x, _ = toy_train(toy_path)
    assert runs.legacy.exit_code == 0, runs.legacy.output
    hidden = numpy_forward(toy_path / "model_0", x)[-2]
    expected = np.mean(np.sum(hidden ** 2, axis=1)) / hidden.shape[1]
    assert predict(runs.legacy_out)["model_0"] == pytest.approx(expected, rel=1e-5)

    assert runs.program_dir.exit_code == 0, runs.program_dir.output
    # 2.5 (from helper/scale.json) * sum of the first example, shards in natural order
    assert predict(runs.program_dir_out)["model_0"] == pytest.approx(2.5 * float(np.sum(x[0])), rel=1e-6)


def test_misbehaving_models_are_recorded_and_the_run_goes_on(overlapping_runs):
    """An exception, a non-float, NaN, infinity, a hang and a crash: each is its model's only."""
    assert overlapping_runs.misbehaves.exit_code == 1, overlapping_runs.misbehaves.output
    assert predict(overlapping_runs.misbehaves_out) == {m: v for m, (v, _, _) in MISBEHAVING.items() if v is not None}
    errors = json.loads((overlapping_runs.misbehaves_out / "pgdl_toy_data.errors.json").read_text())
    failing = {m: (message, stage) for m, (_, message, stage) in MISBEHAVING.items() if message}
    assert list(errors) == list(failing)
    for model_id, (message, stage) in failing.items():
        assert message in errors[model_id]["error"] and errors[model_id]["stage"] == stage
        assert message in overlapping_runs.misbehaves.output  # printed
    assert "Traceback" in errors["model_0"]["stderr_tail"]
    assert "complexity.py" in errors["model_0"]["stderr_tail"]  # the submission's line is in it
    # NaN and infinity are failures, never a bare NaN in the .predict file
    assert "NaN" not in (overlapping_runs.misbehaves_out / "pgdl_toy_data.predict").read_text()


def test_hang_and_crash_in_a_reused_process_restart_it(overlapping_runs):
    """A model over budget or killing the child costs a restart, no more; outcomes are reported
    in order as they come."""
    lines = [line for line in overlapping_runs.misbehaves.output.splitlines()
             if line.startswith("pgdl_toy_data/model_")]
    assert [line.split(":")[0].split("/")[1] for line in lines] == list(MISBEHAVING)
    (hang,) = [line for line in lines if line.startswith("pgdl_toy_data/model_2:")]
    assert float(hang.split("(")[1].split(" s)")[0]) >= MISBEHAVING_BUDGET
    assert "5 of 7 models failed" in overlapping_runs.misbehaves.output


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_processes_a_submission_starts_in_a_new_session_do_not_survive(overlapping_runs):
    assert predict(overlapping_runs.misbehaves_out)["model_12"] == 2.0  # it started `setsid sleep 1000`
    assert overlapping_runs.survivors == []  # which was killed with the child


def test_an_import_error_is_seen_once(overlapping_runs):
    """The submission does not import: the first model's error, the second not run again."""
    assert overlapping_runs.missing.exit_code == 1, overlapping_runs.missing.output
    message = "No module named 'pgdl_no_such_module_2020'"
    assert message in overlapping_runs.missing.output
    assert predict(overlapping_runs.missing_out) == {}
    errors = json.loads((overlapping_runs.missing_out / "pgdl_toy_data.errors.json").read_text())
    assert list(errors) == ["model_0", "model_1"]
    for model_id in errors:
        assert message in errors[model_id]["error"] and errors[model_id]["stage"] == "import"
    assert "Traceback" in errors["model_0"]["stderr_tail"]
    assert "complexity.py" in errors["model_0"]["stderr_tail"]
    assert "not run" in errors["model_1"]["stderr_tail"]


def test_stale_errors_file_is_removed(tmp_path):
    (tmp_path / "t.errors.json").write_text('{"model_0": {"error": "old"}}')
    files = sub.TaskFiles("t", tmp_path)
    files.record(sub.ModelOutcome("model_1", sub.EXCEEDED))
    assert json.loads((tmp_path / "t.errors.json").read_text()) == {"model_0": {"error": "old"}}
    files.record(sub.ModelOutcome("model_0", 1.5))  # the failed model, run again
    assert predict(tmp_path, "t") == {"model_0": 1.5, "model_1": "EXCEEDED"}
    assert not (tmp_path / "t.errors.json").exists()


def test_results_are_written_as_they_come_and_never_as_bare_nan(tmp_path):
    files = sub.TaskFiles("t", tmp_path)
    files.record(sub.ModelOutcome("model_10", 2.0))
    assert predict(tmp_path, "t") == {"model_10": 2.0}  # on disk after the first model
    files.record(sub.ModelOutcome("model_2", error="ValueError: boom", stage="complexity"))
    files.record(sub.ModelOutcome("model_1", 1.0))
    assert list(predict(tmp_path, "t")) == ["model_1", "model_10"]  # natural order
    assert list(json.loads((tmp_path / "t.errors.json").read_text())) == ["model_2"]
    with pytest.raises(ValueError):  # a NaN that got this far is refused, the file stays JSON
        files.record(sub.ModelOutcome("model_3", float("nan")))
    assert predict(tmp_path, "t") == {"model_1": 1.0, "model_10": 2.0}
    # a rerun continues from the files; --restart starts afresh
    assert sub.TaskFiles("t", tmp_path).done() == {"model_1", "model_10"}
    assert sub.TaskFiles("t", tmp_path, restart=True).done() == set()


def test_a_predict_file_that_cannot_be_continued_is_a_user_error(tmp_path):
    for text in ('[1, 2]', '{"model_0": "x"}', '{"model_0": true}', "{"):
        (tmp_path / "t.predict").write_text(text)
        with pytest.raises(PGDLError, match="t.predict"):
            sub.TaskFiles("t", tmp_path)
        sub.TaskFiles("t", tmp_path, restart=True)  # fine with --restart


def test_unwritable_output_folder_is_a_user_error(cli, toy_path, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    result = cli(["run-submission", str(SUBMISSIONS / "vc_dimension"), str(toy_path),
                  str(tmp_path / "file" / "out"), "--models", "0"])
    assert result.exit_code == 2, result.output
    assert "cannot write to the results folder" in result.output
    assert "Traceback" not in result.output
    files = sub.TaskFiles("t", tmp_path / "file")
    with pytest.raises(PGDLError, match="cannot write the results"):  # mid-run (say, disk full)
        files.record(sub.ModelOutcome("model_0", 1.0))


@pytest.mark.parametrize("names, why", [
    (["complexity.py", "a", "a/b.py"], "file and a folder"),
    (["complexity.py", "a/b.py", "a"], "file and a folder"),
    (["complexity.py", "helper.py", "helper.py"], "duplicate"),
    (["complexity.py", "helper.py", "./helper.py"], "duplicate"),
    (["complexity.py", "d/" + "n" * 300 + ".py"], "too long"),
])
def test_zip_with_clashing_duplicate_or_overlong_names_is_refused(tmp_path, names, why):
    import warnings

    archive = tmp_path / "bad.zip"
    with warnings.catch_warnings(), zipfile.ZipFile(archive, "w") as zf:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        for name in names:
            zf.writestr(name, "x = 1\n")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(PGDLError, match=why) as info:
        sub.unpack_submission(archive, dest)
    assert "bad.zip" in str(info.value) and "\n" not in str(info.value)
    assert list(dest.iterdir()) == []


def test_idioms_under_legacy_keras_2_and_keras_3(tmp_path, toy_path, monkeypatch):
    """Which 2020 idioms work in each mode (the table of sample_submission/README.md)."""
    reports = {}
    for keras in ("2", "3"):
        report = tmp_path / f"idioms_{keras}.json"
        monkeypatch.setenv("PGDL_IDIOM_REPORT", str(report))
        run = sub.run_submission(SUBMISSIONS / "idiom_probe", toy_path, tmp_path / keras,
                                 keras=keras, models=["model_0"])
        assert run.failed == 0, run.tasks[0].errors()
        reports[keras] = json.loads(report.read_text())
    fails_everywhere = {"K.gradients (symbolic)"}  # also failed under TensorFlow 2.2's eager mode
    assert {k for k, v in reports["2"].items() if v != "ok"} == fails_everywhere
    assert {k for k, v in reports["3"].items() if v != "ok"} == fails_everywhere | {
        "np.int, np.float, np.object, np.float_, np.NaN",  # given back in legacy mode only
        "model.input", "model.output", "tf.keras.backend.function", "layer.input_shape",
        "layer.output_shape", "v.get_shape()", "optimizers.Adam(lr=...)",
        "model.save_weights('x.h5')", "model.compile + evaluate",
    }
    for idiom in ("model(x, tape=tape)", "layer._last_seen_input", "model.initial_weights",
                  "isinstance(layer, tf.keras.layers.Dense)", "model.predict(dataset.batch(n))"):
        assert reports["3"][idiom] == "ok"


def test_missing_input_folder_is_a_user_error(cli, tmp_path):
    result = cli(["run-submission", str(SUBMISSIONS / "vc_dimension"), str(tmp_path),
                  str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "no PGDL task" in result.output


def test_keras_2_without_tf_keras_is_a_user_error(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tf_keras" else real(name, *a))
    with pytest.raises(PGDLError, match="tf_keras"):
        sub.child_environment("2")
    assert sub.child_environment("3")["TF_USE_LEGACY_KERAS"] == "0"
    with pytest.raises(PGDLError, match="unknown Keras mode"):
        sub.child_environment("1")


def _fake_run_models(calls: list):
    """A stand-in for run_models (no child process): every model gets 7.0; logs what it ran."""
    def run_models(child, models, budget, *, on_outcome, cancel=None):
        calls.append([m for m, _ in models])
        for model_id, _ in models:
            on_outcome(sub.ModelOutcome(model_id, 7.0, seconds=0.0))
    return run_models


def test_a_rerun_continues_and_restart_starts_afresh(tmp_path, cli, toy_path, monkeypatch):
    calls = []
    monkeypatch.setattr(sub, "run_models", _fake_run_models(calls))
    out = tmp_path / "out"
    vc = str(SUBMISSIONS / "vc_dimension")
    assert cli(["run-submission", vc, str(toy_path), str(out), "--models", "0"]).exit_code == 0
    assert json.loads((out / "pgdl_toy_data.run.json").read_text())["budget_rule"] == "per-model"
    # as if the run had been interrupted after model_0, with model_1 failed, model_3 over budget
    (out / "pgdl_toy_data.predict").write_text('{"model_0": 123.0, "model_3": "EXCEEDED"}')
    record = json.loads((out / "pgdl_toy_data.run.json").read_text())
    (task,) = find_tasks(toy_path)
    record["models"]["model_3"] = task.model_digest("model_3")
    (out / "pgdl_toy_data.run.json").write_text(json.dumps(record))
    (out / "pgdl_toy_data.errors.json").write_text('{"model_1": {"error": "boom"}}')
    calls.clear()
    result = cli(["run-submission", vc, str(toy_path), str(out), "--models", "0,1,2,3"])
    assert result.exit_code == 0, result.output
    assert "2 kept from an earlier run" in result.output
    assert calls == [["model_1"], ["model_2"]]  # model_0 was not run again, the failed one was
    assert predict(out) == {"model_0": 123.0, "model_1": 7.0, "model_2": 7.0,
                            "model_3": "EXCEEDED"}
    assert not (out / "pgdl_toy_data.errors.json").exists()
    calls.clear()  # another budget: what was EXCEEDED runs again, values are kept
    result = cli(["run-submission", vc, str(toy_path), str(out), "--models", "0,3",
                  "--time-budget", "600"])
    assert result.exit_code == 0, result.output
    assert calls == [["model_3"]] and predict(out)["model_3"] == 7.0
    calls.clear()
    result = cli(["run-submission", vc, str(toy_path), str(out), "--models", "0", "--restart"])
    assert result.exit_code == 0, result.output
    assert calls == [["model_0"]] and predict(out) == {"model_0": 7.0}


def test_a_rerun_never_mixes_in_another_submissions_values(tmp_path, cli, toy_path, monkeypatch):
    monkeypatch.setattr(sub, "run_models", _fake_run_models([]))
    out = tmp_path / "out"
    args = [str(toy_path), str(out), "--models", "0"]
    assert cli(["run-submission", str(SUBMISSIONS / "vc_dimension"), *args]).exit_code == 0
    for other in (["run-submission", str(SUBMISSIONS / "distance_from_init"), *args],
                  ["run-submission", str(SUBMISSIONS / "vc_dimension"), *args, "--keras", "3"]):
        result = cli(other)
        assert result.exit_code == 2, result.output
        assert "cannot continue it" in result.output and "--restart" in result.output
        assert "Traceback" not in result.output
    (out / "pgdl_toy_data.run.json").unlink()  # a .predict of unknown origin
    result = cli(["run-submission", str(SUBMISSIONS / "vc_dimension"), *args])
    assert result.exit_code == 2 and "says which submission wrote it" in result.output
    archive = zip_folder(SUBMISSIONS / "vc_dimension", tmp_path / "vc.zip", nested=True)
    result = cli(["run-submission", str(archive), *args, "--restart"])
    assert result.exit_code == 0, result.output
    result = cli(["run-submission", str(SUBMISSIONS / "vc_dimension"), *args])  # same, unzipped
    assert result.exit_code == 0 and "1 kept from an earlier run" in result.output


def _copy_task(toy: Path, folder: Path, models: dict[str, str]) -> Path:
    """A task named like the sample task: its data, and model folders copied from its models."""
    import shutil

    task = folder / "pgdl_toy_data"
    shutil.copytree(toy / "dataset_1", task / "dataset_1")
    for name, source in models.items():
        shutil.copytree(toy / source, task / name)
    return task


def test_values_of_a_task_with_other_contents_are_not_kept(tmp_path, cli, toy_path, monkeypatch):
    """A rerun on another task of the same name used to keep the first task's values ("2 kept
    from an earlier run"); values are keyed on the model's files and the task's data."""
    calls = []
    monkeypatch.setattr(sub, "run_models", _fake_run_models(calls))
    out = tmp_path / "out"
    vc = str(SUBMISSIONS / "vc_dimension")
    first = _copy_task(toy_path, tmp_path / "first", {"model_0": "model_0", "model_1": "model_1"})
    assert cli(["run-submission", vc, str(first), str(out)]).exit_code == 0
    other = _copy_task(toy_path, tmp_path / "other", {"model_0": "model_2", "model_1": "model_1"})
    calls.clear()
    result = cli(["run-submission", vc, str(other), str(out)])
    assert result.exit_code == 0, result.output
    assert calls == [["model_0"]]  # model_0 has other files: run again; model_1 is the same
    assert "1 kept from an earlier run, 1 earlier values dropped" in result.output
    record = json.loads((out / "pgdl_toy_data.run.json").read_text())
    (task,) = find_tasks(other)
    assert record["models"] == task.model_digests()


def test_a_failed_write_mid_run_keeps_what_was_written(tmp_path, toy_path, monkeypatch):
    from pgdl_measures.competition import files as files_module

    real, writes, calls = files_module.atomic_write, [], []

    def failing(path, data):
        if Path(path).suffix == ".predict":
            writes.append(path)
            if len(writes) > 1:
                raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(sub, "run_models", _fake_run_models(calls))
    monkeypatch.setattr(files_module, "atomic_write", failing)
    with pytest.raises(PGDLError, match="No space left on device") as info:
        sub.run_submission(SUBMISSIONS / "vc_dimension", toy_path, tmp_path,
                           models=["model_0", "model_1", "model_2"])
    assert "pgdl_toy_data.predict" in str(info.value)
    assert predict(tmp_path) == {"model_0": 7.0}  # the first model's value is on disk
    assert calls == [["model_0"], ["model_1"]]  # and the run stopped


def _processes_with(marker: str) -> list[int]:
    """Live processes whose environment holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "environ").read_bytes():
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
        except (OSError, IndexError):
            pass
    return found


def test_per_task_budget_pays_for_a_one_off_warm_up(overlapping_runs):
    """The competition's rule: a slow first model borrows the time the others leave."""
    assert predict(overlapping_runs.per_model_out) == {"model_0": "EXCEEDED"}  # per model (the default)
    assert predict(overlapping_runs.per_task_out) == {"model_0": 2.0, "model_1": 2.0}
    assert overlapping_runs.per_task_run.tasks[0].outcomes["model_0"].seconds >= WARM_UP_SECONDS


def test_per_task_budget_spent_marks_the_models_left_exceeded():
    from scoring.rules import TimeBudget

    budget = TimeBudget(2.0, "per-task", 3)
    assert budget.allowance() == 6.0 and not budget.spent_up
    budget.spend(5.0)
    assert budget.allowance() == 1.0 and budget.deadline(10.0) == 11.0
    budget.spend(1.5)
    assert budget.spent_up and budget.allowance() == 0.0
    per_model = TimeBudget(2.0, "per-model", 3)
    per_model.spend(100.0)
    assert per_model.allowance() == 2.0 and not per_model.spent_up
    # evaluate's rule: a model's stored results' seconds are credited against its budget
    assert per_model.allowance(credit=0.5) == 1.5 and per_model.deadline(10.0, credit=3.0) == 10.0
    with pytest.raises(PGDLError, match="unknown budget rule"):
        TimeBudget(2.0, "per-century", 3)


def test_a_cancelled_run_kills_its_child_within_a_second(tmp_path):
    """Ctrl-C or a failed write sets the run's stop event: the child in flight goes at once."""
    import threading
    import time

    fake_python = tmp_path / "python"  # a child that starts and never reports
    fake_python.write_text("#!/bin/sh\nexec sleep 1000\n")
    fake_python.chmod(0o755)
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    start = time.monotonic()
    from scoring.rules import TimeBudget

    child = sub.IngestionChild.create(SUBMISSIONS / "vc_dimension", tmp_path, keras="3",
                                      setup_timeout=100, python=str(fake_python))
    outcomes = sub.run_models(child, [("model_0", tmp_path)], TimeBudget(), cancel=cancel)
    assert outcomes == [] and time.monotonic() - start < 5


# ------------------------------------------------------------------------ two real runs at once


@pytest.fixture(scope="module")
def two_runs(toy_path, tmp_path_factory):
    """Two `pgdl run-submission` processes of vc_dimension started together on one output
    folder, with other --models, each in one child process: model_0 and model_10 from the
    submission zipped (nested) in one; in the other, from the submission's folder (the same
    digest), model_1, model_2 (whose weights.hdf5 is garbage) and model_3 (whose config.json has
    a list for a layer_name)."""
    import os
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("two_runs")
    task = _copy_task(toy_path, root, {m: m for m in ("model_0", "model_1", "model_2", "model_3",
                                                      "model_10")})
    (task / "model_2" / "weights.hdf5").write_bytes(b"not an HDF5 file\n" * 64)
    config = json.loads((task / "model_3" / "config.json").read_text())
    config["model_config"][0]["layer_name"] = [config["model_config"][0]["layer_name"]]
    (task / "model_3" / "config.json").write_text(json.dumps(config))
    out = root / "out"
    archive = zip_folder(SUBMISSIONS / "vc_dimension", root / "vc.zip", nested=True)
    command = [sys.executable, "-c", "from pgdl_measures.cli import main; main()", "run-submission"]
    runs = [subprocess.Popen([*command, str(submission), str(task), str(out), *args,
                              "--reuse-process"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=dict(os.environ))
            for submission, args in ((archive, ["--models", "0,10"]),
                                     (SUBMISSIONS / "vc_dimension", ["--models", "1,2,3"]))]
    results = [(run.wait(timeout=600), *run.communicate()) for run in runs]
    return task, out, results


def test_two_runs_on_one_folder_take_turns_and_keep_both(two_runs):
    """Both used to report success while the .predict kept one run's values only."""
    task, out, ((code_a, _, err_a), (code_b, _, err_b)) = two_runs
    assert code_a == 0, err_a
    assert code_b == 1, err_b  # model_2 and model_3 failed
    assert list(predict(out)) == ["model_0", "model_1", "model_10"]
    assert list(json.loads((out / "pgdl_toy_data.errors.json").read_text())) == ["model_2", "model_3"]
    waited = ["waiting for it to finish" in err for err in (err_a, err_b)]
    assert sorted(waited) == [False, True]


def test_garbage_weights_or_config_are_one_line_naming_the_file(two_runs):
    """Garbage weights gave a traceback naming no file; a list for a layer_name gave the clean
    line followed by the child's traceback."""
    task, out, (_, (_, _, err)) = two_runs
    lines = [line for line in err.splitlines() if "model_2" in line or "model_3" in line]
    assert lines[0].startswith("pgdl_toy_data/model_2: ERROR at load_model: PGDLError: "
                               f"{task / 'model_2' / 'weights.hdf5'}: cannot load these weights")
    assert lines[1].startswith("pgdl_toy_data/model_3: ERROR at load_model: PGDLError: "
                               f"{task / 'model_3' / 'config.json'}: layer 0 of model_config must be")
    assert "Traceback" not in err
