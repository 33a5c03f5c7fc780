"""Rankers: how well a measure orders models by generalization gap, behind one interface.

Every ranker is an object of :data:`RANKERS` (name -> ranker) with

* ``name``, ``description``, ``reference``;
* ``sign_dependent``: whether negating the measure changes the score (the competition's CMI
  and Kendall's coefficients do; Jiang et al.'s CMI, a mutual information, does not);
* ``scale``: the factor tables show its scores with (100 for the competition's CMI, whose
  scores the competition showed x100; the ranker itself returns the fraction);
* ``ranker(values, model_specs) -> float`` where ``values`` maps model id -> measure value and
  ``model_specs`` is the task's ``model_configs.json`` mapping (models without a value are left
  out);
* ``ranker.breakdown(values, model_specs) -> {set of hyper-parameter names: value}`` and
  ``ranker.selected_set(breakdown)``: the conditioning set (or hyper-parameter) behind the
  score, for reports;
* :func:`bootstrap_ci` (or ``ranker.bootstrap_ci``): a seeded percentile bootstrap over models.

The math is in plain functions on arrays (``*_grid``) that take a :class:`ScoringGrid`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from scoring import resampling, robust
from scoring.cmi import (
    CMIWarning,
    cmi_breakdown_grid,
    competition_min,
    conditional_mutual_information_batch,
    conditional_mutual_information_grid,
    pair_counts_by_group,
)
from scoring.errors import PGDLError
from scoring.predictions import ScoringGrid, align_prediction, scoring_grid

JIANG_2019 = ('Jiang, Neyshabur, Mobahi, Krishnan, Bengio, "Fantastic Generalization Measures '
              'and Where to Find Them", ICLR 2020 (arXiv:1912.02178), Sec. 6')


# ----------------------------------------------------------------------------- preparation


def prepare_values(values: Mapping[Any, Any], model_specs: Mapping[str, Any]
                   ) -> tuple[np.ndarray, ScoringGrid]:
    """The measure values and the task's grid restricted to the models that have a value.

    Args:
        values: model id -> finite number (ids normalized like the competition's).
        model_specs: the task's ``model_configs.json`` mapping.

    Returns:
        (values array, grid), in ``model_configs.json`` order.

    Raises:
        PGDLError: malformed specs, a value for an unknown model, a non-finite value, no values.
    """
    grid = scoring_grid(model_specs)
    array = align_prediction(values, grid, exact=False)
    keep = np.flatnonzero(~np.isnan(array))
    if not len(keep):
        raise PGDLError("no measure value for any model of the task")
    if len(keep) < grid.n_models:
        grid = grid.take(keep)
    return array[keep], grid


def _value_index(grid: ScoringGrid) -> np.ndarray:
    bad = np.argwhere(grid.value_index < 0)
    if len(bad):
        row, col = bad[0]
        raise PGDLError(f"{grid.model_ids[row]}: hyper-parameter {grid.hparams[col]!r} has a "
                        f"current_value not among its possible_values", grid.source)
    return grid.value_index


# ----------------------------------------------------------------------------- Jiang et al. CMI


def _normalized_cmi(cells: np.ndarray) -> float:
    """sum_u p(u) I(X;Y | u) / sum_u p(u) H(X | u) from per-cell counts n_u(x, y).

    Args:
        cells: counts, shape (cells u, values of X, values of Y).
    """
    total = cells.sum()
    if total == 0:
        return math.nan
    n_u = cells.sum(axis=(1, 2), keepdims=True)
    n_x = cells.sum(axis=2, keepdims=True)
    n_y = cells.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = cells * n_u / (n_x * n_y)
        mi = np.where(cells > 0, cells * np.log2(ratio), 0.0).sum() / total
        h = np.where(n_x > 0, n_x * np.log2(n_u / n_x), 0.0).sum() / total
    return float(mi / h) if h > 0 else math.nan


def _jiang_cells(block: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per cell (group of i, group of j), the counts of (X, Y), X in {+, -}, Y in {+, 0, -}."""
    pp, pm = block["gt_mt"], block["gt_ml"]
    p0 = block["gt"] - pp - pm  # gap larger, measure tied
    table = np.stack([np.stack([pp, p0, pm], axis=-1), np.stack([pm.T, p0.T, pp.T], axis=-1)], axis=-2)
    return table.reshape(-1, 2, 3)


def untied_fraction_grid(values: np.ndarray, grid: ScoringGrid) -> float:
    """The fraction of the pairs of models with different gaps whose measure values differ too.

        f = #{(i, j) : g_i != g_j, mu_i != mu_j} / #{(i, j) : g_i != g_j}

    A measure that is nearly constant has f near 0: its rank tells little, whatever a ranker
    computes from the few untied pairs. NaN when every gap is the same.
    """
    block = pair_counts_by_group(grid.gaps, values, [(np.zeros(grid.n_models, dtype=np.intp), 1)],
                                 ("gt", "gt_mt", "gt_ml"))[0]
    pairs = block["gt"][0, 0]
    return float((block["gt_mt"][0, 0] + block["gt_ml"][0, 0]) / pairs) if pairs else math.nan


def jiang_cmi_breakdown_grid(values: np.ndarray, grid: ScoringGrid, *,
                             max_size: int = 2) -> dict[tuple[str, ...], float]:
    """Jiang et al.'s normalized conditional mutual information for every set S, |S| <= 2.

    Over ordered pairs of distinct models (each unordered pair once in each orientation, so
    the result does not depend on model order), with ties in the gap dropped,
    X = V_g = sign(g_i - g_j), Y = V_mu = sign(mu_i - mu_j) in {+1, 0, -1} and
    U_S = (theta_S(i), theta_S(j)) the values of the hyper-parameters in S of both models:

        I~(S) = I(X; Y | U_S) / H(X | U_S)
              = [sum_u p(u) I(X; Y | U_S = u)] / [sum_u p(u) H(X | U_S = u)]

    with p(u) the fraction of pairs in cell u (cells weighted by their probability, empty cells
    weightless) and base-2 logs. NaN where no pair is left or H(X | U_S) = 0. Values are
    located in the possible values by equality.

    A tie in the measure is Jiang et al.'s V_mu = 0, a value of its own that tells nothing about
    X: a measure tied on most pairs keeps only the information of its untied pairs (a measure
    that orders its untied pairs perfectly and ties the rest scores about the fraction
    untied, :func:`untied_fraction_grid`), never the 1 that dropping the ties would give it.

    Args:
        values: measure value per model (grid order).
        grid: the task's grid.
        max_size: largest |S| (0, 1 or 2).

    Returns:
        S (a tuple of hyper-parameter names, ``()`` for |S| = 0) -> I~(S).

    References:
        Jiang et al. 2019, Sec. 6.2 (conditional mutual information).
    """
    codes = _value_index(grid)
    sizes = [len(v) for v in grid.possible_values]
    names = grid.hparams
    sets: list[tuple[str, ...]] = [()]
    partitions = [(np.zeros(grid.n_models, dtype=np.intp), 1)]
    if max_size >= 1:
        for h, name in enumerate(names):
            sets.append((name,))
            partitions.append((codes[:, h], sizes[h]))
    if max_size >= 2:
        for a in range(len(names)):
            for b in range(a + 1, len(names)):
                sets.append((names[a], names[b]))
                partitions.append((codes[:, a] * sizes[b] + codes[:, b], sizes[a] * sizes[b]))
    # Number the groups present (at most one per model): empty cells are weightless, so this
    # changes nothing but the work, which then grows with the models, not with the product of value counts.
    partitions = [resampling.present_groups(gid) for gid, _ in partitions]
    counts = pair_counts_by_group(grid.gaps, values, partitions, ("gt", "gt_mt", "gt_ml"))
    return {key: _normalized_cmi(_jiang_cells(block)) for key, block in zip(sets, counts)}


def _normalized_cmi_batch(cells: np.ndarray) -> np.ndarray:
    """:func:`_normalized_cmi` of each resample: cells of shape (R, cells u, 2, 3)."""
    total = cells.sum(axis=(1, 2, 3))
    n_u = cells.sum(axis=(2, 3), keepdims=True)
    n_x = cells.sum(axis=3, keepdims=True)
    n_y = cells.sum(axis=2, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = cells * n_u / (n_x * n_y)
        mi = np.where(cells > 0, cells * np.log2(ratio), 0.0).sum(axis=(1, 2, 3)) / total
        h = np.where(n_x > 0, n_x * np.log2(n_u / n_x), 0.0).sum(axis=(1, 2, 3)) / total
        return np.where((total > 0) & (h > 0), mi / h, math.nan)


def _jiang_set_values_batch(values: np.ndarray, grid: ScoringGrid, weights: np.ndarray,
                            gaps: np.ndarray | None) -> dict[int, np.ndarray]:
    """Per |S| in (0, 1, 2), the (R, sets) values I~(S) of R weighted resamples."""
    codes = _value_index(grid)
    sizes = [len(v) for v in grid.possible_values]
    n_h = len(grid.hparams)
    by_size = {0: [np.zeros(grid.n_models, dtype=np.intp)],
               1: [codes[:, h] for h in range(n_h)],
               2: [codes[:, a] * sizes[b] + codes[:, b] for a in range(n_h) for b in range(a + 1, n_h)]}
    groups = [resampling.one_hot(*resampling.present_groups(gid)) for k in (0, 1, 2) for gid in by_size[k]]
    size_of = [k for k in (0, 1, 2) for _ in by_size[k]]
    values = np.asarray(values, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    r_total, n = weights.shape
    gaps = grid.gaps if gaps is None else np.asarray(gaps, dtype=np.float64)
    out = {k: np.full((r_total, len(by_size[k])), math.nan) for k in (0, 1, 2)}
    for sl in resampling.chunks(r_total, n):
        w = weights[sl]
        y = values[sl] if values.ndim == 2 else values
        g_ = gaps[sl] if gaps.ndim == 2 else gaps
        gt_pair = resampling.greater(g_)
        gt = _JIANG_GT.get((grid, weights, gaps, sl.start),
                           lambda gt_pair=gt_pair, w=w: resampling.group_pair_sums_many(gt_pair, w, groups))
        pp = resampling.group_pair_sums_many(gt_pair * resampling.greater(y), w, groups)
        pm = resampling.group_pair_sums_many(gt_pair * resampling.greater(-y), w, groups)
        column = dict.fromkeys((0, 1, 2), 0)
        for k, g, p_, m_ in zip(size_of, gt, pp, pm):
            z = g - p_ - m_
            first = np.stack([p_, z, m_], axis=-1)
            second = np.stack([m_.transpose(0, 2, 1), z.transpose(0, 2, 1), p_.transpose(0, 2, 1)], axis=-1)
            table = np.stack([first, second], axis=-2)
            out[k][sl, column[k]] = _normalized_cmi_batch(table.reshape(len(w), -1, 2, 3))
            column[k] += 1
    return out


_JIANG_GT = resampling.IdentityCache()  # the gap's pair counts: the same for every measure resampled alike
_JIANG_SETS = resampling.IdentityCache()  # the three set sizes of one measure, computed together


def jiang_cmi_batch(values: np.ndarray, grid: ScoringGrid, weights: np.ndarray, *, size: int,
                    gaps: np.ndarray | None = None) -> np.ndarray:
    """Jiang et al.'s K_size (min over sets of `size` of :func:`jiang_cmi_breakdown_grid`) of R
    weighted resamples at once (see :mod:`scoring.resampling`); the three sizes are computed
    together and kept for the next call with the same arrays.

    Args:
        values: (n,) or (R, n) measure values.
        grid: the task's grid.
        weights: (R, n) whole numbers.
        size: |S|, 0, 1 or 2.
        gaps: (R, n) gaps replacing the grid's row by row (simulations).

    Returns:
        (R,) scores (NaN where every set is NaN).
    """
    per_set = _JIANG_SETS.get((values, grid, weights, gaps),
                              lambda: _jiang_set_values_batch(values, grid, weights, gaps))[size]
    finite = np.isfinite(per_set)
    return np.where(finite.any(axis=1), np.min(np.where(finite, per_set, np.inf), axis=1), math.nan)


# ----------------------------------------------------------------------------- Kendall


def kendall_tau_grid(values: np.ndarray, grid: ScoringGrid) -> float:
    """Kendall's rank correlation between measure and gap over all pairs of models.

        tau = 1 / (n (n - 1)) * sum_{i != j} sign(mu_i - mu_j) sign(g_i - g_j)

    (Jiang et al.'s eq. 3, tau-a: a tie in either variable contributes 0). NaN for n < 2.

    Args:
        values: measure value per model (grid order).
        grid: the task's grid.

    Returns:
        tau in [-1, 1].
    """
    n = grid.n_models
    if n < 2:
        return math.nan
    block = pair_counts_by_group(grid.gaps, values, [(np.zeros(n, dtype=np.intp), 1)],
                                 ("gt_mt", "gt_ml"))[0]
    return float(2.0 * (block["gt_mt"][0, 0] - block["gt_ml"][0, 0]) / (n * (n - 1)))


def _within_group_tau(x: np.ndarray, y: np.ndarray, gid: np.ndarray) -> np.ndarray:
    """tau-a within each group (NaN for groups of fewer than two models)."""
    order = np.argsort(gid, kind="stable")
    _, grp, counts = np.unique(gid[order], return_inverse=True, return_counts=True)
    grp = grp.ravel()
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    den = counts * (counts - 1.0)
    width = int(counts.max())
    if len(counts) * width * width <= 4_000_000:
        pos = np.arange(len(x)) - starts[grp]
        xs = np.full((len(counts), width), np.nan)
        ys = np.full((len(counts), width), np.nan)
        xs[grp, pos], ys[grp, pos] = x[order], y[order]
        prod = np.sign(xs[:, :, None] - xs[:, None, :]) * np.sign(ys[:, :, None] - ys[:, None, :])
        num = np.nansum(prod, axis=(1, 2))
    else:  # a few large groups: count pairs group by group
        num = np.empty(len(counts))
        for g, (s, c) in enumerate(zip(starts, counts)):
            idx = order[s:s + c]
            block = pair_counts_by_group(x[idx], y[idx], [(np.zeros(c, dtype=np.intp), 1)],
                                         ("gt_mt", "gt_ml"))[0]
            num[g] = 2.0 * (block["gt_mt"][0, 0] - block["gt_ml"][0, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


def granulated_kendall_breakdown_grid(values: np.ndarray, grid: ScoringGrid
                                      ) -> dict[tuple[str], float]:
    """Per hyper-parameter h, the mean Kendall tau among models that differ only in h.

        psi_h = (1 / m_h) sum_{theta_{-h}} tau({(mu(theta), g(theta)) : theta_h in Theta_h})

    the mean over the m_h combinations theta_{-h} of the other hyper-parameters (groups of
    fewer than two models are left out; NaN when no group has two).

    Args:
        values: measure value per model (grid order).
        grid: the task's grid.

    Returns:
        (h,) -> psi_h.

    References:
        Jiang et al. 2019, Sec. 6.1, eq. (4).
    """
    _value_index(grid)
    out = {}
    for h, name in enumerate(grid.hparams):
        gid, _ = resampling.others_groups(grid, h)
        taus = _within_group_tau(grid.gaps, values, gid)
        taus = taus[~np.isnan(taus)]
        out[(name,)] = float(taus.mean()) if len(taus) else math.nan
    return out


def granulated_kendall_grid(values: np.ndarray, grid: ScoringGrid) -> float:
    """Jiang et al.'s granulated Kendall coefficient.

        Psi = (1 / n_h) sum_h psi_h

    over the hyper-parameters h whose psi_h is defined (see
    :func:`granulated_kendall_breakdown_grid`); NaN when none is.
    """
    psi = [v for v in granulated_kendall_breakdown_grid(values, grid).values() if not math.isnan(v)]
    return float(np.mean(psi)) if psi else math.nan


def kendall_tau_batch(values: np.ndarray, grid: ScoringGrid, weights: np.ndarray,
                      gaps: np.ndarray | None = None) -> np.ndarray:
    """:func:`kendall_tau_grid` of R weighted resamples at once (bit for bit: exact pair counts)."""
    values = np.asarray(values, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    r_total, n = weights.shape
    gaps = grid.gaps if gaps is None else np.asarray(gaps, dtype=np.float64)
    totals = weights.sum(axis=1)
    scores = np.empty(r_total)
    for sl in resampling.chunks(r_total, n):
        w = weights[sl]
        y = values[sl] if values.ndim == 2 else values
        pair = resampling.signs(gaps[sl] if gaps.ndim == 2 else gaps) * resampling.signs(y)
        inner = np.matmul(pair, w[:, :, None])[..., 0] if pair.ndim == 3 else w @ pair.T
        num = (w * inner).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            scores[sl] = np.where(totals[sl] >= 2, num / (totals[sl] * (totals[sl] - 1)), math.nan)
    return scores


def granulated_kendall_batch(values: np.ndarray, grid: ScoringGrid, weights: np.ndarray,
                             gaps: np.ndarray | None = None) -> np.ndarray:
    """:func:`granulated_kendall_grid` of R weighted resamples at once (to float64 round-off)."""
    _value_index(grid)
    values = np.asarray(values, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    r_total, n = weights.shape
    partitions = [resampling.others_groups(grid, h) for h in range(len(grid.hparams))]
    groups = [(resampling.WithinGroupPairs(gid), resampling.one_hot(gid, k)) for gid, k in partitions]
    gaps = grid.gaps if gaps is None else np.asarray(gaps, dtype=np.float64)
    scores = np.full(r_total, math.nan)
    if not groups:
        return scores
    for sl in resampling.chunks(r_total, n):
        w = weights[sl]
        y = values[sl] if values.ndim == 2 else values
        pair = resampling.signs(gaps[sl] if gaps.ndim == 2 else gaps) * resampling.signs(y)
        psi = []
        for pairs, g in groups:
            num = pairs.sums(pair, w)
            count = w @ g
            den = count * (count - 1.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                tau = np.where(den > 0, num / den, np.nan)
            defined = np.isfinite(tau)
            with np.errstate(divide="ignore", invalid="ignore"):
                psi.append(np.where(defined.any(axis=1), np.where(defined, tau, 0.0).sum(axis=1) / defined.sum(axis=1),
                                    np.nan))
        psi = np.stack(psi, axis=1)
        defined = np.isfinite(psi)
        with np.errstate(divide="ignore", invalid="ignore"):
            scores[sl] = np.where(defined.any(axis=1), np.where(defined, psi, 0.0).sum(axis=1) / defined.sum(axis=1),
                                  math.nan)
    return scores


# ----------------------------------------------------------------------------- the interface


def _nan_argmin(breakdown: Mapping[Any, float]) -> Any:
    finite = [(v, i, k) for i, (k, v) in enumerate(breakdown.items()) if not math.isnan(v)]
    return min(finite)[2] if finite else None


class Ranker:
    """A ranker of measures: a score of how well measure values order models by gap.

    Subclasses set the class attributes and implement :meth:`score_grid` (and
    :meth:`breakdown_grid` where the score is a minimum or a mean over parts).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    sign_dependent: ClassVar[bool] = True
    reference: ClassVar[str] = ""
    #: The factor tables show the scores with (the scores themselves are not scaled): 100 for
    #: the competition's CMI, as the competition showed it; 1 for the others.
    scale: ClassVar[float] = 1.0
    #: Whether a larger score means a better measure (every ranker but error rates).
    larger_is_better: ClassVar[bool] = True
    #: The range of the score; intervals are kept inside it.
    bounds: ClassVar[tuple[float, float]] = (-math.inf, math.inf)

    def score_grid(self, values: np.ndarray, grid: ScoringGrid) -> float:
        """The score from an array of values in grid order."""
        raise NotImplementedError

    def score_batch(self, values: np.ndarray, grid: ScoringGrid, weights: np.ndarray,
                    gaps: np.ndarray | None = None) -> np.ndarray:
        """The scores of R weighted resamples (:mod:`scoring.resampling`), shape (R,).

        Resample r holds model i ``weights[r, i]`` times; ``values`` is (n,) or (R, n);
        ``gaps`` (R, n), when given, replaces the grid's gaps row by row (simulations). This
        default scores each resampled grid with :meth:`score_grid` (the reference loop); the
        built-in rankers override it with vectorized versions that give the same numbers.
        """
        values = np.asarray(values, dtype=np.float64)
        out = np.empty(len(weights))
        for r, w in enumerate(weights):
            idx = resampling.weights_to_indices(w)
            row = values[r] if values.ndim == 2 else values
            resampled = grid.take(idx)
            if gaps is not None:
                resampled = dataclasses.replace(resampled, gaps=np.asarray(gaps, dtype=np.float64)[r][idx])
            out[r] = self.score_grid(row[idx], resampled)
        return out

    def breakdown_grid(self, values: np.ndarray, grid: ScoringGrid) -> dict[tuple[str, ...], float]:
        """Per conditioning set (or hyper-parameter), the value the score is made of."""
        return {}

    #: Whether resamples of the models give this ranker an interval (False for a maximum over
    #: environments, which a resample of fewer models cannot reach: it gets a permutation
    #: p-value only).
    intervals: ClassVar[bool] = True

    def retained_fraction(self, grid: ScoringGrid, weights: np.ndarray) -> float:
        """The mean fraction of the score's units a half-sample keeps: here models (1/2 for an even
        n). See :func:`half_sample_spread`."""
        return float(np.mean(weights.sum(axis=1)) / grid.n_models)

    def selected_set(self, breakdown: Mapping[tuple[str, ...], float]) -> tuple[str, ...] | None:
        """The conditioning set behind the score (None when the score is not a minimum)."""
        return None

    def __call__(self, values: Mapping[Any, Any], model_specs: Mapping[str, Any]) -> float:
        array, grid = prepare_values(values, model_specs)
        return self.score_grid(array, grid)

    def breakdown(self, values: Mapping[Any, Any], model_specs: Mapping[str, Any]
                  ) -> dict[tuple[str, ...], float]:
        array, grid = prepare_values(values, model_specs)
        return self.breakdown_grid(array, grid)

    def bootstrap_ci(self, values: Mapping[Any, Any], model_specs: Mapping[str, Any],
                     **kwargs: Any) -> tuple[float, float]:
        """See :func:`bootstrap_ci`."""
        return bootstrap_ci(self, values, model_specs, **kwargs)

    def __repr__(self) -> str:
        return f"<ranker {self.name}>"


class CompetitionCMI(Ranker):
    """The competition's score (:func:`scoring.cmi.conditional_mutual_information`).

    Sign-dependent: self-pairs and ties count as "measure not larger", so negating the
    measure moves them to the other column of every cell.
    """

    name = "competition_cmi"
    description = ("PGDL competition's conditional mutual information (min over ordered (h1, h2)), "
                   "shown x100 as the competition's scores")
    sign_dependent = True
    scale = 100.0
    bounds = (0.0, 1.0)
    reference = "Jiang et al., NeurIPS 2020 PGDL competition (arXiv:2012.07976)"

    def score_grid(self, values, grid):
        return conditional_mutual_information_grid(values, grid)

    def score_batch(self, values, grid, weights, gaps=None):
        return conditional_mutual_information_batch(values, grid, weights, gaps)

    def breakdown_grid(self, values, grid):
        return cmi_breakdown_grid(values, grid)

    def selected_set(self, breakdown):
        return competition_min(breakdown)[0]


class JiangCMI(Ranker):
    """Jiang et al.'s conditional mutual information, the minimum over sets of one size.

        K_k(mu) = min_{S : |S| = k} I(V_mu; V_g | U_S) / H(V_g | U_S)

    (see :func:`jiang_cmi_breakdown_grid`; NaN sets are left out). A mutual information does
    not change when the measure is negated, so this ranker is not sign-dependent.

    Args:
        size: |S|, 0 (plain mutual information), 1 or 2.
    """

    sign_dependent = False
    reference = JIANG_2019
    bounds = (0.0, 1.0)

    def __init__(self, *, size: int = 2):
        if size not in (0, 1, 2):
            raise ValueError("size must be 0, 1 or 2")
        self.size = size
        self.name = f"jiang_cmi_{size}"
        self.description = (f"Jiang et al. 2019 normalized CMI, min over conditioning sets of "
                            f"size {size} (unordered pairs, gap ties dropped, measure ties V_mu = 0, "
                            "cells weighted)")

    def breakdown_grid(self, values, grid):
        every = jiang_cmi_breakdown_grid(values, grid, max_size=self.size)
        return {k: v for k, v in every.items() if len(k) == self.size}

    def score_grid(self, values, grid):
        breakdown = self.breakdown_grid(values, grid)
        finite = [v for v in breakdown.values() if not math.isnan(v)]
        return float(min(finite)) if finite else math.nan

    def score_batch(self, values, grid, weights, gaps=None):
        return jiang_cmi_batch(values, grid, weights, size=self.size, gaps=gaps)

    def selected_set(self, breakdown):
        return _nan_argmin(breakdown)


class KendallTau(Ranker):
    """Kendall's tau (tau-a) between measure and gap over all pairs (:func:`kendall_tau_grid`)."""

    name = "kendall_tau"
    description = "Kendall's rank correlation between measure and gap over all pairs of models"
    sign_dependent = True
    bounds = (-1.0, 1.0)
    reference = JIANG_2019 + ", eq. (3)"

    def score_grid(self, values, grid):
        return kendall_tau_grid(values, grid)

    def score_batch(self, values, grid, weights, gaps=None):
        return kendall_tau_batch(values, grid, weights, gaps)


class GranulatedKendall(Ranker):
    """Jiang et al.'s granulated Kendall coefficient (:func:`granulated_kendall_grid`)."""

    name = "granulated_kendall"
    description = "mean over hyper-parameters of Kendall's tau among models differing only in it"
    sign_dependent = True
    bounds = (-1.0, 1.0)
    reference = JIANG_2019 + ", eq. (4)"

    def score_grid(self, values, grid):
        return granulated_kendall_grid(values, grid)

    def breakdown_grid(self, values, grid):
        return granulated_kendall_breakdown_grid(values, grid)

    def score_batch(self, values, grid, weights, gaps=None):
        return granulated_kendall_batch(values, grid, weights, gaps)

    def retained_fraction(self, grid, weights):
        """The units of this score are the pairs within the groups of models that differ in one
        hyper-parameter (a group of a 2-valued hyper-parameter is one pair, kept only when both
        models are drawn: about 1/4 of them in a half-sample)."""
        kept, full = 0.0, 0.0
        for h in range(len(grid.hparams)):
            gid, k = resampling.others_groups(grid, h)
            counts = weights @ resampling.one_hot(gid, k)
            sizes = np.bincount(gid, minlength=k).astype(np.float64)
            kept += float(np.mean((counts * (counts - 1)).sum(axis=1)))
            full += float((sizes * (sizes - 1)).sum())
        return kept / full if full else float(np.mean(weights.sum(axis=1)) / grid.n_models)


class RobustSignError(Ranker):
    """Dziugaite et al.'s robust sign-error: the worst sign-error over environments of coupled
    networks (models differing in one hyper-parameter; :func:`scoring.robust.environment_sign_errors`).

    Smaller is better (0: the measure orders the gaps of every coupled pair rightly; 1: some
    environment is ordered wrongly throughout). The breakdown is, per hyper-parameter h, the
    worst environment among those that vary h, then the distribution over environments, which the
    paper reports beside the worst case.

    Args:
        tolerance: pairs whose gaps differ by at most this are left out.
    """

    name = "robust_sign_error"
    description = ("Dziugaite et al. 2020 robust sign-error: worst mean sign-error over environments of "
                   "models differing in one hyper-parameter (smaller is better)")
    sign_dependent = True
    larger_is_better = False
    intervals = False
    bounds = (0.0, 1.0)
    reference = robust.DZIUGAITE_2020

    def __init__(self, *, tolerance: float = 0.0):
        if not tolerance >= 0:
            raise ValueError("tolerance must be >= 0")
        self.tolerance = float(tolerance)

    def score_grid(self, values, grid):
        return float(self.score_batch(values, grid, np.ones((1, grid.n_models)))[0])

    def score_batch(self, values, grid, weights, gaps=None):
        _value_index(grid)
        return robust.worst(robust.environment_sign_errors(values, grid, weights, tolerance=self.tolerance, gaps=gaps))

    def breakdown_grid(self, values, grid):
        """Per hyper-parameter h, the worst environment among those varying h; then the
        distribution over every environment (``environments: median``, ``75%``, ``90%``)."""
        _value_index(grid)
        errors = robust.environment_sign_errors(values, grid, np.ones((1, grid.n_models)), tolerance=self.tolerance)
        out = {(name,): float(robust.worst([e])[0]) for name, e in zip(grid.hparams, errors)}
        quantiles = robust.environment_quantiles(errors, (0.5, 0.75, 0.9))
        out.update({(f"{robust.QUANTILE_PREFIX}{label}",): quantiles[key]
                    for label, key in (("median", "q0.5"), ("75%", "q0.75"), ("90%", "q0.9"))})
        return out

    def selected_set(self, breakdown):
        finite = [(v, -i, k) for i, (k, v) in enumerate(breakdown.items())
                  if not math.isnan(v) and not str(k[0]).startswith(robust.QUANTILE_PREFIX)]
        return max(finite)[2] if finite else None


def half_sample_spread(ranker: Ranker, grid: ScoringGrid, weights: np.ndarray) -> float:
    """The factor c that turns half-sample deviations into deviations at the task's size.

    A statistic averaging over N units, of which a half-sample keeps a fraction f (without
    replacement), varies about the full value with variance sigma^2 (1 - f) / (f N); at the
    task's size it varies with sigma^2 / N. So the deviations of the resampled values theta* are
    multiplied by c = sqrt(f / (1 - f)) (:func:`centred_half_samples`): c = 1 when f = 1/2 (models,
    n even), c = 0.58 for the granulated Kendall coefficient of a 2-valued grid (f about 1/4).
    """
    f = ranker.retained_fraction(grid, weights)
    return float(math.sqrt(f / (1.0 - f))) if 0 < f < 1 else 1.0


def centred_half_samples(ranker: Ranker, value: float, resampled: np.ndarray, grid: ScoringGrid,
                         weights: np.ndarray) -> np.ndarray:
    """Half-sample scores turned into draws of the score at the task's size, centred on it.

        theta_r = theta_hat + c (theta*_r - median(theta*))

    with c from :func:`half_sample_spread`, kept inside the score's range (``bounds``: a mutual
    information is not negative, a Kendall coefficient not below -1). The spread is the
    half-samples'; the centre is the task's own score: a half-sample's score is shifted from it by
    what the smaller size does to the score (a mutual information estimated from fewer pairs is
    larger; a minimum over sets estimated more noisily is smaller), a shift the task's score has at
    its own size, so the interval is about the expected score of a task of this size, and holds the
    point estimate.
    """
    finite = np.isfinite(resampled)
    if not finite.any():
        return resampled
    c = half_sample_spread(ranker, grid, weights)
    low, high = getattr(ranker, "bounds", (-math.inf, math.inf))
    return np.clip(value + c * (resampled - np.median(resampled[finite])), low, high)


RANKERS: dict[str, Ranker] = {
    r.name: r for r in (CompetitionCMI(), JiangCMI(size=0), JiangCMI(size=1), JiangCMI(size=2),
                        KendallTau(), GranulatedKendall(), RobustSignError())
}
"""Every built-in ranker by name."""


def get_ranker(name: str) -> Ranker:
    """The ranker called ``name``.

    Raises:
        PGDLError: unknown name (the message lists the known ones).
    """
    try:
        return RANKERS[name]
    except KeyError:
        raise PGDLError(f"unknown ranker {name!r}; choose from {', '.join(RANKERS)}") from None


def bootstrap_ci_grid(ranker: Ranker, values: np.ndarray, grid: ScoringGrid, *,
                      n_resamples: int = 1000, confidence: float = 0.95,
                      seed: int = 0) -> tuple[float, float]:
    """:func:`bootstrap_ci` on an array of values and a prepared grid."""
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    rng = np.random.default_rng(seed)
    n = grid.n_models
    scores = np.empty(n_resamples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CMIWarning)
        for r in range(n_resamples):
            idx = rng.integers(0, n, size=n)
            scores[r] = ranker.score_grid(values[idx], grid.take(idx))
    scores = scores[~np.isnan(scores)]
    if not len(scores):
        return math.nan, math.nan
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(scores, [alpha, 1.0 - alpha])
    return float(low), float(high)


def bootstrap_ci(ranker: Ranker, values: Mapping[Any, Any], model_specs: Mapping[str, Any], *,
                 n_resamples: int = 1000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of a ranker's score, over models.

    Draw ``n_resamples`` samples of the n models with replacement (``numpy.random.default_rng
    (seed)``), score each, and return the (1 - c)/2 and (1 + c)/2 quantiles of the scores
    (resamples scoring NaN left out; (NaN, NaN) if all do). The same seed gives the same
    interval. :class:`scoring.cmi.CMIWarning` is silenced inside (resamples leave cells empty).

    Args:
        ranker: a ranker (e.g. ``RANKERS["kendall_tau"]``).
        values: model id -> measure value.
        model_specs: the task's ``model_configs.json`` mapping.
        n_resamples: number of bootstrap samples.
        confidence: c, the coverage of the interval.
        seed: seed of the generator.

    Returns:
        (low, high).
    """
    array, grid = prepare_values(values, model_specs)
    return bootstrap_ci_grid(ranker, array, grid, n_resamples=n_resamples,
                             confidence=confidence, seed=seed)
