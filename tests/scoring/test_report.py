"""Ranking across tasks and the report: orientation, partial tasks, breakdowns, scales, self-contained HTML.

On the bundled mini task (32 models, five hyper-parameters of two values each), so they never skip.
"""

from __future__ import annotations

import json
import math
import re

import pytest

from scoring.predictions import generalization_gap, load_model_specs, normalize_model_id
from scoring.rankers import RANKERS
from scoring.ranking import TaskValues, rank_measures
from scoring.report import write_report
from scoring.tables import breakdown_rows, format_score, ranking_rows, summary_rows


@pytest.fixture(scope="module")
def specs(mini_path):
    return load_model_specs(mini_path / "reference_data" / "digits_vgg")


def _task(specs, name="toy", drop=(), with_reference=True):
    gaps = {normalize_model_id(k): generalization_gap(v["metrics"]) for k, v in specs.items()}
    ids = sorted(gaps, key=lambda m: int(m.split("_")[1]))
    gap = {m: gaps[m] for m in ids if m not in drop}
    values = {"gap": gap, "minus_gap": {m: -g for m, g in gap.items()},
              "index": {m: float(i) for i, m in enumerate(ids) if m not in drop}}
    return TaskValues(name, specs if with_reference else None, values, n_models=len(ids))


def test_a_measure_equal_to_the_gap_ranks_perfectly_and_direction_is_applied(specs):
    ranking = rank_measures([_task(specs)], {"gap": 1, "minus_gap": -1, "index": 1}, n_resamples=30)
    assert set(ranking.scores) == set(RANKERS)
    for ranker in RANKERS:  # -gap with direction -1 is ranked as the gap
        assert ranking.scores[ranker]["minus_gap"]["toy"] == ranking.scores[ranker]["gap"]["toy"]
    assert ranking.scores["jiang_cmi_0"]["gap"]["toy"].value == pytest.approx(1.0)
    assert ranking.scores["kendall_tau"]["gap"]["toy"].value > 0.9  # ties in the gap count 0
    assert ranking.ordered_measures("jiang_cmi_0")[-1] == "index"
    score = ranking.scores["kendall_tau"]["index"]["toy"]
    assert score.low <= score.value <= score.high and not score.partial
    again = rank_measures([_task(specs)], {"gap": 1, "minus_gap": -1, "index": 1}, n_resamples=30)
    assert again.scores == ranking.scores  # the bootstrap is seeded
    assert ranking.average("kendall_tau", "gap") == ranking.scores["kendall_tau"]["gap"]["toy"].value


def test_partial_tasks_and_tasks_without_reference(specs):
    ranking = rank_measures([_task(specs, "a", drop=("model_3",)), _task(specs, "b", with_reference=False)],
                            {"gap": 1}, n_resamples=0)
    score = ranking.scores["kendall_tau"]["gap"]["a"]
    assert (score.n_models, score.n_total, score.partial) == (31, 32, True)
    assert format_score(score).endswith("*") and math.isnan(score.low)
    assert ranking.ranked_tasks == ["a"]
    assert any("b: no reference data" in n for n in ranking.notes)
    header, rows = ranking_rows(ranking, "kendall_tau", with_tests=False)
    assert header == ["measure", "a", "average"] and rows[0][0] == "gap"
    header, _ = ranking_rows(ranking, "kendall_tau")
    assert header == ["measure", "a", "p null", "grp", "average", "grp"]


def test_breakdown_marks_the_set_of_the_minimum(specs):
    ranking = rank_measures([_task(specs)], {"index": 1}, n_resamples=0)
    header, rows = breakdown_rows(ranking, "competition_cmi", "toy")
    assert len(header) == 1 + 20  # every ordered pair of the five hyper-parameters
    chosen = ranking.selected["competition_cmi"]["toy"]["index"]
    marked = [h for h, cell in zip(header[1:], rows[0][1:]) if cell.endswith(" <")]
    assert marked == [" | ".join(chosen)]
    values = ranking.breakdowns["competition_cmi"]["toy"]["index"]
    assert ranking.scores["competition_cmi"]["index"]["toy"].value == pytest.approx(values[chosen])
    cell = next(c for c in rows[0][1:] if c.endswith(" <"))  # shown x100, as the competition's scores
    assert float(cell[:-2]) == pytest.approx(100 * values[chosen], abs=0.051)


def test_write_report(specs, tmp_path):
    ranking = rank_measures([_task(specs)], {"gap": 1, "index": 1}, n_resamples=10)
    md, page = write_report(ranking, tmp_path, meta={"title": "T", "backend": "tensorflow"},
                            status=(["measure", "toy"], [["gap", "18 / 0 / 0"]]), notes=["a note"])
    text = md.read_text()
    assert text.startswith("# T\n") and "| gap | 1.000 [" in text and "a note" in text
    assert "### competition_cmi (x100)" in text and "| measure | competition_cmi (x100) |" in text
    assert "![toy: measure vs. gap](plots/toy.png)" in text
    assert (tmp_path / "plots" / "toy.png").read_bytes().startswith(b"\x89PNG")
    html = page.read_text()
    sources = re.findall(r'src="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "href=" not in html and "<script" not in html
    assert html.count("<table>") >= len(RANKERS) + 2
    saved = json.loads((tmp_path / "ranking.json").read_text())
    assert saved["rankers"]["kendall_tau"]["scores"]["gap"]["toy"]["models"] == 32
    cmi = saved["rankers"]["competition_cmi"]
    assert cmi["scale"] == 100 and saved["rankers"]["kendall_tau"]["scale"] == 1
    assert cmi["scores"]["gap"]["toy"]["value"] == pytest.approx(
        100 * ranking.scores["competition_cmi"]["gap"]["toy"].value)
    assert cmi["average"]["gap"] == pytest.approx(100 * ranking.average("competition_cmi", "gap"))


def test_the_competition_cmi_is_shown_x100_everywhere_and_labelled(specs):
    """One scale for the competition's CMI: x100, as `pgdl score` and the leaderboard show it."""
    ranking = rank_measures([_task(specs)], {"gap": 1, "index": 1}, n_resamples=10)
    score = ranking.scores["competition_cmi"]["index"]["toy"]
    assert 0 < score.value < 1  # kept as the ranker computes it
    header, rows = ranking_rows(ranking, "competition_cmi")
    row = next(r for r in rows if r[0] == "index")
    assert row[1] == format_score(score, scale=100)
    assert float(row[1].split()[0]) == pytest.approx(100 * score.value, abs=0.051)
    assert float(row[header.index("average")]) == pytest.approx(100 * score.value, abs=0.051)
    header, rows = summary_rows(ranking)
    assert header[1] == "competition_cmi (x100)" and "kendall_tau" in header
    row = next(r for r in rows if r[0] == "index")
    assert float(row[1].split()[0]) == pytest.approx(100 * score.value, abs=0.051)
    kendall = ranking.scores["kendall_tau"]["index"]["toy"].value
    assert float(row[header.index("kendall_tau")].split()[0]) == pytest.approx(kendall, abs=5e-4)


def test_format_score_keeps_three_decimals_of_the_fraction():
    from scoring.ranking import Score

    score = Score(0.2224, 0.13, 0.5561, 18, 18)
    assert format_score(score) == "0.222 [0.130, 0.556]"
    assert format_score(score, scale=100) == "22.2 [13.0, 55.6]"
    assert format_score(Score(0.2224, math.nan, math.nan, 17, 18), scale=100) == "22.2*"
