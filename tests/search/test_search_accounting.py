"""The paper preset's budget accounting with a trainer that only counts epochs (no Keras, no
Dask: a synchronous stand-in engine)."""

from __future__ import annotations

import collections

import pytest

from pgdl_measures.search import algorithms
from pgdl_measures.search.driver import Driver
from pgdl_measures.search.objectives import DIVERGED_VALUE, objective_value
from pgdl_measures.search.spec import load_spec


def _paper(**over):
    return load_spec({"preset": "paper", "trainer": "fake", "objectives": ["val_loss"], "final_seeds": [0],
                      **over})


def test_paper_preset_accounting(tmp_path, sync_engine):
    spec = _paper()
    engine = sync_engine
    summary = Driver(spec, tmp_path, engine=engine, storage=":memory:").run()
    cells = {c["algorithm"]: c for c in summary["cells"]}
    # what the trainer was asked to train: 5,120 GPU x epochs per cell, nothing twice
    assert dict(engine.epochs) == {c["cell"]: 5120 for c in summary["cells"]}
    for name in ("random", "cmaes", "pso"):
        assert cells[name]["configurations"] == 32 and cells[name]["trials"] == 32
        assert cells[name]["rounds"] == 4
        assert cells[name]["epochs"] == 5120
    assert cells["bohb"]["configurations"] == 36
    assert cells["bohb"]["trials"] == 4 * (4 + 2 + 1 + 2 + 1 + 3)
    assert cells["bohb"]["epochs"] == 5120
    assert cells["bohb"]["rounds"] == 4
    # every cell trained a best configuration and the default on the full set
    assert all(c["final"]["test_accuracy_mean"] is not None for c in summary["cells"])
    assert summary["default"]["test_accuracy_mean"] is not None


def test_bohb_brackets_match_hpbandster():
    assert algorithms.bohb_brackets(3, 2) == [[4, 2, 1], [2, 1], [3]]
    assert _paper().bohb_budgets == [40, 80, 160]


def test_cmaes_rounds_are_generations(tmp_path, sync_engine):
    spec = _paper(algorithms=["cmaes"])
    driver = Driver(spec, tmp_path, engine=sync_engine, storage=":memory:")
    driver.run()
    trials = driver.runs[0].algo.study.get_trials()
    by_round = collections.defaultdict(set)
    for t in trials:
        by_round[t.user_attrs["round"]].add(t.user_attrs["cma_generation"])
    assert dict(by_round) == {0: {0}, 1: {1}, 2: {2}, 3: {3}}
    # round 1 is sampled around the start point, not independently at random (pinned space)
    first = [t.params["learning_rate"] for t in trials if t.user_attrs["round"] == 0]
    assert all(1e-4 < lr < 1.0 for lr in first)


def test_partial_last_round_and_diverged_values():
    spec = _paper(budget=160 * 11)
    algo_counts = algorithms.RandomSearch.round_count
    assert algo_counts(type("A", (), {"spec": spec})(), 160 * 3) == 3
    assert objective_value("val_loss", None, {"diverged": True}, 160) == DIVERGED_VALUE
    assert objective_value("val_loss", None, {"val_loss": float("nan")}, 160) == DIVERGED_VALUE
    # AGN normalised to the full schedule: a 40-epoch run's sum counts 4 times
    short = {"val_loss": 1.0, "agn_sum": 2.0, "epochs_run": 40}
    full = {"val_loss": 1.0, "agn_sum": 8.0, "epochs_run": 160}
    assert objective_value("agn_val_loss", 0.5, short, 160) == pytest.approx(objective_value("agn_val_loss", 0.5,
                                                                                             full, 160))
