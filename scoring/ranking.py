"""Ranking of measures across tasks: the numbers behind ``pgdl evaluate``'s tables and report.

:func:`rank_measures` scores every measure on every task with every ranker of
:data:`scoring.rankers.RANKERS` (with seeded bootstrap confidence intervals) and keeps each
ranker's breakdown (the value of each conditioning set, and the set that gave the minimum).
:func:`ranking_rows`, :func:`summary_rows`, :func:`selected_rows` and :func:`breakdown_rows`
give the tables as text cells (header, rows) that every renderer shares: Markdown and HTML in
:mod:`scoring.report`, the terminal in the CLI.

Measures are oriented before ranking: a measure whose ``direction`` is -1 (a larger value
predicts a *smaller* gap) is ranked by ``-value``, so that for every ranker larger is better.

Scales: scores are kept as the rankers compute them (the competition's CMI as a fraction);
every table and ``ranking.json`` shows a ranker's scores multiplied by its ``scale``
(:attr:`scoring.rankers.Ranker.scale`): the competition's CMI x100, as the competition's
scores were shown (``pgdl score``'s average), and labelled so (``competition_cmi (x100)``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scoring.errors import PGDLError
from scoring.predictions import generalization_gap, normalize_model_id
from scoring.rankers import RANKERS, Ranker, bootstrap_ci_grid, prepare_values, untied_fraction_grid

__all__ = ["FEW_UNTIED", "MAIN_RANKER", "Ranking", "Score", "TaskValues", "breakdown_rows", "format_score",
           "rank_measures", "ranker_label", "ranking_rows", "selected_rows", "summary_rows", "ties_legend"]

#: The ranker shown first (and alone in the per-task console table).
MAIN_RANKER = "competition_cmi"

#: A score whose measure differs on fewer than this fraction of the pairs of models with
#: different gaps is marked ``~`` in every table: it rests on few pairs.
FEW_UNTIED = 0.5


@dataclass
class TaskValues:
    """What is ranked on one task.

    Attributes:
        name: the task's name.
        model_specs: the task's ``model_configs.json`` mapping, or None when the task has no
            reference data (then it is not ranked).
        values: measure -> model id -> value (finite, as the measure computed it; models
            without a value are left out).
        n_models: how many models of the task were evaluated (a measure with fewer values is
            marked as ranked on part of the models).
    """

    name: str
    model_specs: Mapping[str, Any] | None
    values: dict[str, dict[str, float]]
    n_models: int = 0

    def gaps(self) -> dict[str, float]:
        """Model id (normalized) -> generalization gap, from the reference data."""
        if not self.model_specs:
            return {}
        return {normalize_model_id(mid): float(generalization_gap(spec["metrics"]))
                for mid, spec in self.model_specs.items()}


@dataclass(frozen=True)
class Score:
    """One ranker's score of one measure on one task, with its bootstrap interval."""

    value: float
    low: float
    high: float
    n_models: int
    n_total: int
    untied: float = math.nan
    """The fraction of the pairs of models with different gaps whose measure values differ
    (:func:`scoring.rankers.untied_fraction_grid`); below :data:`FEW_UNTIED` the cell is marked."""

    @property
    def partial(self) -> bool:
        return self.n_models < self.n_total

    @property
    def mostly_tied(self) -> bool:
        return self.untied < FEW_UNTIED

    def to_dict(self, scale: float = 1.0) -> dict[str, Any]:
        """JSON-able, the value and interval multiplied by `scale`."""
        return {"value": _json_float(scale * self.value),
                "ci": [_json_float(scale * self.low), _json_float(scale * self.high)],
                "models": self.n_models, "models_evaluated": self.n_total,
                "untied_pairs": _json_float(self.untied)}


