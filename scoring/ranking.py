"""Ranking of measures across tasks: the numbers behind ``pgdl evaluate``'s tables and report.

:func:`rank_measures` scores every measure on every task with every ranker of
:data:`scoring.rankers.RANKERS`, with intervals from resamples of the models, permutation
p-values and paired comparisons (:mod:`scoring.resampling`), and keeps each ranker's breakdown
(the value of each conditioning set, and the set that gave the minimum). :mod:`scoring.tables`
turns a :class:`Ranking` into the text tables every renderer shares.

Measures are oriented before ranking: a measure whose ``direction`` is -1 (a larger value
predicts a *smaller* gap) is ranked by ``-value``, so that for every ranker larger is better.

Scales: scores are kept as the rankers compute them (the competition's CMI as a fraction);
every table and ``ranking.json`` shows a ranker's scores multiplied by its ``scale``
(:attr:`scoring.rankers.Ranker.scale`): the competition's CMI x100, as the competition's
scores were shown (``pgdl score``'s average), and labelled so (``competition_cmi (x100)``).
"""

from __future__ import annotations

import math
import os
import warnings
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scoring import resampling
from scoring.errors import PGDLError
from scoring.predictions import generalization_gap, normalize_model_id, scoring_grid
from scoring.rankers import RANKERS, Ranker, centred_half_samples, prepare_values, untied_fraction_grid

__all__ = ["AVERAGE", "FEW_UNTIED", "MAIN_RANKER", "Comparison", "Ranking", "Score", "TaskValues", "default_workers",
           "rank_measures", "set_label"]

