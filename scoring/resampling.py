"""Scores of many resamples of a task at once: the engine behind every interval and test.

A resample of a task's n models is a weight per model, ``W`` of shape (R, n) for R resamples:
the bootstrap's ``w_i`` is how many times model i was drawn, half-sampling's is 1 for the
drawn half and 0 for the rest, a permutation of the measure keeps ``w = 1`` and permutes the
values instead. Every built-in ranker is a function of counts over pairs of models,

    S_r[A, B] = sum_{i in A, j in B} w_ri w_rj s(i, j)

for groups A, B of a partition of the models and a pair statistic s (gap larger, measure larger,
both, signs), so a batch of resamples is two matrix products per statistic instead of a Python
loop over resamples. Counts of whole numbers are exact in float64, so the competition's CMI and
Kendall's tau of a resample equal, bit for bit, those of the literal loop over resampled grids
(:func:`scoring.rankers.bootstrap_ci_grid`, kept as the reference); Jiang et al.'s CMI and the
granulated Kendall coefficient agree to float64 round-off (sums taken in another order).

Resampling schemes (:func:`resample_weights`):

* ``"halfsample"`` (the default for intervals): draw half of the models without replacement.
  No model is duplicated (a duplicate is a pair with equal gap and measure, a tie no real task
  has) and the pairs kept are pairs of the task. For a statistic that averages over pairs (every
  ranker here), the spread of half-sample values around the full value estimates the sampling
  spread at n: a half-sample's variance about the full-sample value is
  sigma^2 (1/m - 1/n) = sigma^2 / n at m = n/2 (the finite-population correction of sampling
  without replacement; Wu 1986, "Jackknife, bootstrap and other resampling methods in
  regression analysis", Ann. Statist. 14, sec. 4 (delete-d jackknife, d = n/2); Politis, Romano &
  Wolf, "Subsampling", Springer 1999, ch. 2). The interval is the half-sample percentile
  interval, whose coverage is checked by simulation in ``tests/scoring/test_coverage.py``.
* ``"bootstrap"``: Efron's bootstrap over models (with replacement), the percentile interval;
  kept for comparison (it duplicates models, which inflates the competition's CMI and deflates
  the granulated Kendall coefficient).

The tests built on the same resamples (:func:`two_sided_pvalue`, :func:`holm`,
:func:`permutation_pvalue`) are used by :mod:`scoring.ranking`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from scoring.predictions import ScoringGrid

SCHEMES = ("halfsample", "bootstrap")
"""The resampling schemes of :func:`resample_weights`."""

DEFAULT_SCHEME = "halfsample"

_CHUNK_ELEMENTS = 1 << 22  # (resamples x n x n) floats held at once: 32 MB


def resample_weights(n: int, n_resamples: int, *, scheme: str = DEFAULT_SCHEME, seed: int = 0) -> np.ndarray:
    """Weights of `n_resamples` resamples of n models, shape (n_resamples, n), float64.

    ``"bootstrap"``: ``numpy.random.default_rng(seed).integers(0, n, size=(R, n))`` counted per
    model (the same draws, in the same order, as R calls ``integers(0, n, size=n)``, the loop
    reference). ``"halfsample"``: per resample the ``n // 2`` models with the smallest of
    ``default_rng(seed).random((R, n))`` get weight 1.

    Raises:
        ValueError: unknown scheme, n < 2 for half-sampling.
    """
    rng = np.random.default_rng(seed)
    if scheme == "bootstrap":
        idx = rng.integers(0, n, size=(n_resamples, n))
        flat = (idx + n * np.arange(n_resamples)[:, None]).ravel()
        return np.bincount(flat, minlength=n * n_resamples).reshape(n_resamples, n).astype(np.float64)
    if scheme == "halfsample":
        if n < 2:
            raise ValueError("half-sampling needs at least two models")
        keys = rng.random((n_resamples, n))
        chosen = np.argpartition(keys, n // 2 - 1, axis=1)[:, :n // 2]
        weights = np.zeros((n_resamples, n))
        np.put_along_axis(weights, chosen, 1.0, axis=1)
        return weights
    raise ValueError(f"unknown resampling scheme {scheme!r}; choose from {', '.join(SCHEMES)}")


def weights_to_indices(weights: np.ndarray) -> np.ndarray:
    """The model indices of one resample (each repeated by its weight), in increasing order."""
    return np.repeat(np.arange(len(weights)), np.asarray(weights, dtype=np.int64))


def permutations(n: int, n_permutations: int, *, seed: int = 0) -> np.ndarray:
    """`n_permutations` seeded permutations of n models, shape (n_permutations, n)."""
    rng = np.random.default_rng(seed)
    return np.argsort(rng.random((n_permutations, n)), axis=1)


# ----------------------------------------------------------------------------- pair sums


def chunks(n_resamples: int, n: int) -> Iterator[slice]:
    """Slices of the resamples small enough to hold (resamples, n, n) floats at once."""
    size = max(1, _CHUNK_ELEMENTS // max(1, n * n))
    for start in range(0, n_resamples, size):
        yield slice(start, min(n_resamples, start + size))


def one_hot(gid: np.ndarray, k: int) -> np.ndarray:
    """(n, k) float64 indicator of each model's group."""
    out = np.zeros((len(gid), k))
    out[np.arange(len(gid)), np.asarray(gid, dtype=np.intp)] = 1.0
    return out


