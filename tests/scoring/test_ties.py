"""Ties in a measure: a nearly constant measure must not score 1 from its few untied pairs.

Jiang et al.'s V_mu = sign(mu_i - mu_j) is 0 on a tie, a value that tells nothing about the
gap; the rankers' tables mark the scores of a measure tied on most pairs with ``~``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from scoring.rankers import RANKERS, prepare_values, untied_fraction_grid

pytestmark = pytest.mark.filterwarnings("ignore::scoring.cmi.CMIWarning")

POSSIBLE = {"width": [64, 128, 256], "depth": [1, 2, 3], "act": ["relu", "tanh"]}


def specs_and_gaps():
    rng = np.random.default_rng(0)
    specs = {}
    for k, combo in enumerate(itertools.product(*POSSIBLE.values())):
        specs[f"model_{k}"] = {
            "hparams": {n: {"possible_values": POSSIBLE[n], "current_value": v} for n, v in zip(POSSIBLE, combo)},
            "metrics": {"train_acc": 1.0, "test_acc": float(rng.uniform(0.5, 0.9))},
        }
    gaps = {m: s["metrics"]["train_acc"] - s["metrics"]["test_acc"] for m, s in specs.items()}
    return specs, gaps


def nearly_constant(gaps, n_distinct=2):
    """0 for every model but the `n_distinct` with the largest gaps, which get 1, 2, ... in gap order:
    every untied pair is ordered as the gaps are."""
    top = sorted(gaps, key=gaps.get)[-n_distinct:]
    return {m: float(top.index(m) + 1) if m in top else 0.0 for m in gaps}


@pytest.mark.parametrize("ranker", ["jiang_cmi_0", "jiang_cmi_1", "jiang_cmi_2"])
def test_a_nearly_constant_measure_does_not_score_one(ranker):
    specs, gaps = specs_and_gaps()
    values = nearly_constant(gaps)
    array, grid = prepare_values(values, specs)
    untied = untied_fraction_grid(array, grid)
    n = len(gaps)
    assert untied == pytest.approx((2 * (n - 2) + 1) / (n * (n - 1) / 2))
    score = RANKERS[ranker](values, specs)
    assert score < 0.5  # it was 1.000 when ties were dropped
    assert score == pytest.approx(untied, abs=0.05)  # about the fraction of informative pairs


def test_an_informative_measure_keeps_its_score():
    specs, gaps = specs_and_gaps()
    assert RANKERS["jiang_cmi_0"](gaps, specs) == pytest.approx(1.0)
    assert RANKERS["jiang_cmi_2"](gaps, specs) == pytest.approx(1.0)


def test_a_constant_measure_scores_zero():
    specs, gaps = specs_and_gaps()
    values = dict.fromkeys(gaps, 3.0)
    for name in ("jiang_cmi_0", "jiang_cmi_1", "jiang_cmi_2"):
        assert RANKERS[name](values, specs) == 0.0
    array, grid = prepare_values(values, specs)
    assert untied_fraction_grid(array, grid) == 0.0


def test_the_jiang_cmi_is_still_unchanged_by_negating_the_measure():
    specs, gaps = specs_and_gaps()
    values = {m: round(v * 10) for m, v in gaps.items()}  # some ties
    negated = {m: -v for m, v in values.items()}
    for name in ("jiang_cmi_0", "jiang_cmi_1", "jiang_cmi_2"):
        assert RANKERS[name](values, specs) == pytest.approx(RANKERS[name](negated, specs))


def test_tables_mark_scores_of_a_mostly_tied_measure(tmp_path):
    from scoring.ranking import FEW_UNTIED, TaskValues, rank_measures
    from scoring.report import write_report
    from scoring.tables import ranking_rows, ties_legend

    specs, gaps = specs_and_gaps()
    task = TaskValues("t", specs, {"flat": nearly_constant(gaps), "good": dict(gaps)}, len(gaps))
    ranking = rank_measures([task], {"flat": 1, "good": 1}, n_resamples=0)
    flat = ranking.scores["jiang_cmi_2"]["flat"]["t"]
    assert flat.untied < FEW_UNTIED and flat.mostly_tied
    assert not ranking.scores["jiang_cmi_2"]["good"]["t"].mostly_tied
    for ranker in ranking.rankers:
        rows = {row[0]: row for row in ranking_rows(ranking, ranker)[1]}
        assert rows["flat"][1].endswith("~") and not rows["good"][1].endswith("~")
    assert ties_legend(ranking).startswith("~:")
    assert any("t, flat: the values differ on only" in note for note in ranking.notes)
    assert ranking.to_dict()["rankers"]["jiang_cmi_2"]["scores"]["flat"]["t"]["untied_pairs"] == \
        pytest.approx(flat.untied)
    md, _ = write_report(ranking, tmp_path)
    text = md.read_text()
    assert "`~`: the measure's values are tied" in text


def test_terminal_table_has_the_legend():
    from pgdl_measures.cli._tables import ranking_table
    from scoring.ranking import TaskValues, rank_measures

    specs, gaps = specs_and_gaps()
    task = TaskValues("t", specs, {"flat": nearly_constant(gaps)}, len(gaps))
    ranking = rank_measures([task], {"flat": 1}, n_resamples=0)
    assert "tied" in str(ranking_table(ranking).caption)
    assert not math.isnan(ranking.scores["kendall_tau"]["flat"]["t"].untied)
