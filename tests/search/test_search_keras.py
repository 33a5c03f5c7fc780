"""A tiny version of the `ci` preset with the real Keras trainer: every algorithm, one round of
two configurations of two epochs (BOHB: one bracket of budgets 1 and 2), in one process."""

from __future__ import annotations

import math

import pytest

from pgdl_measures.search.driver import Driver
from pgdl_measures.search.report import write_report
from pgdl_measures.search.spec import load_spec

pytest.importorskip("optuna")
pytest.importorskip("nevergrad")


def test_tiny_ci_search_with_keras(tmp_path, sync_engine):
    spec = load_spec({"preset": "ci", "epochs": 2, "budget": 4, "round_size": 2, "bohb": {"eta": 2, "min_epochs": 1},
                      "objectives": ["agn_val_loss"], "alphas": [0.1], "final_seeds": [],
                      "data": {"train_fraction": 0.2}})
    out = tmp_path / "out"
    summary = Driver(spec, out, engine=sync_engine, storage=None).run()
    cells = {c["algorithm"]: c for c in summary["cells"]}
    assert {name: c["trials"] for name, c in cells.items()} == {"random": 2, "cmaes": 2, "pso": 2, "bohb": 3}
    assert all(c["epochs"] == 4 for c in cells.values())
    for cell in cells.values():
        assert cell["best_value"] is not None and math.isfinite(cell["best_value"])
    study = Driver(spec, out, engine=sync_engine, storage=None)
    study.prepare()
    trial = study.runs[0].algo.study.get_trials()[0]
    assert trial.user_attrs["agn"] > 0 and len(trial.intermediate_values) == 2
    paths = write_report(out)
    text = paths["markdown"].read_text()
    assert "| cmaes | agn_val_loss | 0.1 |" in text
    # what AGN was among each AGN cell's full-schedule trials: the trials' own summed AGN
    import json

    rows = {r["cell"]: r for r in json.loads(paths["json"].read_text())["rows"]}
    cmaes = rows["cmaes-agn_val_loss-a0.1"]["agn_trials"]
    (run,) = [r for r in study.runs if r.cell.name == "cmaes-agn_val_loss-a0.1"]
    sums = [t.user_attrs["agn_sum"] for t in run.algo.study.get_trials()
            if t.user_attrs.get("epochs") == 2 and t.user_attrs.get("agn_sum") is not None]
    assert cmaes["trials"] == len(sums) == 2
    assert cmaes["agn_sum_range"] == pytest.approx([min(sums), max(sums)])
    assert "## AGN among the full-schedule trials" in text and "| cmaes-agn_val_loss-a0.1 | 2 |" in text
    assert paths["png"].stat().st_size > 1000
