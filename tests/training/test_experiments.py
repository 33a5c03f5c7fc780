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
    (["timing", "--preset", "huge", "--out", "{tmp}"], "unknown preset 'huge' for timing; known: paper, ci, smoke, study-cpu"),
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
    assert saved["unfinished_runs"] == 0  # every run trained: none left unfinished
    assert saved["fit_seconds_total"] == pytest.approx(sum(r["fit_seconds"] for r in saved["records"]), abs=0.1)
    again = run_experiment("fit-regimes", "smoke", tmp_path, **small)  # every model read back
    assert [r["fit_seconds"] for r in again["records"]] == [r["fit_seconds"] for r in result["records"]]
    assert again["fit_seconds_total"] == saved["fit_seconds_total"]  # the runs' training time, read back
    # --finished-only: the result over the finished runs, training nothing
    (tmp_path / "fit-regimes" / "runs" / "mlp-2" / "record.json").unlink()
    partial = run_experiment("fit-regimes", "smoke", tmp_path, finished_only=True, **small)
    assert partial["unfinished_runs"] == 1 and [r["key"] for r in partial["records"]] == ["mlp-0", "mlp-1", "mlp-3"]
    assert not (tmp_path / "fit-regimes" / "runs" / "mlp-2" / "record.json").exists()
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


def test_study_cpu_presets_follow_the_study():
    """The `study-cpu` presets keep the study's protocol (An et al., Figures 1-3) and say where they depart."""
    from pgdl_measures.training.experiments import PRESETS, STUDY_SPACE

    gn = PRESETS["gn-vs-agn"]["study-cpu"]
    assert dict(gn.models) == {"mlp": 9, "lenet5": 12} and gn.epochs == 40  # Figure 1's models and epochs
    assert gn.gn["examples"] >= 1000 and gn.gn.get("iterations") is None  # every iteration, >= 1,000 examples
    fit = PRESETS["fit-regimes"]["study-cpu"]
    assert set(fit.models.values()) == {32} and fit.epochs >= 40 and fit.schedule == "piecewise"
    assert {k: fit.space[k] for k in ("momentum", "weight_decay")} == \
        {k: STUDY_SPACE[k] for k in ("momentum", "weight_decay")}
    assert fit.space["learning_rate"]["high"] == STUDY_SPACE["learning_rate"]["high"]
    timing = PRESETS["timing"]["study-cpu"]
    assert dict(timing.gn) == {} and tuple(timing.fractions) == (1.0, 0.2)  # exact GN; full and 20%
    for experiment in ("gn-vs-agn", "fit-regimes", "timing"):
        preset = PRESETS[experiment]["study-cpu"]
        assert preset.dataset["name"] == "mnist_digits" and preset.departures
        assert any(d.startswith("data:") for d in preset.departures)


def test_study_cpu_smoke(tmp_path):
    """Both model-sampling experiments at their `study-cpu` settings, shrunk to seconds: the
    hyper-parameters come from the study's space, the JSON carries the departures, the bootstrap
    interval of r(GN, AGN), r with GN per step, and the per-architecture halves."""
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the experiment's plumbing is backend-neutral; one backend is enough for CI")
    from pgdl_measures.training.experiments import PRESETS

    small = {"epochs": 1, "train_fraction": 0.05}
    fit = run_experiment("fit-regimes", "study-cpu", tmp_path, models={"mlp": 2, "lenet5": 2}, **small)
    space = PRESETS["fit-regimes"]["study-cpu"].space
    for record in fit["records"]:
        for name, value in record["hparams"].items():
            assert space[name]["low"] <= value <= space[name]["high"]
    assert len({r["hparams"]["batch_size"] for r in fit["records"]}) == 2  # drawn per k (shared across architectures)
    assert set(fit["per_model"]) == {"mlp", "lenet5"}
    for part in (fit, *fit["per_model"].values()):
        upper = part["halves"]["upper"]
        assert part["upper_half_fits"] == (upper["train_accuracy_range"][0] >= 0.88)
    saved = json.loads((tmp_path / "fit-regimes.json").read_text())
    assert saved["departures_from_the_study"] == list(PRESETS["fit-regimes"]["study-cpu"].departures)

    gn = run_experiment("gn-vs-agn", "study-cpu", tmp_path, models={"mlp": 4}, gn={"examples": 40}, **small)
    stats = gn["per_model"]["mlp"]
    lo, hi = stats["gn_vs_agn"]["interval95"]
    assert -1 <= lo <= hi <= 1
    steps = [-(-r["train_examples"] // r["hparams"]["batch_size"]) for r in gn["records"]]
    per_step = [r["gn_sum"] / s for r, s in zip(gn["records"], steps, strict=True)]
    from scipy.stats import pearsonr

    assert stats["gn_per_step_vs_agn"]["r"] == pytest.approx(pearsonr(per_step, [r["agn_sum"] for r in gn["records"]])[0])


def test_bootstrap_interval_holds_r():
    import numpy as np

    from pgdl_measures.training.experiments import _bootstrap_r

    rng = np.random.default_rng(0)
    a = rng.normal(size=30)
    b = a + 0.5 * rng.normal(size=30)
    lo, hi = _bootstrap_r(a, b)
    r = float(np.corrcoef(a, b)[0, 1])
    assert lo < r < hi and hi - lo < 0.4
    assert _bootstrap_r(a[:3], b[:3]) is None
