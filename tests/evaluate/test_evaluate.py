"""The evaluate job through the library: arguments, planning, failures, predictions, reruns."""

from __future__ import annotations

import json
import math
import shutil
import sys

import pytest
from pgdl_test_measures import CrashOn, FailOn, Slow

from pgdl_measures.errors import PGDLError
from pgdl_measures.evaluate.pipeline import (
    _as_measure,
    _plan,
    current_backend,
    evaluate,
    resolve_measures,
    write_predictions,
)
from pgdl_measures.evaluate.store import ResultStore, Row, canonical_params
from pgdl_measures.measures.base import Measure
from pgdl_measures.measures.vc_dimension import VCDimension
from pgdl_measures.tasks import find_tasks
from scoring.rules import Status


def test_resolve_measures():
    assert [m.name for m in resolve_measures(["vc_dimension"], {"vc_dimension": {"use_input_size": True}})] \
        == ["vc_dimension"]
    assert "vc_dimension" in [m.name for m in resolve_measures()]
    with pytest.raises(PGDLError, match="unknown measure 'nope'; available: .*vc_dimension"):
        resolve_measures(["nope"])
    with pytest.raises(PGDLError, match="has no parameter sigma"):
        resolve_measures(["vc_dimension"], {"vc_dimension": {"sigma": 1}})
    with pytest.raises(PGDLError, match="not among the measures"):
        resolve_measures(["vc_dimension"], {"sharpness": {"sigma": 1}})


def test_measures_must_be_importable_by_the_worker():
    class Local(Measure):
        name = "local"

    with pytest.raises(PGDLError, match="must be importable"):
        _as_measure(Local)
    assert _as_measure(VCDimension).params == {"use_input_size": False}
    with pytest.raises(PGDLError, match="not a measure"):
        _as_measure(3)


def _put(store, task, model, measure, status, seconds=1.0, backend="tensorflow", contents="c"):
    store.put(Row(task, model, measure.name, canonical_params(measure.params), backend, status,
                  value=1.0 if status == Status.OK else None, error=None if status == Status.OK else "x", seconds=seconds,
                  contents=contents))


def test_plan_skips_stored_results_and_counts_their_time(toy_path, tmp_path):
    task = find_tasks(toy_path)[0]
    vc, fails = VCDimension(), FailOn(model="model_1")
    selected = {task.name: ["model_0", "model_1"]}
    contents = {(task.name, "model_0"): "c", (task.name, "model_1"): "c"}
    with ResultStore.in_folder(tmp_path) as store:
        _put(store, task.name, "model_0", vc, Status.OK, 2.0)
        _put(store, task.name, "model_0", fails, Status.EXCEEDED, 3.0)
        _put(store, task.name, "model_1", vc, Status.ERROR, 0.5)
        _put(store, task.name, "model_1", fails, Status.OK, backend="jax")  # another backend: not a result here
        _put(store, task.name, "model_1", VCDimension(use_input_size=True), Status.OK)  # other parameters
        _put(store, task.name, "model_1", fails, Status.OK, contents="other")  # other contents of the task
        jobs, reused, notes = _plan([task], [vc, fails], store, "tensorflow", selected, False, contents)
        assert reused == 3
        assert [(m, [x.name for x in p], c) for _, m, p, c in jobs] == [("model_1", ["test_fails"], 0.5)]
        assert len(notes) == 1 and "1 stored results were computed on other contents" in notes[0]
        jobs, reused, _ = _plan([task], [vc, fails], store, "tensorflow", selected, True, contents)
        assert reused == 1
        assert [(m, [x.name for x in p], c) for _, m, p, c in jobs] == [
            ("model_0", ["test_fails"], 2.0), ("model_1", ["vc_dimension", "test_fails"], 0.0)]


