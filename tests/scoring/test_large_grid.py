"""A grid of many hyper-parameters with many values and few models.

20 hyper-parameters of 10 values are 10^20 cells: more than an int64 indexes, and far more than
anything may enumerate. Every command bounds its work by the models that exist: `pgdl score`
refuses the incomplete grid with one line, `pgdl task info` reports it, `pgdl evaluate` ranks
it, and every ranker (bootstrap included) takes a time that does not grow with the grid.
"""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest

from scoring.errors import PGDLError

N_HPARAMS, N_VALUES, N_MODELS = 20, 10, 5


def large_grid_specs(n_hparams: int = N_HPARAMS, n_values: int = N_VALUES, n_models: int = N_MODELS) -> dict:
    rng = np.random.default_rng(0)
    return {
        f"model_{k}": {
            "hparams": {f"h{h}": {"possible_values": list(range(n_values)),
                                  "current_value": int(rng.integers(n_values))}
                        for h in range(n_hparams)},
            "metrics": {"train_acc": 1.0, "test_acc": 0.5 + 0.1 * k},
        }
        for k in range(n_models)
    }


@pytest.fixture
def large_task(tmp_path, mini_path):
    """Five models of the bundled mini task, with a model_configs.json over 10^20 cells."""
    source = mini_path / "input_data" / "digits_vgg"
    task = tmp_path / "large"
    shutil.copytree(source / "dataset_1", task / "dataset_1")
    for k in range(N_MODELS):
        shutil.copytree(source / f"model_{k}", task / f"model_{k}")
    (task / "model_configs.json").write_text(json.dumps(large_grid_specs()))
    return task


def test_check_grid_refuses_a_large_incomplete_grid_clearly():
    from scoring.predictions import check_grid, scoring_grid

    grid = scoring_grid(large_grid_specs(), "model_configs.json")
    with pytest.raises(PGDLError, match=r"not complete: 99999999999999999995 of 100000000000000000000 .*\(e\.g\. h0="):
        check_grid(grid)


def test_check_grid_finds_duplicates_in_a_large_grid():
    from scoring.predictions import check_grid, scoring_grid

    specs = large_grid_specs()
    specs["model_4"]["hparams"] = specs["model_1"]["hparams"]
    with pytest.raises(PGDLError, match="not unique: models model_1, model_4 share"):
        check_grid(scoring_grid(specs, "model_configs.json"))


@pytest.mark.timeout(60)
def test_grid_report_counts_missing_cells_without_enumerating_them():
    import pandas as pd

    from pgdl_measures.tasks.task import grid_report

    specs = large_grid_specs()
    rows = [{"model_id": m, **{h: e["current_value"] for h, e in s["hparams"].items()}} for m, s in specs.items()]
    configs = pd.DataFrame(rows)
    configs.attrs["possible_values"] = {f"h{h}": list(range(N_VALUES)) for h in range(N_HPARAMS)}
    report = grid_report(configs)
    assert report.size == N_VALUES ** N_HPARAMS
    assert report.missing_count == N_VALUES ** N_HPARAMS - N_MODELS
    assert not report.complete and report.unique
    assert 0 < len(report.missing) <= 1000
    assert f"more missing cells (of {N_VALUES ** N_HPARAMS})" in " ".join(report.problems())


def test_grid_report_small_grid_unchanged():
    import pandas as pd

    from pgdl_measures.tasks.task import grid_report

    configs = pd.DataFrame([{"model_id": "model_0", "a": 1, "b": "x"}, {"model_id": "model_1", "a": 2, "b": "x"},
                            {"model_id": "model_2", "a": 2, "b": "x"}])
    configs.attrs["possible_values"] = {"a": [1, 2], "b": ["x", "y"]}
    report = grid_report(configs)
    assert report.missing == [(1, "y"), (2, "y")] and report.missing_count == 2
    assert report.duplicates == {(2, "x"): ["model_1", "model_2"]}


@pytest.mark.timeout(120)
def test_every_ranker_with_bootstrap_is_bounded_by_the_models():
    from scoring.predictions import scoring_grid
    from scoring.rankers import RANKERS, bootstrap_ci_grid

    grid = scoring_grid(large_grid_specs())
    values = np.arange(N_MODELS, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for ranker in RANKERS.values():
            ranker.score_grid(values, grid)
            bootstrap_ci_grid(ranker, values, grid, n_resamples=100)


def test_competition_cmi_of_a_grid_with_more_cells_than_pairs_is_nan_as_in_the_competition():
    from scoring._reference import reference_cmi
    from scoring.cmi import CMIWarning, conditional_mutual_information

    specs = large_grid_specs(n_hparams=3, n_values=3, n_models=8)  # 81 cells per set > 64 pairs
    prediction = {m: float(i) for i, m in enumerate(specs)}
    with pytest.warns(CMIWarning, match=r"empty cells .*>="):
        value = conditional_mutual_information(prediction, specs, check_grid=False)
    assert np.isnan(value)
    assert np.isnan(reference_cmi(prediction, specs))


def test_score_refuses_a_large_grid_with_one_line(cli, tmp_path):
    ref, res = tmp_path / "ref", tmp_path / "res"
    (ref / "big").mkdir(parents=True)
    res.mkdir()
    (ref / "big" / "model_configs.json").write_text(json.dumps(large_grid_specs()))
    (res / "big.predict").write_text(json.dumps({f"model_{k}": float(k) for k in range(N_MODELS)}))
    result = cli(["score", str(ref), str(res)])
    assert result.exit_code == 2, result.output
    assert "not complete" in result.output and "model_configs.json" in result.output
    assert "Traceback" not in result.output


@pytest.mark.timeout(300)
def test_task_info_reports_a_large_grid(cli, large_task):
    result = cli(["task", "info", str(large_task), "--json"])
    assert result.exit_code == 0, result.output
    grid = json.loads(result.output)[0]["grid"]
    assert grid["cells"] == N_VALUES ** N_HPARAMS and grid["models"] == N_MODELS
    assert not grid["complete"] and grid["unique"]


@pytest.mark.timeout(600)
def test_evaluate_ranks_a_large_grid(cli, large_task, tmp_path):
    out = tmp_path / "out"
    result = cli(["evaluate", str(large_task), "-m", "vc_dimension", "--out", str(out), "--bootstrap", "50",
                  "--quiet"])
    assert result.exit_code == 0, result.output
    assert (out / "report.md").is_file()
    assert "vc_dimension" in (out / "report.md").read_text()