def _exact_dtype(weights: np.ndarray) -> type:
    """float32 when every pair count of a resample stays below 2^24 (exact there, and twice as fast)."""
    total = float(weights.sum(axis=1).max()) if weights.size else 0.0
    return np.float32 if total * total < 2.0 ** 24 else np.float64


def group_pair_sums_many(pair: np.ndarray, weights: np.ndarray, groups: list[np.ndarray]) -> list[np.ndarray]:
    """S[r, A, B] = sum_{i in A, j in B} w_ri w_rj pair[(r,) i, j] for several partitions of the same
    models (exact for whole-number weights and a pair statistic in {-1, 0, 1}).

    Args:
        pair: (n, n) pair statistic, or (R, n, n) one per resample.
        weights: (R, n) whole numbers.
        groups: per partition, its (n, k) one-hot groups.

    Returns:
        Per partition, (R, k, k) float64.

    The weighted pair matrices of the resamples are built once; one matrix product with the
    groups of every partition side by side sums their columns by group, then the rows are
    summed by group (about R n^2 K operations for K groups in all).
    """
    r, n = weights.shape
    dtype = _exact_dtype(weights)
    pair = pair.astype(dtype, copy=False)
    if pair.ndim == 3 and (weights == 1).all():  # permutations: nothing to weigh
        weighted = pair.reshape(r * n, n)
    else:
        w = weights.astype(dtype)
        weighted = (w[:, :, None] * pair * w[:, None, :]).reshape(r * n, n)
    right = (weighted @ np.concatenate(groups, axis=1).astype(dtype)).reshape(r, n, -1)
    out, offset = [], 0
    for g in groups:
        k = g.shape[1]
        gid = np.argmax(g, axis=1)
        order = np.argsort(gid, kind="stable")
        present, starts = np.unique(gid[order], return_index=True)
        block = np.zeros((r, k, k))
        block[:, present, :] = np.add.reduceat(right[:, order, offset:offset + k], starts, axis=1)
        out.append(block)
        offset += k
    return out