def test_select_models_and_backend(toy_path, monkeypatch):
    task = find_tasks(toy_path)[0]
    assert task.select_models(["model_10", "2"]) == ["model_2", "model_10"]  # natural order, not as given
    assert len(task.select_models(None)) == 18
    with pytest.raises(PGDLError, match="has no model model_99"):
        task.select_models(["2", "model_99"])
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    if "keras" not in sys.modules:  # once imported, Keras's own choice wins
        assert current_backend() == "jax"


def _rows(measure, statuses):
    out = {}
    for i, status in enumerate(statuses):
        out[f"model_{i}"] = None if status is None else Row(
            "toy", f"model_{i}", measure, "{}", "tensorflow", status, value=float(i + 1) if status == Status.OK else None,
            error=None if status == Status.OK else f"{status} {i}")
    return out


def test_write_predictions(tmp_path):
    stale = tmp_path / "test_fails" / "toy.predict"
    stale.parent.mkdir()
    stale.write_text("{}")
    results = {("toy", "test_slow"): _rows("test_slow", [Status.OK, Status.EXCEEDED, Status.OK]),
               ("toy", "test_fails"): _rows("test_fails", [Status.OK, Status.ERROR, Status.OK]),
               ("toy", "vc_dimension"): _rows("vc_dimension", [Status.OK, None])}
    written, notes = write_predictions(results, [Slow(), FailOn(), VCDimension()], tmp_path)
    assert list(written) == [("test_slow", "toy")]
    # direction -1: the prediction is the negated value, as the competition read predictions
    assert json.loads(written[("test_slow", "toy")].read_text()) == \
        {"model_0": -1.0, "model_1": "EXCEEDED", "model_2": -3.0}
    assert not stale.exists()
    assert len(notes) == 2
    assert "no test_fails/toy.predict: 1 of 3 models" in notes[0] and "model_1: error 1" in notes[0]
    assert "model_1: not computed" in notes[1]


@pytest.fixture
def four_models(toy_path, tmp_path):
    """A copy of the sample task with models 0 to 3, model_3's weights truncated."""
    task = tmp_path / "pgdl_toy_data"
    shutil.copytree(toy_path / "dataset_1", task / "dataset_1")
    specs = json.loads((toy_path / "model_configs.json").read_text())
    (task / "model_configs.json").write_text(json.dumps({str(k): specs[str(k)] for k in range(4)}))
    for k in range(4):
        shutil.copytree(toy_path / f"model_{k}", task / f"model_{k}")
    weights = task / "model_3" / "weights.hdf5"
    data = weights.read_bytes()
    weights.unlink()
    weights.write_bytes(data[:100])
    return task


def test_failures_are_recorded_and_the_run_goes_on(four_models, tmp_path):
    """A model that does not load, a measure that raises and one that kills the worker fail on
    their model only; the report failing at the end loses no stored result; a rerun computes
    nothing."""
    out = tmp_path / "out"
    (out / "report.html").mkdir(parents=True)  # makes writing the report fail at the very end
    models = ["model_0", "model_1", "model_2", "model_3"]
    measures = ["vc_dimension", FailOn(model="model_1"), CrashOn(model="model_2")]
    with pytest.raises(PGDLError, match="cannot write the report"):
        evaluate([four_models], measures, out, n_resamples=10)
    with ResultStore.in_folder(out) as store:
        status = {(r.model, r.measure): r.status for r in store.rows()}
        errors = {(r.model, r.measure): r.error for r in store.rows() if r.status == Status.ERROR}
    assert len(status) == 12
    assert errors.keys() == {("model_1", "test_fails"), ("model_2", "test_crashes"), ("model_3", "vc_dimension"),
                             ("model_3", "test_fails"), ("model_3", "test_crashes")}
    assert "deliberate failure on model_1" in errors[("model_1", "test_fails")]
    assert "killed the worker" in errors[("model_2", "test_crashes")] and "exit status 7" in errors[
        ("model_2", "test_crashes")]
    assert "weights.hdf5: not a readable HDF5 file" in errors[("model_3", "vc_dimension")]
    (out / "report.html").rmdir()
    result = evaluate([four_models], measures, out, models=models[:3], n_resamples=10)
    assert result.stats.total_computed == 0 and result.stats.reused == 9
    # the outputs reflect everything stored for the task, model_3's errors included, not only the
    # three models of this run: no .predict (the competition needed every model)
    assert result.predictions == {}
    assert any("no vc_dimension/pgdl_toy_data.predict: 1 of 4 models" in n for n in result.notes)
    assert any("no test_fails/pgdl_toy_data.predict" in n for n in result.notes)
    assert any("no test_crashes/pgdl_toy_data.predict" in n for n in result.notes)
    # ranked on the models that have a value, and marked as partial
    score = result.ranking.scores["kendall_tau"]["test_fails"]["pgdl_toy_data"]
    assert (score.n_models, score.n_total) == (2, 4) and score.partial
    assert not math.isnan(result.ranking.scores["kendall_tau"]["vc_dimension"]["pgdl_toy_data"].value)
    assert (out / "report.html").is_file() and (out / "report.md").is_file()


