"""Ranking across tasks and the report: orientation, partial tasks, breakdowns, self-contained HTML."""

from __future__ import annotations

import json
import math
import re

import pytest

from scoring.predictions import generalization_gap, load_model_specs, normalize_model_id
from scoring.rankers import RANKERS
from scoring.report import TaskValues, breakdown_rows, format_score, rank_measures, ranking_rows, write_report


@pytest.fixture(scope="module")
def specs(toy_path):
    return load_model_specs(toy_path)


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
    assert (score.n_models, score.n_total, score.partial) == (17, 18, True)
    assert format_score(score).endswith("*") and math.isnan(score.low)
    assert ranking.ranked_tasks == ["a"]
    assert any("b: no reference data" in n for n in ranking.notes)
    header, rows = ranking_rows(ranking, "kendall_tau")
    assert header == ["measure", "a", "average"] and rows[0][0] == "gap"


def test_breakdown_marks_the_set_of_the_minimum(specs):
    ranking = rank_measures([_task(specs)], {"index": 1}, n_resamples=0)
    header, rows = breakdown_rows(ranking, "competition_cmi", "toy")
    assert len(header) == 1 + 6  # every ordered pair of the three hyper-parameters
    chosen = ranking.selected["competition_cmi"]["toy"]["index"]
    marked = [h for h, cell in zip(header[1:], rows[0][1:]) if cell.endswith(" <")]
    assert marked == [" | ".join(chosen)]
    values = ranking.breakdowns["competition_cmi"]["toy"]["index"]
    assert ranking.scores["competition_cmi"]["index"]["toy"].value == pytest.approx(values[chosen])


def test_write_report(specs, tmp_path):
    ranking = rank_measures([_task(specs)], {"gap": 1, "index": 1}, n_resamples=10)
    md, page = write_report(ranking, tmp_path, meta={"title": "T", "backend": "tensorflow"},
                            status=(["measure", "toy"], [["gap", "18 / 0 / 0"]]), notes=["a note"])
    text = md.read_text()
    assert text.startswith("# T\n") and "| gap | 1.000 [" in text and "a note" in text
    assert "![toy: measure vs. gap](plots/toy.png)" in text
    assert (tmp_path / "plots" / "toy.png").read_bytes().startswith(b"\x89PNG")
    html = page.read_text()
    sources = re.findall(r'src="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "href=" not in html and "<script" not in html
    assert html.count("<table>") >= len(RANKERS) + 2
    saved = json.loads((tmp_path / "ranking.json").read_text())
    assert saved["rankers"]["kendall_tau"]["scores"]["gap"]["toy"]["models"] == 18
