"""Judging a meta-measure on tasks it never saw: leave one task out.

For each task h of the benchmark: the meta-measure is fitted on the other tasks
(:func:`~pgdl_measures.meta.fit.fit_meta`, its regularisation chosen by cross-validation
inside them), and, for each ranker, the best single measure is chosen on the same other tasks
(the best mean score among the same candidates). Both are then scored on h by every ranker,
with the ranking's intervals and paired comparisons (:func:`scoring.ranking.rank_measures`,
the same half-samples of h's models for both), and on the average over the held-out tasks.
The rank-feature fit (``meta_rank``) is scored beside them: it is not a measure one model can
be given (it ranks within the held-out task), so it shows what per-model features cost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pgdl_measures.errors import PGDLError
from pgdl_measures.meta.benchmark import BenchmarkTask
from pgdl_measures.meta.fit import MetaFit, candidates, fit_meta
from scoring.rankers import RANKERS
from scoring.ranking import AVERAGE, Ranking, TaskValues, rank_measures

META = "meta_measure"
META_RANK = "meta_rank"


def best_label(ranker: str) -> str:
    """The column of the best single measure chosen by `ranker`."""
    return f"best_single[{ranker}]"


@dataclass
class LotoResult:
    """The leave-one-task-out evaluation.

    Attributes:
        ranking: every column (meta, meta_rank, best single per ranker) scored on each
            held-out task, with intervals and paired comparisons.
        fits: held-out task -> (the signed-log fit, the rank fit) on the other tasks.
        best: ranker -> held-out task -> the single measure chosen on the other tasks.
    """

    ranking: Ranking
    fits: dict[str, tuple[MetaFit, MetaFit]]
    best: dict[str, dict[str, str]]

    def rows(self, ranker: str) -> list[dict[str, Any]]:
        """Per held-out task (and the average): meta and best single by `ranker`, their paired difference."""
        scale = self.ranking.scale(ranker)
        scores = self.ranking.scores.get(ranker, {})
        out = []
        for scope in [t.name for t in self.ranking.tasks] + [AVERAGE]:
            row: dict[str, Any] = {"task": scope}
            for label, column in (("meta", META), ("meta_rank", META_RANK), ("best", best_label(ranker))):
                if scope == AVERAGE:
                    value = self.ranking.average(ranker, column)
                    low, high = self.ranking.average_ci.get(ranker, {}).get(column, (math.nan, math.nan))
                else:
                    score = scores.get(column, {}).get(scope)
                    value, low, high = (score.value, score.low, score.high) if score else (math.nan,) * 3
                row[label] = [_f(scale * value), _f(scale * low), _f(scale * high)]
            row["best_measure"] = self.best[ranker].get(scope) if scope != AVERAGE else None
            found = [c for c in self.ranking.comparisons.get(ranker, {}).get(scope, [])
                     if {c.a, c.b} == {META, best_label(ranker)}]
            if found:
                c = found[0]
                sign = 1 if c.a == META else -1
                lo, hi = sorted((sign * c.low, sign * c.high))
                row["meta_minus_best"] = [_f(scale * sign * c.diff), _f(scale * lo), _f(scale * hi)]
                row["p"] = _f(c.p)
            out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"tasks": [t.name for t in self.ranking.tasks],
                "table": {r: self.rows(r) for r in self.ranking.rankers},
                "larger_is_better": {r: r not in self.ranking.lower_is_better for r in self.ranking.rankers},
                "best_single": self.best,
                "fits": {h: {"signed_log": a.to_dict(), "rank": b.to_dict()} for h, (a, b) in self.fits.items()},
                "ranking": self.ranking.to_dict()}


def leave_one_task_out(tasks: Sequence[BenchmarkTask], *, n_resamples: int = 1000, n_permutations: int = 1000,
                       seed: int = 0, workers: int | None = None) -> LotoResult:
    """Fit on all tasks but one, score on that one, for every task (see the module docstring).

    Raises:
        PGDLError: fewer than two tasks.
    """
    if len(tasks) < 2:
        raise PGDLError("leave-one-task-out needs at least two tasks with reference data")
    fits: dict[str, tuple[MetaFit, MetaFit]] = {}
    best: dict[str, dict[str, str]] = {r: {} for r in RANKERS}
    held_values = []
    for h, task in enumerate(tasks):
        train = [t for i, t in enumerate(tasks) if i != h]
        # only measures computed on the held-out task too: which measures ran there is known
        # before its gaps are, and a component without values would leave the meta-measure none
        on_held_out = set(candidates([task])[0])
        pool = [m for m in candidates(train)[0] if m in on_held_out]
        signed = fit_meta(train, features="signed_log", measures=pool)
        ranked = fit_meta(train, features="rank", measures=pool)
        fits[task.name] = (signed, ranked)
        values = {META: signed.predict(task), META_RANK: ranked.predict(task)}
        for name, ranker in RANKERS.items():
            choice = _best_single(ranker, train, pool)
            best[name][task.name] = choice
            values[best_label(name)] = task.values.get(choice, np.full(len(task.model_ids), np.nan))
        held_values.append(TaskValues(task.name, task.model_specs,
                                      {col: {mid: float(v) for mid, v in zip(task.model_ids, vals) if np.isfinite(v)}
                                       for col, vals in values.items()}, len(task.model_ids)))
    columns = [META, META_RANK] + [best_label(r) for r in RANKERS]
    ranking = rank_measures(held_values, {c: 1 for c in columns}, n_resamples=n_resamples,
                            n_permutations=n_permutations, seed=seed, workers=workers)
    return LotoResult(ranking, fits, best)


def _best_single(ranker, tasks: Sequence[BenchmarkTask], pool: Sequence[str]) -> str:
    """The measure of `pool` with the best mean score of `ranker` over `tasks` (the first on a tie)."""
    sign = 1 if getattr(ranker, "larger_is_better", True) else -1
    best, best_score = pool[0], -math.inf
    for measure in pool:
        scores = []
        for task in tasks:
            column = task.values[measure]
            values = {mid: float(v) for mid, v in zip(task.model_ids, column) if np.isfinite(v)}
            try:
                scores.append(float(ranker(values, task.model_specs)))
            except PGDLError:
                scores.append(math.nan)
        score = sign * float(np.mean(scores)) if scores and all(map(math.isfinite, scores)) else -math.inf
        if score > best_score:
            best, best_score = measure, score
    return best


def _f(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None