@dataclass
class Ranking:
    """Scores of measures on tasks by every ranker (see :func:`rank_measures`).

    Attributes:
        rankers: ranker name -> its one-line description.
        scales: ranker name -> the factor its scores are shown with (100 for the competition's
            CMI; 1 when absent). The scores themselves are kept unscaled.
        measures: the measures, in the order given.
        directions: measure -> +1 or -1 (see the module docstring).
        tasks: what was ranked, per task.
        scores: ranker -> measure -> task -> :class:`Score` (absent: not ranked).
        breakdowns: ranker -> task -> measure -> conditioning set -> value.
        selected: ranker -> task -> measure -> the set behind the score (or None).
        confidence: the coverage of the intervals.
        n_resamples: the number of bootstrap resamples.
        notes: why a measure or task was not ranked, and warnings of the scores.
    """

    rankers: dict[str, str]
    measures: list[str]
    directions: dict[str, int]
    tasks: list[TaskValues]
    scores: dict[str, dict[str, dict[str, Score]]] = field(default_factory=dict)
    breakdowns: dict[str, dict[str, dict[str, dict[tuple, float]]]] = field(default_factory=dict)
    selected: dict[str, dict[str, dict[str, tuple | None]]] = field(default_factory=dict)
    confidence: float = 0.95
    n_resamples: int = 1000
    notes: list[str] = field(default_factory=list)
    scales: dict[str, float] = field(default_factory=dict)

    def scale(self, ranker: str) -> float:
        """The factor `ranker`'s scores are shown with (see :attr:`scoring.rankers.Ranker.scale`)."""
        return float(self.scales.get(ranker, 1.0))

    @property
    def ranked_tasks(self) -> list[str]:
        """The tasks with at least one score."""
        names = {t for by_measure in self.scores.values() for by_task in by_measure.values() for t in by_task}
        return [t.name for t in self.tasks if t.name in names]

    def average(self, ranker: str, measure: str) -> float:
        """The mean of the measure's finite scores over tasks (NaN when there is none)."""
        found = [s.value for s in self.scores.get(ranker, {}).get(measure, {}).values() if math.isfinite(s.value)]
        return float(np.mean(found)) if found else math.nan

    def ordered_measures(self, ranker: str = MAIN_RANKER) -> list[str]:
        """The measures by decreasing average score of `ranker` (unscored ones last)."""
        def key(item):
            index, name = item
            avg = self.average(ranker, name)
            return (math.isnan(avg), -avg if not math.isnan(avg) else 0.0, index)
        return [name for _, name in sorted(enumerate(self.measures), key=key)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view: scores with intervals, averages, breakdowns, each ranker's on the scale
        it is shown with (its ``scale``: 100 for the competition's CMI)."""
        out: dict[str, Any] = {"confidence": self.confidence, "n_resamples": self.n_resamples,
                               "directions": self.directions, "tasks": [t.name for t in self.tasks],
                               "rankers": {}, "notes": self.notes}
        for ranker, description in self.rankers.items():
            scale = self.scale(ranker)
            out["rankers"][ranker] = {
                "description": description,
                "scale": scale,
                "scores": {m: {t: s.to_dict(scale) for t, s in by_task.items()}
                           for m, by_task in self.scores.get(ranker, {}).items()},
                "average": {m: _json_float(scale * self.average(ranker, m)) for m in self.measures},
                "breakdown": {t: {m: {_set_name(k): _json_float(scale * v) for k, v in sets.items()}
                                  for m, sets in by_measure.items()}
                              for t, by_measure in self.breakdowns.get(ranker, {}).items()},
                "selected": {t: {m: None if k is None else _set_name(k) for m, k in by_measure.items()}
                             for t, by_measure in self.selected.get(ranker, {}).items()},
            }
        return out


def _json_float(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _set_name(key: Any) -> str:
    if isinstance(key, tuple):
        return " | ".join(map(str, key)) if key else "(none)"
    return str(key)


def rank_measures(tasks: Sequence[TaskValues], directions: Mapping[str, int], *,
                  rankers: Mapping[str, Ranker] | None = None, n_resamples: int = 1000,
                  confidence: float = 0.95, seed: int = 0) -> Ranking:
    """Score every measure on every task with every ranker, with bootstrap intervals.

    For task t, measure m and ranker r: ``r(direction_m * values, model_specs_t)`` over the
    models that have a value, and the percentile bootstrap interval of
    :func:`scoring.rankers.bootstrap_ci` (seed `seed`, the same for every cell, so results
    repeat exactly). Tasks without reference data are not ranked (a note says so); a
    :class:`scoring.cmi.CMIWarning` or a :class:`PGDLError` of a score becomes a note.

    Args:
        tasks: the values per task.
        directions: measure -> +1 or -1; the measures ranked, in this order.
        rankers: name -> ranker (all of :data:`scoring.rankers.RANKERS` by default).
        n_resamples: bootstrap resamples per score (0: no interval).
        confidence: coverage of the intervals.
        seed: seed of the bootstrap.

    Returns:
        A :class:`Ranking`.
    """
    rankers = dict(RANKERS if rankers is None else rankers)
    ranking = Ranking(rankers={name: r.description for name, r in rankers.items()},
                      measures=list(directions), directions=dict(directions), tasks=list(tasks),
                      confidence=confidence, n_resamples=n_resamples,
                      scales={name: float(getattr(r, "scale", 1.0)) for name, r in rankers.items()})
    for task in tasks:
        if not task.model_specs:
            ranking.notes.append(f"{task.name}: no reference data (model_configs.json), so no ranking")
            continue
        for measure, sign in directions.items():
            values = task.values.get(measure) or {}
            if not values:
                continue
            oriented = {mid: sign * v for mid, v in values.items()}
            try:
                array, grid = prepare_values(oriented, task.model_specs)
            except PGDLError as exc:
                ranking.notes.append(f"{task.name}, {measure}: not ranked: {exc}")
                continue
            untied = untied_fraction_grid(array, grid)
            if untied < FEW_UNTIED:
                ranking.notes.append(
                    f"{task.name}, {measure}: the values differ on only {untied:.1%} of the pairs of models "
                    "with different gaps (the rest are ties, which tell nothing): its scores, marked ~, rest on "
                    "few pairs")
            for name, ranker in rankers.items():
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    try:
                        value = ranker.score_grid(array, grid)
                        breakdown = ranker.breakdown_grid(array, grid)
                        low, high = (bootstrap_ci_grid(ranker, array, grid, n_resamples=n_resamples,
                                                       confidence=confidence, seed=seed)
                                     if n_resamples > 0 else (math.nan, math.nan))
                    except PGDLError as exc:
                        ranking.notes.append(f"{task.name}, {measure}, {name}: not ranked: {exc}")
                        continue
                for item in caught:
                    note = f"{task.name}, {measure}, {name}: {item.message}"
                    if note not in ranking.notes:
                        ranking.notes.append(note)
                ranking.scores.setdefault(name, {}).setdefault(measure, {})[task.name] = Score(
                    float(value), low, high, len(array), max(task.n_models, len(array)), untied)
                if breakdown:
                    ranking.breakdowns.setdefault(name, {}).setdefault(task.name, {})[measure] = breakdown
                    ranking.selected.setdefault(name, {}).setdefault(task.name, {})[measure] = \
                        ranker.selected_set(breakdown)
    return ranking


# ----------------------------------------------------------------------------- tables as text


def format_score(score: Score | None, *, with_ci: bool = True, scale: float = 1.0) -> str:
    """``0.222 [0.130, 0.556]`` (``*`` when ranked on part of the models, ``~`` when the measure
    is tied on most pairs, :data:`FEW_UNTIED`), ``-`` when absent.

    With ``scale=100``: ``22.2 [13.0, 55.6]`` (the same three significant decimals).
    """
    if score is None:
        return "-"
    text = _num(score.value, scale)
    if with_ci and math.isfinite(score.low):
        text += f" [{_num(score.low, scale)}, {_num(score.high, scale)}]"
    return text + ("*" if score.partial else "") + ("~" if score.mostly_tied else "")


def ties_legend(ranking: Ranking) -> str:
    """The legend of the ``~`` mark, or "" when no score of the ranking has it."""
    marked = any(score.mostly_tied for by_measure in ranking.scores.values()
                 for by_task in by_measure.values() for score in by_task.values())
    return (f"~: the measure's values are tied on more than {1 - FEW_UNTIED:.0%} of the pairs of models with "
            "different gaps, so the score rests on few pairs (see the notes)") if marked else ""


def _num(value: float, scale: float = 1.0) -> str:
    """`value` x `scale` with three decimals of the unscaled value (``0.222`` -> ``22.2`` x100)."""
    if value is None or not math.isfinite(value):
        return "nan"
    decimals = max(0, 3 - round(math.log10(scale))) if scale > 0 else 3
    return f"{value * scale:.{decimals}f}"


def ranker_label(ranking: Ranking, ranker: str) -> str:
    """The ranker's name with its scale when it is not 1: ``competition_cmi (x100)``."""
    scale = ranking.scale(ranker)
    return ranker if scale == 1 else f"{ranker} (x{scale:g})"


def ranking_rows(ranking: Ranking, ranker: str, *, with_ci: bool = True) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the measure x task table of one ranker (plus the average column), on the
    ranker's scale (see :func:`ranker_label`)."""
    tasks = ranking.ranked_tasks
    header = ["measure"] + tasks + ["average"]
    rows = []
    scale = ranking.scale(ranker)
    for measure in ranking.ordered_measures(ranker):
        by_task = ranking.scores.get(ranker, {}).get(measure, {})
        rows.append([measure] + [format_score(by_task.get(t), with_ci=with_ci, scale=scale) for t in tasks]
                    + [_num(ranking.average(ranker, measure), scale) if by_task else "-"])
    return header, rows


def summary_rows(ranking: Ranking) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the measure x ranker table of averages over tasks (each ranker on its
    scale, named in the header: ``competition_cmi (x100)``)."""
    header = ["measure"] + [ranker_label(ranking, r) for r in ranking.rankers]
    rows = []
    for measure in ranking.ordered_measures():
        rows.append([measure] + [_num(ranking.average(r, measure), ranking.scale(r))
                                 if ranking.scores.get(r, {}).get(measure) else "-" for r in ranking.rankers])
    return header, rows


def selected_rows(ranking: Ranking, ranker: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows (measure x task) of the conditioning set behind each score of `ranker`."""
    by_task = ranking.selected.get(ranker, {})
    tasks = [t for t in ranking.ranked_tasks if t in by_task]
    rows = []
    for measure in ranking.ordered_measures(ranker):
        cells = [by_task[t].get(measure, "-") if measure in by_task[t] else "-" for t in tasks]
        if any(c != "-" for c in cells):
            rows.append([measure] + ["none (all NaN)" if c is None else c if c == "-" else _set_name(c)
                                     for c in cells])
    return ["measure"] + tasks, rows


def breakdown_rows(ranking: Ranking, ranker: str, task: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows (measure x conditioning set) of one ranker's breakdown on one task.

    The set behind the score is marked ``<value> <``; values on the ranker's scale.
    """
    by_measure = ranking.breakdowns.get(ranker, {}).get(task, {})
    sets: list = []
    for breakdown in by_measure.values():
        for key in breakdown:
            if key not in sets:
                sets.append(key)
    header = ["measure"] + [_set_name(k) for k in sets]
    rows = []
    for measure in ranking.measures:
        if measure not in by_measure:
            continue
        chosen = ranking.selected.get(ranker, {}).get(task, {}).get(measure)
        row = [measure]
        for key in sets:
            value = by_measure[measure].get(key)
            cell = "-" if value is None else _num(value, ranking.scale(ranker))
            row.append(cell + (" <" if key == chosen and chosen is not None else ""))
        rows.append(row)
    return header, rows
