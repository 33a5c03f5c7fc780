"""Fitting a meta-measure: a linear combination of measures that orders each task's models by gap.

The model is a *pairwise ranking* model, so only the order of the gaps within a task is fitted,
never their values, and never a comparison across tasks: for every two models :math:`i, j` of
one task with :math:`g_i > g_j`, the features' difference :math:`z_i - z_j` is a positive
example (and :math:`z_j - z_i` a negative one) of an L1-regularised logistic regression without
intercept (RankSVM's idea with the logistic loss; Herbrich et al. 2000, Joachims 2002). Each
task weighs the same however many pairs it has. A per-task constant in a feature cancels in
the differences.

Features (``features``):

* ``"signed_log"`` (the default, and what a :class:`~pgdl_measures.meta.measure.MetaMeasure`
  computes from one model alone): :math:`\\operatorname{asinh}(v / c_k)` of the oriented value
  with :math:`c_k` a thousandth of the component's median :math:`|v|` over the training
  models, so nearly every value is in the logarithmic regime, where a per-task factor is a
  per-task constant.
* ``"rank"``: the value's rank within its task, scaled to [0, 1] (ties averaged). Scale-free,
  but it needs the task's other models, so it is a reading of the benchmark, not a measure
  one model can be given.

Each feature is then standardised by its median and interquartile range over the training
models (so one regularisation strength suits all); a component missing on a model takes its
task's median. The regularisation strength :math:`C` is chosen by inner cross-validation: leave
one training task out (or, with a single training task, 4 folds of its models), score the
held-out models by Kendall's tau of the combination with the gap, keep the :math:`C` of the best
mean (the smallest on a tie).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pgdl_measures.errors import PGDLError
from pgdl_measures.meta.benchmark import BenchmarkTask
from pgdl_measures.meta.measure import combine, signed_log

FEATURES = ("signed_log", "rank")
#: the regularisation strengths tried (the inverse of the L1 penalty's weight)
C_GRID: tuple[float, ...] = tuple(float(c) for c in np.logspace(-3, 1, 9))
#: a component must have a value on at least this fraction of the models of every training task
MIN_COVERAGE = 0.9


@dataclass
class MetaFit:
    """A fitted combination (see the module docstring).

    Attributes:
        measures: the candidate components (every measure with values on the training tasks).
        weights: (K,) weight per candidate on the raw transformed feature (the standardisation
            folded in; 0 for those the L1 penalty dropped).
        scales: (K,) the signed logarithm's scale per candidate (``signed_log`` features).
        features: ``"signed_log"`` or ``"rank"``.
        c: the chosen regularisation strength.
        cv: C -> mean inner cross-validated Kendall tau.
        tasks: the training tasks.
        dropped: measure -> why it is not a candidate.
    """

    measures: list[str]
    weights: np.ndarray
    scales: np.ndarray
    features: str
    c: float
    cv: dict[float, float]
    tasks: list[str]
    dropped: dict[str, str] = field(default_factory=dict)

    @property
    def components(self) -> list[str]:
        """The measures with a nonzero weight (what the meta-measure computes)."""
        return [m for m, w in zip(self.measures, self.weights) if w != 0.0]

    def predict(self, task: BenchmarkTask) -> np.ndarray:
        """(n,) the combination on a task's models (NaN where a used component is missing)."""
        used = [i for i, w in enumerate(self.weights) if w != 0.0]
        if not used:
            return np.zeros(len(task.model_ids))
        raw = task.matrix([self.measures[i] for i in used])
        if self.features == "rank":
            return _task_ranks(raw) @ self.weights[used]
        return combine(raw, self.weights[used], self.scales[used])

    def params(self) -> dict[str, Any]:
        """The :class:`~pgdl_measures.meta.measure.MetaMeasure` parameters of this fit."""
        if self.features != "signed_log":
            raise PGDLError(f"a fit on {self.features!r} features needs a whole task: it is not a measure")
        used = [i for i, w in enumerate(self.weights) if w != 0.0]
        if not used:
            raise PGDLError("the fit kept no component (every weight is 0): there is no meta-measure to write")
        return {"measures": [self.measures[i] for i in used], "weights": [float(self.weights[i]) for i in used],
                "scales": [float(self.scales[i]) for i in used]}

    def to_dict(self) -> dict[str, Any]:
        return {"features": self.features, "tasks": self.tasks, "c": self.c,
                "cv_kendall_tau": {f"{c:g}": _finite(v) for c, v in self.cv.items()},
                "weights": {m: float(w) for m, w in zip(self.measures, self.weights)},
                "scales": {m: float(s) for m, s in zip(self.measures, self.scales)},
                "components": self.components, "dropped": self.dropped}