#: The scope of comparisons made on the average over tasks (beside each task's name).
AVERAGE = "average"

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
    p_null: float = math.nan
    """The permutation p-value of "no better than a measure unrelated to the gap"
    (:func:`scoring.resampling.permutation_pvalue` over permutations of the values)."""

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
                "untied_pairs": _json_float(self.untied), "p_null": _json_float(self.p_null)}


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of two measures by one ranker, on one task or on the average.

    ``diff`` = score(a) - score(b), its percentile interval and two-sided p-value from the same
    resamples of the models for both measures (:func:`scoring.resampling.two_sided_pvalue`), and
    the p-value Holm-adjusted over every pair of the scope (:func:`scoring.resampling.holm`).
    """

    a: str
    b: str
    diff: float
    low: float
    high: float
    p: float
    p_holm: float = math.nan

    def to_dict(self, scale: float = 1.0) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "diff": _json_float(scale * self.diff),
                "ci": [_json_float(scale * self.low), _json_float(scale * self.high)],
                "p": _json_float(self.p), "p_holm": _json_float(self.p_holm)}


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
        n_resamples: the number of resamples of the models per score.
        scheme: the resampling scheme (:data:`scoring.resampling.SCHEMES`).
        n_permutations: the permutations behind each ``p_null``.
        notes: why a measure or task was not ranked, and warnings of the scores.
        resamples: ranker -> measure -> task -> the score of each resample (the same resamples
            of a task's models for every measure: paired).
        comparisons: ranker -> task name or :data:`AVERAGE` -> the paired comparisons of every
            two measures ranked there.
        average_ci: ranker -> measure -> interval of the average over tasks.
        lower_is_better: the rankers whose smaller scores are better (error rates).
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
    scheme: str = resampling.DEFAULT_SCHEME
    n_permutations: int = 0
    resamples: dict[str, dict[str, dict[str, np.ndarray]]] = field(default_factory=dict, repr=False)
    comparisons: dict[str, dict[str, list[Comparison]]] = field(default_factory=dict)
    average_ci: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    lower_is_better: set[str] = field(default_factory=set)

    def scale(self, ranker: str) -> float:
        """The factor `ranker`'s scores are shown with (see :attr:`scoring.rankers.Ranker.scale`)."""
        return float(self.scales.get(ranker, 1.0))

    def better(self, ranker: str) -> int:
        """+1 when larger scores of `ranker` are better, -1 when smaller are."""
        return -1 if ranker in self.lower_is_better else 1

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
        """The measures from best to worst average score of `ranker` (unscored ones last)."""
        sign = self.better(ranker)

        def key(item):
            index, name = item
            avg = self.average(ranker, name)
            return (math.isnan(avg), -sign * avg if not math.isnan(avg) else 0.0, index)
        return [name for _, name in sorted(enumerate(self.measures), key=key)]

    def leader_group(self, ranker: str, scope: str = AVERAGE, *, alpha: float | None = None) -> dict[str, str]:
        """Measure -> ``"leader"``, ``"tied"`` (not distinguishable from the leader: Holm-adjusted
        paired p-value >= alpha, 1 - confidence by default), ``"worse"``, or ``"untested"`` (a ranker
        without resamples, the robust sign-error), on a task or the average."""
        alpha = 1.0 - self.confidence if alpha is None else alpha
        if scope == AVERAGE:
            points = {m: self.average(ranker, m) for m in self.measures}
        else:
            points = {m: by_task[scope].value for m, by_task in self.scores.get(ranker, {}).items() if scope in by_task}
        points = {m: v for m, v in points.items() if math.isfinite(v)}
        if not points:
            return {}
        sign = self.better(ranker)
        leader = max(points, key=lambda m: (sign * points[m], -self.measures.index(m)))
        out = {leader: "leader"}
        for c in self.comparisons.get(ranker, {}).get(scope, []):
            if leader in (c.a, c.b):
                other = c.b if c.a == leader else c.a
                out[other] = "tied" if not c.p_holm < alpha else "worse"
        tested = bool(self.comparisons.get(ranker, {}).get(scope))
        for m in points:  # no paired test: with other models "tied" (not shown to differ); without resamples unknown
            out.setdefault(m, "tied" if tested else "untested")
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view: scores with intervals, averages, breakdowns, each ranker's on the scale
        it is shown with (its ``scale``: 100 for the competition's CMI)."""
        out: dict[str, Any] = {"confidence": self.confidence, "n_resamples": self.n_resamples,
                               "scheme": self.scheme, "n_permutations": self.n_permutations,
                               "directions": self.directions, "tasks": [t.name for t in self.tasks],
                               "rankers": {}, "notes": self.notes}
        for ranker, description in self.rankers.items():
            scale = self.scale(ranker)
            out["rankers"][ranker] = {
                "description": description,
                "scale": scale,
                "larger_is_better": ranker not in self.lower_is_better,
                "scores": {m: {t: s.to_dict(scale) for t, s in by_task.items()}
                           for m, by_task in self.scores.get(ranker, {}).items()},
                "average": {m: _json_float(scale * self.average(ranker, m)) for m in self.measures},
                "average_ci": {m: [_json_float(scale * lo), _json_float(scale * hi)]
                               for m, (lo, hi) in self.average_ci.get(ranker, {}).items()},
                "vs_leader": {scope: self.leader_group(ranker, scope)
                              for scope in self.ranked_tasks + [AVERAGE]},
                "comparisons": {scope: [c.to_dict(scale) for c in found]
                                for scope, found in self.comparisons.get(ranker, {}).items()},
                "breakdown": {t: {m: {set_label(k): _json_float(scale * v) for k, v in sets.items()}
                                  for m, sets in by_measure.items()}
                              for t, by_measure in self.breakdowns.get(ranker, {}).items()},
                "selected": {t: {m: None if k is None else set_label(k) for m, k in by_measure.items()}
                             for t, by_measure in self.selected.get(ranker, {}).items()},
            }
        return out


def _json_float(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def set_label(key: Any) -> str:
    """A conditioning set (a tuple of hyper-parameter names) as text: ``a | b``, ``(none)``."""
    if isinstance(key, tuple):
        return " | ".join(map(str, key)) if key else "(none)"
    return str(key)


def _task_seed(seed: int, task: str) -> int:
    """A seed per task (the task's name mixed in), so that tasks of the same size are resampled
    independently and a task's resamples do not depend on the other tasks."""
    return int(np.random.SeedSequence([seed, zlib.crc32(task.encode("utf-8"))]).generate_state(1)[0])


def _score_unit(unit: tuple) -> list[dict[str, Any]]:
    """Every ranker's score, breakdown, resampled scores and permutation scores of some measures on
    one task (a unit of work, independent of the others, so units run in parallel; the measures of
    a unit share the task's resamples and what the rankers compute from them alone)."""
    full, weights, perms, scheme, rankers, measures = unit
    ones = None if perms is None else np.ones(perms.shape)
    results = []
    for array, grid, keep in measures:
        out: dict[str, Any] = {"untied": untied_fraction_grid(array, grid), "scores": {}, "notes": []}
        if len(keep) == full.n_models:  # the task's own arrays: cached counts are reused
            grid, w, p, o = full, weights, perms, ones
        else:
            w = None if weights is None else weights[:, keep]
            p = None if perms is None else np.argsort(np.argsort(perms[:, keep], axis=1), axis=1)
            o = None if p is None else np.ones(p.shape)
        permuted = None if p is None else array[p]
        for name, ranker in rankers.items():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    value = ranker.score_grid(array, grid)
                    breakdown = ranker.breakdown_grid(array, grid)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        resampled = (ranker.score_batch(array, grid, w)
                                     if w is not None and getattr(ranker, "intervals", True) else None)
                        if resampled is not None and scheme == "halfsample":
                            resampled = centred_half_samples(ranker, value, resampled, grid, w)
                        null = ranker.score_batch(permuted, grid, o) if permuted is not None else None
                except PGDLError as exc:
                    out["notes"].append(f"{name}: not ranked: {exc}")
                    continue
            for item in caught:
                out["notes"].append(f"{name}: {item.message}")
            out["scores"][name] = (float(value), breakdown, ranker.selected_set(breakdown) if breakdown else None,
                                   resampled, null)
        results.append(out)
    return results


def _run_units(units: list[tuple], workers: int) -> list[list[dict[str, Any]]]:
    if workers <= 1 or len(units) < 2:
        return [_score_unit(u) for u in units]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    saved = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    os.environ.update({k: "1" for k in saved})  # one BLAS thread per process: the processes share the cores
    try:
        with ProcessPoolExecutor(max_workers=min(workers, len(units)),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            return list(pool.map(_score_unit, units))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def default_workers() -> int:
    """Processes for ranking: every core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def rank_measures(tasks: Sequence[TaskValues], directions: Mapping[str, int], *,
                  rankers: Mapping[str, Ranker] | None = None, n_resamples: int = 1000,
                  confidence: float = 0.95, seed: int = 0, scheme: str = resampling.DEFAULT_SCHEME,
                  n_permutations: int = 1000, workers: int | None = None) -> Ranking:
    """Score every measure on every task with every ranker, with intervals and tests.

    For task t, measure m and ranker r: ``r(direction_m * values, model_specs_t)`` over the models
    that have a value; its interval from `n_resamples` resamples of the models
    (:mod:`scoring.resampling`, `scheme`; the same resamples of a task for every measure and
    ranker, seeded by `seed` and the task's name, so results repeat exactly and comparisons are
    paired); the permutation p-value of "no better than a measure unrelated to the gap" from
    `n_permutations` permutations of the values (the same permutations for every measure). Then,
    per ranker, on each task and on the average over tasks, every pair of measures is compared
    (:class:`Comparison`, Holm-adjusted), and the average gets the interval of the per-resample
    averages (each task resampled independently).

    Tasks without reference data are not ranked (a note says so); a
    :class:`scoring.cmi.CMIWarning` or a :class:`PGDLError` of a score becomes a note.

    Args:
        tasks: the values per task.
        directions: measure -> +1 or -1; the measures ranked, in this order.
        rankers: name -> ranker (all of :data:`scoring.rankers.RANKERS` by default).
        n_resamples: resamples per score (0: no interval, no comparison).
        confidence: coverage of the intervals (and 1 - the level of the tests).
        seed: seed of the resamples and permutations.
        scheme: ``"halfsample"`` (default) or ``"bootstrap"``.
        n_permutations: permutations per score (0: no ``p_null``).
        workers: processes (every usable core by default; 1: in this process).

    Returns:
        A :class:`Ranking`.
    """
    rankers = dict(RANKERS if rankers is None else rankers)
    if scheme not in resampling.SCHEMES:
        raise PGDLError(f"unknown resampling scheme {scheme!r}; choose from {', '.join(resampling.SCHEMES)}")
    ranking = Ranking(rankers={name: r.description for name, r in rankers.items()},
                      measures=list(directions), directions=dict(directions), tasks=list(tasks),
                      confidence=confidence, n_resamples=n_resamples, scheme=scheme, n_permutations=n_permutations,
                      scales={name: float(getattr(r, "scale", 1.0)) for name, r in rankers.items()},
                      lower_is_better={name for name, r in rankers.items() if not getattr(r, "larger_is_better", True)})
    workers = default_workers() if workers is None else max(1, int(workers))
    units, keys = [], []
    for task in tasks:
        if not task.model_specs:
            ranking.notes.append(f"{task.name}: no reference data (model_configs.json), so no ranking")
            continue
        try:
            full = scoring_grid(task.model_specs)
        except PGDLError as exc:
            ranking.notes.append(f"{task.name}: not ranked: {exc}")
            continue
        task_seed = _task_seed(seed, task.name)
        weights = perms = None
        if n_resamples > 0 and full.n_models >= 2:
            weights = resampling.resample_weights(full.n_models, n_resamples, scheme=scheme, seed=task_seed)
        if n_permutations > 0:
            perms = resampling.permutations(full.n_models, n_permutations, seed=task_seed + 1)
        measures = []
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
            keep = np.flatnonzero(np.isin(np.asarray(full.model_ids), np.asarray(grid.model_ids)))
            measures.append((measure, (array, grid, keep)))
        # a unit per task and share of the measures: about two per process
        per_unit = max(1, math.ceil(len(measures) / max(1, 2 * workers // max(1, len(tasks)))))
        for start in range(0, len(measures), per_unit):
            chunk = measures[start:start + per_unit]
            units.append((full, weights, perms, scheme, rankers, [m for _, m in chunk]))
            keys.append([(task, name, len(m[0])) for name, m in chunk])
    flat = [(key, result) for unit_keys, results in zip(keys, _run_units(units, workers))
            for key, result in zip(unit_keys, results)]
    for (task, measure, n_values), result in flat:
        untied = result["untied"]
        if untied < FEW_UNTIED:
            ranking.notes.append(
                f"{task.name}, {measure}: the values differ on only {untied:.1%} of the pairs of models "
                "with different gaps (the rest are ties, which tell nothing): its scores, marked ~, rest on "
                "few pairs")
        for note in result["notes"]:
            note = f"{task.name}, {measure}, {note}"
            if note not in ranking.notes:
                ranking.notes.append(note)
        for name, (value, breakdown, chosen, resampled, null) in result["scores"].items():
            low, high = (resampling.percentile_interval(resampled, confidence) if resampled is not None
                         else (math.nan, math.nan))
            p_null = (resampling.permutation_pvalue(value, null, larger_is_better=name not in ranking.lower_is_better)
                      if null is not None else math.nan)
            ranking.scores.setdefault(name, {}).setdefault(measure, {})[task.name] = Score(
                value, low, high, n_values, max(task.n_models, n_values), untied, p_null)
            if resampled is not None:
                ranking.resamples.setdefault(name, {}).setdefault(measure, {})[task.name] = resampled
            if breakdown:
                ranking.breakdowns.setdefault(name, {}).setdefault(task.name, {})[measure] = breakdown
                ranking.selected.setdefault(name, {}).setdefault(task.name, {})[measure] = chosen
    _compare(ranking)
    return ranking


def _compare(ranking: Ranking) -> None:
    """The paired comparisons and the intervals of the averages, from the stored resamples."""
    for ranker, by_measure in ranking.resamples.items():
        scores = ranking.scores.get(ranker, {})
        for task in ranking.ranked_tasks:
            found = [m for m in ranking.measures if task in by_measure.get(m, {}) and
                     math.isfinite(scores[m][task].value)]
            pairs = []
            for i, a in enumerate(found):
                for b in found[i + 1:]:
                    if scores[a][task].n_models != scores[b][task].n_models:
                        continue  # resamples of different models: not paired
                    d = by_measure[a][task] - by_measure[b][task]
                    low, high = resampling.percentile_interval(d, ranking.confidence)
                    pairs.append(Comparison(a, b, scores[a][task].value - scores[b][task].value, low, high,
                                            resampling.two_sided_pvalue(d)))
            ranking.comparisons.setdefault(ranker, {})[task] = _holm(pairs)
        averages = {}
        for m in ranking.measures:
            tasks = [t for t in ranking.ranked_tasks if t in by_measure.get(m, {}) and math.isfinite(scores[m][t].value)]
            if tasks:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    averages[m] = (tasks, np.nanmean(np.stack([by_measure[m][t] for t in tasks]), axis=0))
                ranking.average_ci.setdefault(ranker, {})[m] = resampling.percentile_interval(averages[m][1],
                                                                                           ranking.confidence)
        pairs = []
        names = list(averages)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                common = [t for t in averages[a][0] if t in averages[b][0]]
                if not common:
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    d = np.nanmean(np.stack([by_measure[a][t] - by_measure[b][t] for t in common]), axis=0)
                diff = float(np.mean([scores[a][t].value - scores[b][t].value for t in common]))
                low, high = resampling.percentile_interval(d, ranking.confidence)
                pairs.append(Comparison(a, b, diff, low, high, resampling.two_sided_pvalue(d)))
        ranking.comparisons.setdefault(ranker, {})[AVERAGE] = _holm(pairs)


def _holm(pairs: list[Comparison]) -> list[Comparison]:
    adjusted = resampling.holm(np.array([c.p for c in pairs]))
    return [Comparison(c.a, c.b, c.diff, c.low, c.high, c.p, float(q)) for c, q in zip(pairs, adjusted)]