def test_bad_arguments(toy_path, tmp_path):
    with pytest.raises(PGDLError, match="no task has model model_99"):
        evaluate([toy_path], ["vc_dimension"], tmp_path, models=["model_99"])
    with pytest.raises(PGDLError, match="time budget must be positive"):
        evaluate([toy_path], ["vc_dimension"], tmp_path, time_budget=0)
    with pytest.raises(PGDLError, match="given twice"):
        evaluate([toy_path], ["vc_dimension", VCDimension(use_input_size=True)], tmp_path)
    with pytest.raises(PGDLError, match="no such task folder"):
        evaluate([tmp_path / "nowhere"], ["vc_dimension"], tmp_path)


def test_collect_results_covers_every_stored_model_of_the_current_contents(toy_path, tmp_path):
    """A subset's outputs hold every model stored for the task (its current contents), not only the subset."""
    from pgdl_measures.evaluate.pipeline import collect_results

    task = find_tasks(toy_path)[0]
    digests = task.model_digests()
    vc = VCDimension()
    with ResultStore.in_folder(tmp_path) as store:
        for model in ("model_0", "model_1", "model_2", "model_10"):
            _put(store, task.name, model, vc, Status.OK, contents=digests[model])
        _put(store, task.name, "model_3", vc, Status.OK, contents="other")  # another task's contents: ignored
        results = collect_results(store, [task], [vc], "tensorflow", ["model_1", "model_4"])
    by_model = results[(task.name, "vc_dimension")]
    assert list(by_model) == ["model_0", "model_1", "model_2", "model_4", "model_10"]
    assert by_model["model_4"] is None and by_model["model_10"].status == Status.OK


def test_why_nothing_ranked_gives_the_real_reason(toy_path, tmp_path):
    from pgdl_measures.evaluate.pipeline import ComputeStats, Evaluation, rank_results

    task = find_tasks(toy_path)[0]
    vc = VCDimension()
    results = {(task.name, "vc_dimension"): {
        f"model_{i}": Row(task.name, f"model_{i}", "vc_dimension", "{}", "tensorflow", Status.EXCEEDED, error="x")
        for i in range(3)}}
    ranking = rank_results([task], [vc], results, n_resamples=0)

    def outcome(tasks):
        return Evaluation(tmp_path, tmp_path / "results.sqlite", "tensorflow", tasks, [vc], ComputeStats(), results,
                          {}, [], ranking, (tmp_path / "report.md", tmp_path / "report.html"))

    assert outcome([task]).why_nothing_ranked() == (
        "nothing ranked: pgdl_toy_data: no measure has a value on any model (3 exceeded the time budget)")
    from pgdl_measures.tasks import Task

    unreferenced = Task(task.name, task.input_dir, None)
    assert "no task with reference data" in outcome([unreferenced]).why_nothing_ranked()
