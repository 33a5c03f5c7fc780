"""Bad input: an invalid spec, an unreachable scheduler, a diverging trial, an unwritable or
full output folder: one line, exit 2, nothing computed lost."""

from __future__ import annotations

import errno
import json

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
