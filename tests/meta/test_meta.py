"""`pgdl meta fit`: a combination known in advance is recovered, leave-one-task-out beats a single
component where the combination is the truth, and the fitted plugin computes what it says."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from pgdl_measures.errors import PGDLError
from pgdl_measures.meta.benchmark import read_benchmark
from pgdl_measures.meta.fit import fit_meta
from pgdl_measures.meta.loto import META, best_label, leave_one_task_out
from pgdl_measures.meta.measure import MetaMeasure, combine

ROOT = Path(__file__).resolve().parents[2]
GRID = {"depth": [1, 2, 3, 4], "width": [8, 16, 32, 64], "dropout": [0.0, 0.25, 0.5]}  # 48 models


def _write_benchmark(root: Path, n_tasks: int = 6, seed: int = 0) -> tuple[Path, Path]:
    """Tasks of 48 models whose gap is 0.6 u + 0.4 v (plus a little noise); the .predict values
    (oriented, as `pgdl evaluate` writes them) of `left` = s exp(u), `right` = s' exp(v) and an
    unrelated `noise`, with per-task factors s, s' of 10^-2 to 10^2, which the signed log turns
    into per-task constants."""
    rng = np.random.default_rng(seed)
    refs, preds = root / "reference", root / "predictions"
    for t in range(n_tasks):
        name = f"task{t}"
        combos = list(itertools.product(*GRID.values()))
        u, v = rng.normal(size=len(combos)), rng.normal(size=len(combos))
        gap = 0.6 * u + 0.4 * v + 0.05 * rng.normal(size=len(combos))
        gap = 0.1 + 0.02 * (gap - gap.min())  # a plausible train-test accuracy gap
        specs = {str(i): {"hparams": {k: {"possible_values": vals, "current_value": c[j]}
                                      for j, (k, vals) in enumerate(GRID.items())},
                          "metrics": {"train_acc": 1.0, "test_acc": float(1.0 - g)}}
                 for i, (c, g) in enumerate(zip(combos, gap))}
        (refs / name).mkdir(parents=True)
        (refs / name / "model_configs.json").write_text(json.dumps(specs))
        oriented = {"left": 10.0 ** rng.uniform(-2, 2) * np.exp(u),
                    "right": 10.0 ** rng.uniform(-2, 2) * np.exp(v),
                    "noise": 10.0 ** rng.uniform(-2, 2) * np.exp(rng.normal(size=len(combos)))}
        for measure, values in oriented.items():
            (preds / measure).mkdir(parents=True, exist_ok=True)
            (preds / measure / f"{name}.predict").write_text(
                json.dumps({f"model_{i}": float(x) for i, x in enumerate(values)}))
    return refs, preds


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return _write_benchmark(tmp_path_factory.mktemp("bench"))


def test_the_known_combination_is_recovered(synthetic, tmp_path):
    import shutil

    # a meta-measure's own .predict files beside the others are not a component
    preds = Path(shutil.copytree(synthetic[1], tmp_path / "preds"))
    shutil.copytree(preds / "left", preds / "meta_measure")
    tasks = read_benchmark(synthetic[0], [preds])
    assert sorted(tasks[0].values) == ["left", "noise", "right"]
    assert [t.name for t in tasks] == [f"task{i}" for i in range(6)]
    fit = fit_meta(tasks)
    w = dict(zip(fit.measures, fit.weights))
    # asinh(x / c) = log(x) + const for x >> c: the weights are those of log(left) and log(right)
    assert w["left"] > 0 and w["right"] > 0
    assert w["left"] / w["right"] == pytest.approx(0.6 / 0.4, rel=0.25)
    assert abs(w["noise"]) < 0.1 * w["right"]
    # the combination orders every task's models much as the truth does
    from scipy.stats import kendalltau

    for task in tasks:
        assert kendalltau(fit.predict(task), task.gaps).statistic > 0.75


def test_leave_one_task_out_beats_the_best_single_measure_where_the_combination_is_the_truth(synthetic):
    tasks = read_benchmark(*synthetic[:1], [synthetic[1]])
    loto = leave_one_task_out(tasks, n_resamples=200, n_permutations=0, workers=1)
    assert set(loto.best["kendall_tau"].values()) <= {"left", "right"}
    rows = {r["task"]: r for r in loto.rows("kendall_tau")}
    for task in tasks:
        row = rows[task.name]
        assert row["meta"][0] > row["best"][0] + 0.05, row
        assert row["meta"][1] <= row["meta"][0] <= row["meta"][2]
        low, high = row["meta_minus_best"][1:]
        assert low > 0, row  # the paired difference's interval excludes 0
    average = rows["average"]
    assert average["meta"][0] == pytest.approx(np.mean([rows[t.name]["meta"][0] for t in tasks]))
    # every ranker got a column for its own best single measure
    assert all(best_label(r) in loto.ranking.measures for r in loto.ranking.rankers)
    assert META in loto.ranking.scores["competition_cmi"]


def test_a_fit_kept_to_a_single_task_uses_folds_of_its_models(synthetic):
    tasks = read_benchmark(*synthetic[:1], [synthetic[1]])[:1]
    fit = fit_meta(tasks)
    assert len(fit.cv) > 1 and set(fit.components) >= {"left", "right"}


def test_the_fitted_plugin_computes_the_combination_of_its_components(mini_path):
    from pgdl_measures.registry import get_measure
    from pgdl_measures.tasks import find_tasks

    task = find_tasks(mini_path)[0]
    trained = task.load_model(task.model_ids()[0])
    meta = MetaMeasure(measures=("distance_from_init", "vc_dimension"), weights=(0.5, -2.0), scales=(0.01, 3.0))
    parts = [get_measure(n) for n in meta.measures]
    oriented = np.array([m.direction * m(trained) for m in parts])
    want = 0.5 * math.asinh(oriented[0] / 0.01) - 2.0 * math.asinh(oriented[1] / 3.0)
    assert meta(trained) == pytest.approx(want, rel=1e-12)
    assert float(combine(oriented, meta.weights, meta.scales)) == pytest.approx(want, rel=1e-12)
    assert meta.needs_initial_weights and not meta.needs_images


@pytest.mark.parametrize("params, message", [
    ({"measures": ("agn",), "weights": (1.0, 2.0), "scales": (1.0,)}, "same length"),
    ({"measures": ("no_such",), "weights": (1.0,), "scales": (1.0,)}, "not a registered measure"),
    ({"measures": ("meta_measure",), "weights": (1.0,), "scales": (1.0,)}, "its own component"),
    ({"measures": ("agn",), "weights": (1.0,), "scales": (0.0,)}, "positive"),
    ({"measures": ("agn",), "weights": (float("nan"),), "scales": (1.0,)}, "finite"),
    ({"measures": (), "weights": (), "scales": ()}, "parameter measures must be a non-empty list of measure names"),
    ({"measures": ("agn",), "weights": ("x",), "scales": (1.0,)}, "parameter weights must be a non-empty list of finite "
                                                                 "numbers; item 'x' is not a number"),
    ({"measures": "agn", "weights": (1.0,), "scales": (1.0,)}, "must be a non-empty list of measure names, got 'agn'"),
])
def test_bad_parameters_are_one_line_errors(params, message):
    with pytest.raises(PGDLError, match=message):
        MetaMeasure(**params)


def test_param_options_round_trip_through_the_command_line_parser():
    from pgdl_measures.meta.report import param_options
    from pgdl_measures.registry import parse_param_options

    params = {"measures": ["agn", "jacobian_norm"], "weights": [0.25, -1e-3], "scales": [2.0, 0.5]}
    parsed = parse_param_options(param_options(params), measure="meta_measure")
    assert MetaMeasure(**parsed).params == MetaMeasure(**{k: tuple(v) for k, v in params.items()}).params


def test_cli_fits_the_bundled_tasks_and_writes_the_plugin_parameters(cli, tmp_path):
    out = tmp_path / "meta"
    result = cli(["meta", "fit", str(ROOT / "data"), str(ROOT / "results" / "ranking"), "--out", str(out),
                  "--resamples", "50", "--permutations", "0"])
    assert result.exit_code == 0, result.output
    written = json.loads((out / "meta_measure.json").read_text())
    assert written["fit"]["tasks"] == ["digits_vgg", "mnist_conv"]
    params = written["params"]
    assert MetaMeasure(**{k: tuple(v) for k, v in params.items()}).measures == tuple(params["measures"])
    assert "pgdl package meta_measure" in result.output and "loto.md" in result.output
    table = (out / "loto.md").read_text()
    assert "| digits_vgg |" in table and "| mnist_conv |" in table
    # the committed defaults are this fit's
    defaults = MetaMeasure()
    assert list(defaults.measures) == params["measures"]
    assert list(defaults.weights) == pytest.approx(params["weights"], rel=1e-9)
    assert list(defaults.scales) == pytest.approx(params["scales"], rel=1e-9)


@pytest.mark.parametrize("args, message", [
    (["meta", "fit", "{tmp}/nowhere", "{tmp}"], "reference folder not found"),
    (["meta", "fit", "{root}/data", "{tmp}/nowhere"], "predictions folder not found"),
    (["meta", "fit", "{root}/data", "{root}/results/ranking", "--measure", "no_such"], "no .predict files of no_such"),
])
def test_cli_bad_input_is_one_line_exit_2(cli, tmp_path, args, message):
    args = [a.format(tmp=tmp_path, root=ROOT) for a in args]
    result = cli(args + ["--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_all_leaves_the_fitted_measure_out_and_its_name_selects_it():
    from pgdl_measures.evaluate.inputs import resolve_measures

    everything = [m.name for m in resolve_measures(["all"])]
    assert "meta_measure" not in everything and "mixup_accuracy" in everything
    assert "meta_measure" in [m.name for m in resolve_measures(["all", "meta_measure"])]


def test_a_measure_missing_on_the_held_out_task_is_not_a_component_of_its_rotation(synthetic, tmp_path):
    """`pgdl evaluate` writes no .predict file for a measure that failed on one model of a task: the
    rotation that holds that task out fits without the measure, so the task still gets a score."""
    import shutil

    preds = Path(shutil.copytree(synthetic[1], tmp_path / "preds"))
    (preds / "left" / "task5.predict").unlink()
    tasks = read_benchmark(synthetic[0], [preds])
    loto = leave_one_task_out(tasks, n_resamples=50, n_permutations=0, workers=1)
    signed, _ = loto.fits["task5"]
    assert "left" not in signed.measures and "right" in signed.measures
    rows = {r["task"]: r for r in loto.rows("kendall_tau")}
    assert rows["task5"]["meta"][0] is not None and rows["task5"]["meta"][0] > 0.2, rows["task5"]
