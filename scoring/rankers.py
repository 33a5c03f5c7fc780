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

import math
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from scoring.cmi import (
    CMIWarning,
    cmi_breakdown_grid,
    competition_min,
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


def _present_groups(gid: np.ndarray) -> tuple[np.ndarray, int]:
    """Group ids renumbered 0..k-1 over the groups that have a model, and k."""
    present, inverse = np.unique(np.asarray(gid), return_inverse=True)
    return inverse.ravel().astype(np.intp), len(present)


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
    # changes nothing but the work, which no longer grows with the product of value counts.
    partitions = [_present_groups(gid) for gid, _ in partitions]
    counts = pair_counts_by_group(grid.gaps, values, partitions, ("gt", "gt_mt", "gt_ml"))
    return {key: _normalized_cmi(_jiang_cells(block)) for key, block in zip(sets, counts)}


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
    codes = _value_index(grid)
    out = {}
    for h, name in enumerate(grid.hparams):
        others = np.delete(codes, h, axis=1)
        if others.shape[1]:
            _, gid = np.unique(others, axis=0, return_inverse=True)
            gid = gid.ravel()
        else:
            gid = np.zeros(grid.n_models, dtype=np.intp)
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

    def score_grid(self, values: np.ndarray, grid: ScoringGrid) -> float:
        """The score from an array of values in grid order."""
        raise NotImplementedError

    def breakdown_grid(self, values: np.ndarray, grid: ScoringGrid) -> dict[tuple[str, ...], float]:
        """Per conditioning set (or hyper-parameter), the value the score is made of."""
        return {}

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
    reference = "Jiang et al., NeurIPS 2020 PGDL competition (arXiv:2012.07976)"

    def score_grid(self, values, grid):
        return conditional_mutual_information_grid(values, grid)

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

    def selected_set(self, breakdown):
        return _nan_argmin(breakdown)


class KendallTau(Ranker):
    """Kendall's tau (tau-a) between measure and gap over all pairs (:func:`kendall_tau_grid`)."""

    name = "kendall_tau"
    description = "Kendall's rank correlation between measure and gap over all pairs of models"
    sign_dependent = True
    reference = JIANG_2019 + ", eq. (3)"

    def score_grid(self, values, grid):
        return kendall_tau_grid(values, grid)


class GranulatedKendall(Ranker):
    """Jiang et al.'s granulated Kendall coefficient (:func:`granulated_kendall_grid`)."""

    name = "granulated_kendall"
    description = "mean over hyper-parameters of Kendall's tau among models differing only in it"
    sign_dependent = True
    reference = JIANG_2019 + ", eq. (4)"

    def score_grid(self, values, grid):
        return granulated_kendall_grid(values, grid)

    def breakdown_grid(self, values, grid):
        return granulated_kendall_breakdown_grid(values, grid)


RANKERS: dict[str, Ranker] = {
    r.name: r for r in (CompetitionCMI(), JiangCMI(size=0), JiangCMI(size=1), JiangCMI(size=2),
                        KendallTau(), GranulatedKendall())
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