class WithinGroupPairs:
    """The ordered pairs (i, j) of models in the same group, for sums over each group's pairs.

    D[r, A] = sum_{i, j in A} w_ri w_rj pair[(r,) i, j] is a sum over these pairs only (a group
    of the models that differ in one hyper-parameter holds a few models), so it is taken by
    gathering them instead of a product with the whole (n, n) matrix.
    """

    def __init__(self, gid: np.ndarray):
        gid = np.asarray(gid, dtype=np.intp)
        self.k = int(gid.max()) + 1 if len(gid) else 0
        same = gid[:, None] == gid[None, :]
        self.i, self.j = np.nonzero(same)
        self.group = gid[self.i]

    def sums(self, pair: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """(R, k) sums over each group's ordered pairs (self-pairs included: pair is 0 there)."""
        values = pair[..., self.i, self.j] * weights[:, self.i] * weights[:, self.j]
        r = len(weights)
        flat = (self.group[None, :] + self.k * np.arange(r)[:, None]).ravel()
        return np.bincount(flat, weights=np.broadcast_to(values, (r, len(self.i))).ravel(),
                           minlength=r * self.k).reshape(r, self.k)


def greater(v: np.ndarray) -> np.ndarray:
    """[v_i > v_j] as float32 (exact): (n, n) for v of shape (n,), (R, n, n) for (R, n)."""
    return (v[..., :, None] > v[..., None, :]).astype(np.float32)


class IdentityCache:
    """A small cache keyed on the identity of its arguments (held, so alive, while cached): the
    rankers of one measure on one task share what they compute from the same arrays (the
    resamples and the permutations alternate, hence a few entries). Arrays are never changed in
    place here, so identity is enough."""

    def __init__(self, size: int = 4):
        self.size = size
        self.entries: list[tuple[tuple, Any]] = []

    def get(self, args: tuple, compute):
        for i, (held, value) in enumerate(self.entries):
            if len(held) == len(args) and all(a is b for a, b in zip(held, args)):
                self.entries.append(self.entries.pop(i))
                return value
        value = compute()
        self.entries = (self.entries + [(args, value)])[-self.size:]
        return value


def signs(v: np.ndarray) -> np.ndarray:
    """sign(v_i - v_j): (n, n) for v of shape (n,), (R, n, n) for (R, n)."""
    return np.sign(v[..., :, None] - v[..., None, :])


def present_groups(gid: np.ndarray) -> tuple[np.ndarray, int]:
    """Group ids renumbered 0..k-1 over the groups that have a model, and k."""
    present, inverse = np.unique(np.asarray(gid), return_inverse=True)
    return inverse.ravel().astype(np.intp), len(present)


def others_groups(grid: ScoringGrid, h: int) -> tuple[np.ndarray, int]:
    """Groups of the models that share every hyper-parameter but h (by value index)."""
    others = np.delete(grid.value_index, h, axis=1)
    if not others.shape[1]:
        return np.zeros(grid.n_models, dtype=np.intp), 1
    gid = np.unique(others, axis=0, return_inverse=True)[1].ravel()
    return gid.astype(np.intp), int(gid.max()) + 1


def percentile_interval(scores: np.ndarray, confidence: float) -> tuple[float, float]:
    """The (1 - c)/2 and (1 + c)/2 quantiles of the finite scores ((NaN, NaN) if none)."""
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    scores = scores[np.isfinite(scores)]
    if not len(scores):
        return math.nan, math.nan
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(scores, [alpha, 1.0 - alpha])
    return float(low), float(high)


def two_sided_pvalue(differences: np.ndarray) -> float:
    """Two-sided p-value of "the difference is 0" from its resampled values.

        p = min(1, 2 min(P*(d* <= 0), P*(d* >= 0)))

    (the smallest two-sided level at which the percentile interval excludes 0; a difference
    that is 0 in every resample has p = 1). NaN when no resample is finite.
    """
    d = differences[np.isfinite(differences)]
    if not len(d):
        return math.nan
    return float(min(1.0, 2.0 * min(np.mean(d <= 0), np.mean(d >= 0))))


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries stay NaN and are not counted).

    p_(k) adjusted = max_{j <= k} min(1, (m - j + 1) p_(j)) over the m finite p-values sorted
    increasingly (Holm 1979, "A simple sequentially rejective multiple test procedure",
    Scand. J. Statist. 6).
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = len(finite)
    if not m:
        return out
    order = finite[np.argsort(p[finite], kind="stable")]
    adjusted = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(adjusted)
    return out


def permutation_pvalue(observed: float, null: np.ndarray, *, larger_is_better: bool = True) -> float:
    """One-sided permutation p-value: (1 + #{null at least as good}) / (1 + #null finite)."""
    null = null[np.isfinite(null)]
    if not math.isfinite(observed) or not len(null):
        return math.nan
    better = null >= observed if larger_is_better else null <= observed
    return float((1 + np.count_nonzero(better)) / (1 + len(null)))