def candidates(tasks: Sequence[BenchmarkTask], *, min_coverage: float = MIN_COVERAGE
               ) -> tuple[list[str], dict[str, str]]:
    """The measures with values on at least `min_coverage` of every task's models, and why the others are not."""
    names = sorted({m for t in tasks for m in t.values})
    kept, dropped = [], {}
    for name in names:
        for task in tasks:
            column = task.values.get(name)
            share = 0.0 if column is None else float(np.mean(np.isfinite(column)))
            if share < min_coverage:
                dropped[name] = f"values on {share:.0%} of {task.name}'s models (needs {min_coverage:.0%})"
                break
            if np.nanstd(column) == 0:
                dropped[name] = f"constant on {task.name}"
                break
        else:
            kept.append(name)
    return kept, dropped


def fit_meta(tasks: Sequence[BenchmarkTask], *, features: str = "signed_log", measures: Sequence[str] | None = None,
             c_grid: Sequence[float] = C_GRID, min_coverage: float = MIN_COVERAGE, seed: int = 0) -> MetaFit:
    """Fit a meta-measure on `tasks` (see the module docstring).

    Args:
        tasks: the training tasks.
        features: one of :data:`FEATURES`.
        measures: the candidate components (default: :func:`candidates`).
        c_grid: the regularisation strengths tried by the inner cross-validation.
        min_coverage: see :func:`candidates`.
        seed: the seed of the model folds (a single training task).

    Raises:
        PGDLError: no task, an unknown feature kind, no candidate measure, no pair of models
            with different gaps.
    """
    if not tasks:
        raise PGDLError("a meta-measure needs at least one task with reference data to be fitted on")
    if features not in FEATURES:
        raise PGDLError(f"unknown features {features!r}; choose from {', '.join(FEATURES)}")
    dropped: dict[str, str] = {}
    if measures is None:
        measures, dropped = candidates(tasks, min_coverage=min_coverage)
    measures = list(measures)
    if not measures:
        raise PGDLError("no measure has values on the models of every training task: nothing to combine")
    raw = [t.matrix(measures) for t in tasks]
    scales = _scales(np.vstack(raw)) if features == "signed_log" else np.ones(len(measures))
    transformed = [_transform(x, features, scales) for x in raw]
    centre, spread = _standardiser(np.vstack(transformed))
    z = [_impute((x - centre) / spread) for x in transformed]
    gaps = [t.gaps for t in tasks]
    folds = _folds(tasks, seed)
    cv = {}
    for c in c_grid:
        scores = []
        for train, held in folds:
            w = _fit_pairs([z[i][rows] for i, rows in train], [gaps[i][rows] for i, rows in train], c)
            scores += [_kendall(z[i][rows] @ w, gaps[i][rows]) for i, rows in held]
        cv[float(c)] = float(np.mean(scores))
    best = max(cv, key=lambda c: (round(cv[c], 12), -c))
    w = _fit_pairs(z, gaps, best)
    return MetaFit(measures, w / spread, scales, features, best, cv, [t.name for t in tasks], dropped)


# --------------------------------------------------------------------------------- the pieces

def _transform(raw: np.ndarray, features: str, scales: np.ndarray) -> np.ndarray:
    return signed_log(raw, scales) if features == "signed_log" else _task_ranks(raw)


