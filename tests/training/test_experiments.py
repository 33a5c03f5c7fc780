"""`pgdl experiment`: bad input as one line and exit status 2; a small run writes JSON + PNG and resumes."""

from __future__ import annotations

import json

import pytest

from pgdl_measures.cli import main
from pgdl_measures.errors import PGDLError
from pgdl_measures.training.experiments import run_experiment


def _cli(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", *args])
    return exit_info.value.code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("args, message", [
    (["fig4", "--out", "{tmp}"], "unknown experiment 'fig4'; known: gn-vs-agn, timing, fit-regimes"),
    (["timing", "--preset", "huge", "--out", "{tmp}"], "unknown preset 'huge' for timing; known: paper, ci, smoke"),
    (["timing", "--preset", "smoke", "--out", "{tmp}/file/out"], "cannot write to the output folder"),
    (["gn-vs-agn", "--preset", "paper", "--out", "{tmp}", "--data-dir", "{tmp}"],
     "dataset 'mnist' not found: put mnist.npz or the idx files"),
])
def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys, args, message):
    (tmp_path / "file").write_text("")
    code, err = _cli(capsys, *[a.format(tmp=tmp_path) for a in args])
    assert code == 2 and len(err) == 1 and message in err[0]


def test_fit_regimes_writes_json_and_figure_and_resumes(tmp_path):
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the experiment's plumbing is backend-neutral; one backend is enough for CI")
    small = {"models": {"mlp": 4}, "epochs": 1}
    result = run_experiment("fit-regimes", "smoke", tmp_path, **small)
    saved = json.loads((tmp_path / "fit-regimes.json").read_text())
    assert (tmp_path / "fit-regimes.png").stat().st_size > 1000
    assert saved["halves"]["upper"]["models"] + saved["halves"]["lower"]["models"] + saved["diverged"] == 4
    assert all(r["agn_sum"] > 0 for r in saved["records"] if not r["diverged"])
    again = run_experiment("fit-regimes", "smoke", tmp_path, **small)  # every model read back
    assert [r["fit_seconds"] for r in again["records"]] == [r["fit_seconds"] for r in result["records"]]
    with pytest.raises(PGDLError, match="unknown experiment"):
        run_experiment("fig4", "ci", tmp_path)
    # runs are not handed to other settings: the folder says which preset made them
    with pytest.raises(PGDLError, match=r"holds the runs of preset 'smoke'.*\(epochs\)"):
        run_experiment("fit-regimes", "smoke", tmp_path, models={"mlp": 4}, epochs=2)


def test_runs_of_another_preset_are_refused_naming_it(tmp_path, capsys):
    """`--preset smoke` on a folder of `ci` runs used to read them back as smoke results."""
    from dataclasses import asdict

    from pgdl_measures.training.experiments import PRESETS, _jsonable

    folder = tmp_path / "timing"
    (folder / "runs" / "mlp-1-validation_only").mkdir(parents=True)
    (folder / "settings.json").write_text(json.dumps(
        {"preset": "ci", "settings": _jsonable(asdict(PRESETS["timing"]["ci"]))}))
    code, err = _cli(capsys, "timing", "--preset", "smoke", "--out", str(tmp_path))
    assert code == 2 and len(err) == 1
    assert "holds the runs of preset 'ci'" in err[0] and str(folder) in err[0]
    (folder / "settings.json").unlink()  # runs of an older version, with no record of their settings
    code, err = _cli(capsys, "timing", "--preset", "smoke", "--out", str(tmp_path))
    assert code == 2 and len(err) == 1 and "holds runs without a settings.json" in err[0]
