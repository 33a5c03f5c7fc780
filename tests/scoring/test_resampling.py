"""The vectorized resampling engine against the loop it replaces, and the tests built on it.

Real grids: the bundled tasks' model_configs.json (data/mini: 32 models, data/mnist_conv: 64).
"""

from __future__ import annotations

import itertools
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from scoring.cmi import CMIWarning
from scoring.predictions import load_reference, scoring_grid
from scoring.rankers import RANKERS, bootstrap_ci_grid, half_sample_spread
from scoring.ranking import AVERAGE, TaskValues, rank_measures
from scoring.resampling import (
    holm,
    percentile_interval,
    permutation_pvalue,
    resample_weights,
    two_sided_pvalue,
    weights_to_indices,
)
from scoring.robust import environment_sign_errors

ROOT = Path(__file__).resolve().parents[2]
REFERENCES = {
    "mini": ROOT / "data" / "mini" / "reference_data" / "digits_vgg" / "model_configs.json",
    "mnist_conv": ROOT / "data" / "mnist_conv" / "reference_data" / "mnist_conv" / "model_configs.json",
}
EXACT = {"competition_cmi", "kendall_tau", "jiang_cmi_0", "jiang_cmi_1", "robust_sign_error"}


@pytest.fixture(scope="module", params=sorted(REFERENCES))
def task(request):
    specs = load_reference(REFERENCES[request.param])[0]
    grid = scoring_grid(specs)
    rng = np.random.default_rng(7)
    values = np.round(grid.gaps + rng.normal(0, 0.02, grid.n_models), 2)  # rounded: ties in the measure
    return specs, grid, values


def _loop(ranker, values, grid, weights):
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CMIWarning)
        for w in weights:
            idx = weights_to_indices(w)
            out.append(ranker.score_grid(values[idx], grid.take(idx)))
    return np.array(out)


@pytest.mark.parametrize("scheme", ["bootstrap", "halfsample"])
@pytest.mark.parametrize("name", list(RANKERS))
def test_batch_equals_the_loop_over_resampled_grids(task, name, scheme):
    _, grid, values = task
    weights = resample_weights(grid.n_models, 40, scheme=scheme, seed=3)
    ranker = RANKERS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CMIWarning)
        batch = ranker.score_batch(values, grid, weights)
    loop = _loop(ranker, values, grid, weights)
    assert np.isfinite(loop).any()
    if name in EXACT:
        assert np.array_equal(batch, loop, equal_nan=True)
    else:  # sums taken in another order
        np.testing.assert_allclose(batch, loop, rtol=1e-12, atol=1e-15)


def test_bootstrap_draws_are_the_loops_draws(task):
    _, grid, values = task
    weights = resample_weights(grid.n_models, 200, scheme="bootstrap", seed=11)
    for name in ("competition_cmi", "kendall_tau"):
        ranker = RANKERS[name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CMIWarning)
            engine = percentile_interval(ranker.score_batch(values, grid, weights), 0.95)
        assert engine == bootstrap_ci_grid(ranker, values, grid, n_resamples=200, seed=11)


def test_half_samples_hold_half_the_models_once():
    weights = resample_weights(33, 50, scheme="halfsample", seed=0)
    assert set(np.unique(weights)) == {0.0, 1.0}
    assert (weights.sum(axis=1) == 16).all()
    assert len({tuple(w) for w in weights}) == 50


def test_half_sample_spread_is_one_for_models_and_smaller_for_granulated_pairs(task):
    _, grid, _ = task
    weights = resample_weights(grid.n_models, 400, scheme="halfsample", seed=0)
    assert half_sample_spread(RANKERS["kendall_tau"], grid, weights) == 1.0
    c = half_sample_spread(RANKERS["granulated_kendall"], grid, weights)
    assert 0.5 < c < 0.65  # pairs in 2-valued groups: f about 1/4, sqrt(f / (1 - f)) about 0.58


def test_robust_sign_error_equals_a_direct_count(task):
    _, grid, values = task
    ranker = RANKERS["robust_sign_error"]
    worst, count = -1.0, 0
    for h in range(len(grid.hparams)):
        others = np.delete(grid.value_index, h, axis=1)
        for key in {tuple(r) for r in others}:
            members = [i for i in range(grid.n_models) if tuple(others[i]) == key]
            errors = [0.5 * (1 - np.sign(values[i] - values[j]) * np.sign(grid.gaps[i] - grid.gaps[j]))
                      for i, j in itertools.combinations(members, 2) if grid.gaps[i] != grid.gaps[j]]
            if errors:
                worst, count = max(worst, float(np.mean(errors))), count + 1
    assert ranker.score_grid(values, grid) == worst
    per_env = environment_sign_errors(values, grid, np.ones((1, grid.n_models)))
    assert sum(int(np.isfinite(e).sum()) for e in per_env) == count


