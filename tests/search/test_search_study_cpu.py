"""The `study-cpu` search preset: the study's protocol (An et al., Tables 1, 2 and 4) asserted
number by number, its per-algorithm alphas and BOHB's convex weighting, and a smoke run of the
whole preset's accounting with the epoch-counting trainer."""

from __future__ import annotations

import math

import pytest

from pgdl_measures.errors import PGDLError
from pgdl_measures.search.driver import Driver
from pgdl_measures.search.objectives import objective_value, per_epoch_values
from pgdl_measures.search.spec import PAPER, load_spec
from pgdl_measures.training.experiments import STUDY_SPACE


def test_study_cpu_follows_the_study():
    spec = load_spec("study-cpu")
    raw = spec.raw
    # the 160-epoch schedule, 32 configurations of 160 epochs per cell, generations of 8
    assert (raw["epochs"], raw["budget"], raw["round_size"]) == (160, 5120, 8)
    assert raw["budget"] // raw["epochs"] == 32
    assert spec.bohb_budgets == [40, 80, 160] and raw["bohb"]["eta"] == 2
    assert raw["algorithms"] == ["cmaes", "pso", "bohb"]
    assert raw["objectives"] == ["val_loss", "agn_train_loss", "agn_val_loss"]
    assert spec.alphas_of("cmaes") == spec.alphas_of("pso") == [0.1, 0.05, 0.005]
    assert spec.alphas_of("bohb") == [0.9, 0.5, 0.1] and raw["bohb"]["weighting"] == "convex"
    # the study's space and start point; only the batch size is capped (a batch cannot exceed
    # the 505 training images)
    assert raw["space"] == {**STUDY_SPACE, "batch_size": {"low": 32, "high": 500, "int": True}}
    assert PAPER["space"] == STUDY_SPACE
    assert raw["start"] == {"batch_size": 100, "learning_rate": 0.01, "momentum": 0.6, "weight_decay": 5e-4}
    assert raw["default"] == {"batch_size": 128, "learning_rate": 0.1, "momentum": 0.9, "weight_decay": 1e-4}
    assert raw["final_seeds"] == [0, 1, 2]
    assert raw["data"]["dataset"] == "digits"
    # 7 cells per algorithm: the validation loss and two AGN objectives at three alphas
    names = [c.name for c in spec.cells]
    assert len(names) == 21 and len(set(names)) == 21
    assert "bohb-agn_val_loss-n0.9" in names and "cmaes-agn_val_loss-a0.005" in names


def test_convex_weighting_is_mean_agn_against_the_loss():
    result = {"val_loss": 0.5, "loss": 0.2, "agn_sum": 40.0, "epochs_run": 40,
              "history": {"loss": [0.3, 0.2], "val_loss": [0.6, 0.5], "online_agn": [3.0, 1.0]}}
    assert objective_value("agn_val_loss", 0.9, result, 160, "convex") == pytest.approx(0.9 * 1.0 + 0.1 * 0.5)
    # additive: AGN normalised to the full schedule, added to the loss
    assert objective_value("agn_val_loss", 0.1, result, 160) == pytest.approx(0.1 * 160.0 + 0.5)
    # the per-epoch values: the mean AGN so far
    assert per_epoch_values("agn_val_loss", 0.5, result, 160, "convex") == pytest.approx(
        [0.5 * 3.0 + 0.5 * 0.6, 0.5 * 2.0 + 0.5 * 0.5])


@pytest.mark.parametrize("over, message", [
    ({"alphas": {"cmaes": [0.1], "bogus": [0.1]}}, "alphas: unknown algorithms bogus"),
    ({"alphas": {"cmaes": [0.1]}}, "alphas gives no list for pso, bohb"),
    ({"alphas": {"cmaes": [0.1], "pso": [], "bohb": [0.5]}}, "alphas.pso must be a non-empty list"),
    ({"alphas": {"cmaes": [0.1, 0.1], "pso": [0.1], "bohb": [0.5]}}, "alphas.cmaes: 0.1 given twice"),
    ({"bohb": {"weighting": "multiplicative"}}, "bohb.weighting must be one of additive, convex"),
])
def test_bad_alphas_and_weighting_are_refused_naming_them(over, message):
    with pytest.raises(PGDLError, match=message):
        load_spec({"preset": "study-cpu", **over})


def test_study_cpu_accounting_smoke(tmp_path, sync_engine):
    """The preset's AGN+Val cells (9 of its 21, 5,120 epochs each, finals) with the epoch-counting trainer."""
    spec = load_spec({"preset": "study-cpu", "trainer": "fake", "final_seeds": [0], "objectives": ["agn_val_loss"]})
    summary = Driver(spec, tmp_path, engine=sync_engine, storage=":memory:").run()
    assert dict(sync_engine.epochs) == {c["cell"]: 5120 for c in summary["cells"]}
    cells = {c["cell"]: c for c in summary["cells"]}
    assert cells["cmaes-agn_val_loss-a0.05"]["configurations"] == 32
    assert cells["pso-agn_val_loss-a0.005"]["rounds"] == 4
    bohb = cells["bohb-agn_val_loss-n0.5"]
    assert bohb["weighting"] == "convex" and bohb["configurations"] == 36
    assert cells["cmaes-agn_val_loss-a0.1"]["weighting"] == "additive"
    assert all(math.isfinite(c["best_value"]) for c in cells.values())
