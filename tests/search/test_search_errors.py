"""Bad input: an invalid spec, an unreachable scheduler, a diverging trial, an unwritable or
full output folder: one line, exit 2, nothing computed lost."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from pgdl_measures.errors import PGDLError
from pgdl_measures.search.driver import Driver
from pgdl_measures.search.spec import load_spec


def _write(tmp_path, **spec):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"preset": "ci", "trainer": "fake", **spec}))
    return path


@pytest.mark.parametrize(("spec", "message"), [
    ({"algorithms": ["hyperopt"]}, "unknown algorithm 'hyperopt'"),
    ({"space": {"momentum": {"low": 0.9, "high": 0.9}}}, "space.momentum is an empty range"),
    ({"budget": 7}, "budget 7 GPU x epochs is smaller than one configuration (8 epochs)"),
    ({"objectives": ["test_accuracy"]}, "unknown objective 'test_accuracy'"),
    ({"bohb": {"eta": 3, "min_epochs": 2}}, "must reach epochs 8 exactly"),
])
def test_invalid_spec_one_line_exit_2(cli, tmp_path, spec, message):
    path = _write(tmp_path, **spec)
    result = cli(["search", "run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_unreachable_scheduler(cli, tmp_path):
    result = cli(["search", "run", str(_write(tmp_path)), "--out", str(tmp_path / "out"),
                  "--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "1"])
    assert result.exit_code == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_unwritable_output_folder(cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = cli(["search", "run", str(_write(tmp_path)), "--out", str(blocker / "out")])
    assert result.exit_code == 2
    assert "cannot write to the output folder" in result.output


def test_folder_of_another_spec_is_refused(tmp_path, sync_engine):
    spec = load_spec(_write(tmp_path, algorithms=["random"], objectives=["val_loss"], budget=8))
    Driver(spec, tmp_path / "out", engine=sync_engine, storage=":memory:").run()
    other = load_spec(_write(tmp_path, algorithms=["random"], objectives=["val_loss"], budget=16))
    with pytest.raises(PGDLError, match="another spec"):
        Driver(other, tmp_path / "out", engine=sync_engine, storage=":memory:").run()


def test_diverging_trials_are_recorded_and_the_search_goes_on(tmp_path, sync_engine):
    # the fake trainer diverges above a learning rate of 0.3
    spec = load_spec(_write(tmp_path, algorithms=["random", "bohb"], objectives=["val_loss"],
                            space={"learning_rate": {"low": 0.1, "high": 0.5}},
                            start={"learning_rate": 0.2}, budget=128))
    driver = Driver(spec, tmp_path / "out", engine=sync_engine, storage=":memory:")
    summary = driver.run()
    for cell in summary["cells"]:
        assert 0 < cell["diverged"] < cell["trials"]
        assert cell["epochs"] == 128  # the whole budget was used
        assert cell["best_params"]["learning_rate"] <= 0.3
    trial = next(t for t in driver.runs[0].algo.study.get_trials() if t.user_attrs.get("diverged"))
    assert trial.state.name == "COMPLETE" and trial.value == 1e10


def test_full_disk_loses_nothing(tmp_path, sync_engine, monkeypatch):
    import scoring.files

    spec = load_spec(_write(tmp_path, algorithms=["random"], objectives=["val_loss"], budget=128))
    out = tmp_path / "out"
    real = scoring.files.atomic_write

    def full(path, data):
        if "step-0001" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(scoring.files, "atomic_write", full)
    with pytest.raises(PGDLError, match="No space left on device"):
        Driver(spec, out, engine=sync_engine, storage=None).run()
    monkeypatch.setattr(scoring.files, "atomic_write", real)
    first = sync_engine.epochs["random-val_loss"]
    assert first == 64  # round 1 was trained and told before the disk filled
    summary = Driver(spec, out, engine=sync_engine, storage=None).run()
    assert summary["cells"][0]["epochs"] == 128 and summary["cells"][0]["configurations"] == 16
    assert sync_engine.epochs["random-val_loss"] == 128  # round 1 was not trained again


@pytest.mark.parametrize(("spec", "message"), [
    ({"alphas": [0.1, 0.1]}, "alphas: 0.1 given twice"),
    ({"alphas": [0.1, 0.1000001]}, "alphas: 0.1000001 and 0.1 name the same cells (a0.1)"),
    ({"algorithms": ["cmaes", "random", "cmaes"]}, "algorithms: cmaes given twice"),
    ({"objectives": ["val_loss", "val_loss"]}, "objectives: val_loss given twice"),
    ({"final_seeds": [0, 0]}, "final_seeds: a seed is given twice"),
    ({"diverge_loss": "abc"}, "diverge_loss must be a number > 0"),
    ({"diverge_loss": True}, "diverge_loss must be a number > 0"),
    ({"seed": -1}, "seed must be an integer in [0, 4294967295]"),
    ({"epochs": True, "algorithms": ["random"]}, "epochs must be a positive integer"),
    ({"space": {"momentum": {"low": False, "high": True}}}, "space.momentum needs numbers low and high"),
    ({"space": {"momentum": {"low": 0.1, "high": 0.9, "log": "yes"}}}, "space.momentum.log must be true or false"),
    ({"data": {"seed": "0"}}, "data.seed must be an integer"),
    ({"data": {"validation": True}}, "data.validation must be a count"),
    ({"model": {"options": []}}, "model.options must be an object"),
    ({"default": {"batch_size": 0}}, "default.batch_size must be >= 1"),
    ({"trainer": "keras", "data": {"dataset": "cifar11"}}, "data.dataset: unknown dataset 'cifar11'"),
])
def test_duplicates_and_wrong_types_are_refused_up_front(cli, tmp_path, spec, message):
    path = _write(tmp_path, **spec)
    result = cli(["search", "run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and str(path) in lines[0], result.output
    assert not (tmp_path / "out").exists()


hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

#: every field a driver or a worker reads, as a path into the spec
FIELDS = ["name", "algorithms", "objectives", "alphas", "epochs", "budget", "round_size", "seed", "diverge_loss",
          "agn", "trainer", "final_seeds", "data.dataset", "data.options", "data.train_fraction", "data.validation",
          "data.seed", "model.name", "model.options", "bohb.eta", "bohb.min_epochs", "space.momentum.low",
          "space.batch_size.high", "space.batch_size.int", "space.learning_rate.log", "start.momentum",
          "default.batch_size", "default.learning_rate"]
JSON = st.recursive(st.none() | st.booleans() | st.integers(-3, 300) | st.integers() | st.floats()
                    | st.text(max_size=5) | st.sampled_from(["random", "val_loss", "keras", "fake", "a:b"]),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
                    max_leaves=4)


def _set(raw, path, value):
    """Sets `path` in a spec over the ci preset (a space entry is replaced whole: copied first)."""
    from pgdl_measures.search.spec import CI

    *parents, leaf = path.split(".")
    if parents[:1] == ["space"]:
        raw["space"] = {parents[1]: dict(CI["space"][parents[1]])}
    for key in parents:
        raw = raw.setdefault(key, {})
    raw[leaf] = value


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(field=st.sampled_from(FIELDS), value=JSON)
def test_any_value_of_any_field_is_refused_naming_it_or_usable_by_the_workers(field, value):
    from pgdl_measures.search import algorithms, objectives

    raw = {"preset": "ci", "trainer": "fake"}
    _set(raw, field, value)
    try:
        spec = load_spec(raw)
    except PGDLError as exc:
        parts = field.split(".")  # a space entry's fault may show as its start point's: the parameter named
        assert (parts[1] if parts[0] == "space" else ".".join(parts[:2])) in str(exc), (field, value, str(exc))
        return
    # accepted: what the driver and the workers read from it works
    assert len({cell.name for cell in spec.cells}) == len(spec.cells)
    assert spec.bohb_budgets[-1] == spec.raw["epochs"] or "bohb" not in spec.raw["algorithms"]
    algorithms.distributions(spec)
    task = {"spec": spec.raw, "params": algorithms.full_params(spec, spec.raw["default"]), "epochs": spec.raw["epochs"],
            "seed": spec.raw["seed"], "out_dir": None, "final": False, "agn": None}
    config = objectives.train_config(task)
    assert config.diverge_loss > 0 and config.batch_size >= 1 and config.learning_rate > 0
    data = spec.raw["data"]
    assert isinstance(data.get("seed", 0), int) and not isinstance(data.get("validation", 0), bool)
    assert all(isinstance(s, int) and not isinstance(s, bool) for s in [spec.raw["seed"], *spec.raw["final_seeds"]])
    if spec.raw["trainer"] == "fake":
        assert objectives.run_task(task)["epochs_run"] >= 1


def test_spec_error_on_a_worker_is_one_line(tmp_path):
    """A spec error met on a Dask worker (a model that does not fit its data): one line, exit 2,
    no "Compute Failed" blocks, no retries."""
    import subprocess
    import sys

    spec = _write(tmp_path, algorithms=["random"], objectives=["val_loss"], budget=8,
                  trainer="faulty_trainers:spec_error", final_seeds=[0])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", "from pgdl_measures.cli import main; main()", "search", "run",
                           str(spec), "--out", str(tmp_path / "out"), "--workers", "1", "-q"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(spec) in lines[0] and "cannot be built for digits" in lines[0]


@pytest.fixture
def small_disk(tmpfs):
    """A 160 KiB tmpfs (root only; skipped where mounting is not allowed), grown by calling the
    returned function."""
    disk = tmpfs.mount("160k")
    return disk, lambda: tmpfs.resize(disk, "16m")


def test_a_full_disk_is_one_line_and_the_search_resumes(cli, tmp_path, small_disk, sync_engine, monkeypatch):
    disk, grow = small_disk
    # a trainer that fills the disk writing its checkpoint (importable as on a Dask worker)
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    spec = load_spec(_write(tmp_path, algorithms=["random"], objectives=["val_loss"], round_size=4, budget=64,
                            trainer="faulty_trainers:disk_filler"))
    out = disk / "out"
    with pytest.raises(PGDLError) as info:
        Driver(spec, out, engine=sync_engine, storage=None).run()
    message = str(info.value)
    assert "\n" not in message and ("No space left on device" in message or "disk is full" in message), message
    result = cli(["search", "report", str(out)])  # the report cannot be written either: one line
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "Traceback" not in result.output
    grow()
    summary = Driver(spec, out, engine=sync_engine, storage=None).run()
    cell = summary["cells"][0]
    assert (cell["configurations"], cell["trials"], cell["epochs"]) == (8, 8, 64)  # nothing lost or counted twice
    assert summary["default"]["test_accuracy_mean"] is not None