def test_holm_matches_the_step_down_rule():
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan])
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4 x 0.005, 3 x 0.01, 2 x 0.03, max(0.06, 1 x 0.04)
    np.testing.assert_allclose(holm(p)[:4], [0.03, 0.06, 0.06, 0.02])
    assert math.isnan(holm(p)[4])


def test_p_values():
    assert two_sided_pvalue(np.zeros(100)) == 1.0
    assert two_sided_pvalue(np.full(100, 0.3)) == 0.0
    assert permutation_pvalue(1.0, np.zeros(99)) == 0.01
    assert permutation_pvalue(0.0, np.ones(99), larger_is_better=False) == 0.01


@pytest.fixture(scope="module")
def ranked():
    specs = load_reference(REFERENCES["mnist_conv"])[0]
    grid = scoring_grid(specs)
    rng = np.random.default_rng(0)
    ids = list(grid.model_ids)
    gap = dict(zip(ids, grid.gaps))
    measures = {
        "gap": gap,
        "gap_copy": dict(gap),
        "noisy": {m: g + rng.normal(0, 0.03) for m, g in gap.items()},
        "unrelated": dict(zip(ids, rng.normal(size=len(ids)))),
    }
    task = TaskValues("mnist_conv", specs, measures, len(ids))
    other = TaskValues("other", specs, {m: {k: -v for k, v in vals.items()} if m == "noisy" else vals
                                        for m, vals in measures.items()}, len(ids))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CMIWarning)
        return rank_measures([task, other], {m: 1 for m in measures}, n_resamples=300, n_permutations=300, workers=1)


def test_permutation_null_separates_a_measure_from_noise(ranked):
    for ranker in ("competition_cmi", "kendall_tau", "granulated_kendall", "jiang_cmi_0"):
        scores = ranked.scores[ranker]
        assert scores["gap"]["mnist_conv"].p_null < 0.01, ranker
        assert scores["unrelated"]["mnist_conv"].p_null > 0.05, ranker


def test_paired_comparisons_tell_copies_apart_from_worse_measures(ranked):
    groups = ranked.leader_group("kendall_tau", "mnist_conv")
    assert groups["gap"] == "leader" and groups["gap_copy"] == "tied"
    assert groups["unrelated"] == "worse"
    copy = next(c for c in ranked.comparisons["kendall_tau"]["mnist_conv"] if {c.a, c.b} == {"gap", "gap_copy"})
    assert copy.diff == 0 and copy.p == 1.0
    # on the average, "noisy" is good on one task and reversed on the other: worse than the gap
    assert ranked.leader_group("kendall_tau", AVERAGE)["noisy"] == "worse"
    low, high = ranked.average_ci["kendall_tau"]["noisy"]
    assert low <= ranked.average("kendall_tau", "noisy") <= high


def test_robust_sign_error_is_ordered_smaller_first_and_has_no_interval(ranked):
    assert ranked.ordered_measures("robust_sign_error")[0] in ("gap", "gap_copy")
    score = ranked.scores["robust_sign_error"]["gap"]["mnist_conv"]
    assert score.value == 0 and math.isnan(score.low)
    assert ranked.leader_group("robust_sign_error", "mnist_conv")["unrelated"] == "untested"  # no paired test


def test_rankings_repeat_exactly_and_do_not_depend_on_workers(ranked):
    tasks, directions = ranked.tasks, ranked.directions
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CMIWarning)
        again = rank_measures(tasks, directions, n_resamples=300, n_permutations=300, workers=2)
    assert again.to_dict() == ranked.to_dict()


def test_every_committed_point_estimate_lies_in_its_interval():
    """The committed ranking of every measure on the two bundled tasks (results/ranking)."""
    import json

    saved = json.loads((ROOT / "results" / "ranking" / "ranking.json").read_text())
    checked = 0
    for ranker in saved["rankers"].values():
        for by_task in ranker["scores"].values():
            for score in by_task.values():
                low, high = score["ci"]
                if low is not None and score["value"] is not None:
                    assert low - 1e-9 <= score["value"] <= high + 1e-9
                    checked += 1
    assert checked >= 300