def _task_ranks(raw: np.ndarray) -> np.ndarray:
    """Each column's ranks within the task, scaled to [0, 1] (ties averaged, NaN kept)."""
    from scipy.stats import rankdata

    out = np.full(raw.shape, np.nan)
    for k in range(raw.shape[1]):
        ok = np.isfinite(raw[:, k])
        if ok.sum() > 1:
            out[ok, k] = (rankdata(raw[ok, k]) - 1) / (ok.sum() - 1)
        elif ok.any():
            out[ok, k] = 0.5
    return out


def _scales(pooled: np.ndarray) -> np.ndarray:
    """A thousandth of each column's median |value| (1 where that is 0 or undefined)."""
    out = np.ones(pooled.shape[1])
    for k in range(pooled.shape[1]):
        column = np.abs(pooled[:, k][np.isfinite(pooled[:, k])])
        med = float(np.median(column)) if column.size else 0.0
        if med > 0 and math.isfinite(med):
            out[k] = 1e-3 * med
    return out


def _standardiser(pooled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centre = np.nanmedian(pooled, axis=0)
    q75, q25 = np.nanpercentile(pooled, [75, 25], axis=0)
    spread = q75 - q25
    std = np.nanstd(pooled, axis=0)
    spread = np.where(spread > 0, spread, np.where(std > 0, std, 1.0))
    return np.nan_to_num(centre), spread


def _impute(z: np.ndarray) -> np.ndarray:
    """NaN -> the column's median within this task (0 when the column has none)."""
    out = z.copy()
    for k in range(z.shape[1]):
        bad = ~np.isfinite(out[:, k])
        if bad.any():
            good = out[~bad, k]
            out[bad, k] = float(np.median(good)) if good.size else 0.0
    return out


def _folds(tasks: Sequence[BenchmarkTask], seed: int) -> list[tuple[list, list]]:
    """(train, held-out) pairs of [(task index, model rows)]: leave one task out, or 4 model folds."""
    if len(tasks) >= 2:
        every = [(i, np.arange(len(t.model_ids))) for i, t in enumerate(tasks)]
        return [([x for x in every if x[0] != i], [every[i]]) for i in range(len(tasks))]
    n = len(tasks[0].model_ids)
    order = np.random.default_rng(seed).permutation(n)
    parts = np.array_split(order, 4)
    return [([(0, np.sort(np.concatenate([p for j, p in enumerate(parts) if j != k])))], [(0, np.sort(parts[k]))])
            for k in range(len(parts))]


def _fit_pairs(zs: Sequence[np.ndarray], gaps: Sequence[np.ndarray], c: float) -> np.ndarray:
    """The weights of the L1 pairwise logistic model (zeros when no pair has different gaps)."""
    from sklearn.linear_model import LogisticRegression

    xs, weights = [], []
    for z, g in zip(zs, gaps):
        i, j = np.nonzero(g[:, None] > g[None, :])
        if len(i) == 0:
            continue
        xs.append(z[i] - z[j])
        weights.append(np.full(len(i), 1.0 / len(i)))
    if not xs:
        raise PGDLError("no two training models differ in gap: there is no order to fit")
    x = np.vstack(xs)
    w = np.concatenate(weights)
    # liblinear visits the coordinates in a random order: a fixed seed makes the fit repeatable.
    model = LogisticRegression(C=c, solver="liblinear", fit_intercept=False, max_iter=1000, random_state=0,
                               **_l1_option())
    model.fit(np.vstack([x, -x]), np.r_[np.ones(len(x)), np.zeros(len(x))], sample_weight=np.r_[w, w] * len(zs))
    return model.coef_[0].astype(np.float64)


@functools.cache
def _l1_option() -> dict[str, Any]:
    """The L1 penalty as this scikit-learn spells it (``l1_ratio=1`` from 1.8, ``penalty="l1"`` before)."""
    import sklearn

    major, minor = (int(x) for x in sklearn.__version__.split(".")[:2])
    return {"l1_ratio": 1.0} if (major, minor) >= (1, 8) else {"penalty": "l1"}


def _kendall(values: np.ndarray, gaps: np.ndarray) -> float:
    from scipy.stats import kendalltau

    if np.ptp(values) == 0 or np.ptp(gaps) == 0:
        return 0.0
    tau = kendalltau(values, gaps).statistic
    return float(tau) if math.isfinite(tau) else 0.0


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
