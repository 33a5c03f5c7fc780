"""The PGDL competition's conditional mutual information (CMI), reproduced and vectorized.

The competition (NeurIPS 2020, "Predicting Generalization in Deep Learning") ranked a
complexity measure mu by how much knowing which of two models has the larger measure tells
about which has the larger generalization gap g = train_acc - test_acc, conditioned on the
values of two hyper-parameters. This module reproduces its scoring program's arithmetic to the
last bit, quirks included (they are listed in :func:`conditional_mutual_information`), with
numpy over groups of models instead of Python loops over pairs; ``scoring/_reference.py``
holds the slow literal version the tests and ``bench/cmi.py`` check it against.

Better-behaved rankers live in :mod:`scoring.rankers`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from scoring.errors import PGDLError
from scoring.predictions import (
    EXCEEDED,
    ScoringGrid,
    align_prediction,
    scoring_grid,
)
from scoring.predictions import (
    check_grid as _check_grid,
)
from scoring.resampling import IdentityCache, chunks, greater, group_pair_sums_many, one_hot

_EPS = 1e-12  # the competition's guard inside log2 in its entropy
_GT_CACHE = IdentityCache()  # the gap's pair counts of the last resamples: the same for every measure

PAIR_STATS = ("gt", "mt", "gt_mt", "gt_ml")


class CMIWarning(UserWarning):
    """A quirk of the competition's score changed the result (NaN set, skipped pairs, ...)."""


# ----------------------------------------------------------------------------- pair counting


def _dominance_by_group(x: np.ndarray, y: np.ndarray, indicator: np.ndarray) -> np.ndarray:
    """R[i, c] = #{j : x_j < x_i and y_j < y_i and indicator[j, c] = 1}, by divide and conquer.

    Models are sorted by x (ties by decreasing y, so a tie in x is never counted); at level l
    of a bottom-up merge, every model i in the right half of a block of 2^(l+1) consecutive
    models counts, per column, the models j of the left half with a smaller y rank (one
    searchsorted into cumulative column counts). Each pair j before i is met at exactly one
    level: O(n log n) searches and O(n k log n) additions, exact (float64 counts).
    """
    n, k = indicator.shape
    dtype = indicator.dtype  # float32 is exact for counts below 2^24
    result = np.zeros((n, k), dtype=dtype)
    if n < 2:
        return result
    order = np.lexsort((-y, x))
    y_rank = np.unique(y, return_inverse=True)[1].ravel()[order]
    span = np.int64(y_rank.max()) + 1
    ind = indicator[order]
    counts = np.zeros((n, k), dtype=dtype)
    pos = np.arange(n, dtype=np.int64)
    width = 1
    while width < n:
        block = pos // (2 * width)
        is_left = (pos % (2 * width)) < width
        left, right = np.flatnonzero(is_left), np.flatnonzero(~is_left)
        if len(right):
            keys = block[left] * span + y_rank[left]
            by_key = np.argsort(keys, kind="stable")
            keys = keys[by_key]
            cumulative = np.zeros((len(left) + 1, k), dtype=dtype)
            np.cumsum(ind[left[by_key]], axis=0, out=cumulative[1:])
            upto = np.searchsorted(keys, block[right] * span + y_rank[right], side="left")
            start = np.searchsorted(keys, block[right] * span, side="left")
            counts[right] += cumulative[upto] - cumulative[start]
        width *= 2
    result[order] = counts
    return result


def pair_counts_by_group(x: np.ndarray, y: np.ndarray,
                         partitions: Sequence[tuple[np.ndarray, int]],
                         stats: Iterable[str] = ("gt", "mt", "gt_mt"),
                         ) -> list[dict[str, np.ndarray]]:
    """Count ordered pairs of models (i, j) by the group of i and the group of j.

    For a partition of the models into groups and groups A, B (self-pairs i = j included,
    where every strict comparison is false):

        size[A]     = |A|
        gt[A, B]    = #{(i, j) in A x B : x_i > x_j}
        mt[A, B]    = #{(i, j) in A x B : y_i > y_j}
        gt_mt[A, B] = #{(i, j) in A x B : x_i > x_j and y_i > y_j}
        gt_ml[A, B] = #{(i, j) in A x B : x_i > x_j and y_i < y_j}

    Per model i and group B the one-variable counts come from one sort and a searchsorted,
    the two-variable (dominance) counts from a divide and conquer over the models sorted by x
    (O(n K log n) for K groups in all partitions, no n x n matrix); then the rows are summed
    by the group of i. All counts are exact.

    Args:
        x: first variable per model (the generalization gap), shape (n,).
        y: second variable per model (the measure), shape (n,).
        partitions: (group id per model in [0, n_groups), n_groups) for each partition.
        stats: which of ``PAIR_STATS`` to count.

    Returns:
        Per partition, a dict with "size" (n_groups,) and each requested stat
        (n_groups, n_groups), all float64 holding exact integers.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    stats = tuple(stats)
    unknown = set(stats) - set(PAIR_STATS)
    if unknown:
        raise ValueError(f"unknown pair statistics {sorted(unknown)}; choose from {PAIR_STATS}")
    n = len(x)
    ks = [int(k) for _, k in partitions]
    offsets = np.concatenate([[0], np.cumsum(ks)]).astype(np.intp)
    total_k = int(offsets[-1])
    dtype = np.float32 if n < 2 ** 24 else np.float64  # per-model counts (<= n) stay exact
    indicator = np.zeros((n, total_k), dtype=dtype)
    rows = np.arange(n)
    for (gid, _), off in zip(partitions, offsets[:-1]):
        indicator[rows, np.asarray(gid, dtype=np.intp) + off] = 1.0
    per_model: dict[str, np.ndarray] = {}
    for stat, v in (("gt", x), ("mt", y)):
        if stat in stats:
            order = np.argsort(v, kind="stable")
            cumulative = np.zeros((n + 1, total_k), dtype=dtype)
            np.cumsum(indicator[order], axis=0, out=cumulative[1:])
            per_model[stat] = cumulative[np.searchsorted(v[order], v, side="left")]
    if "gt_mt" in stats:
        per_model["gt_mt"] = _dominance_by_group(x, y, indicator)
    if "gt_ml" in stats:
        per_model["gt_ml"] = _dominance_by_group(x, -y, indicator)
    result = []
    for (gid, k), off in zip(partitions, offsets[:-1]):
        gid = np.asarray(gid, dtype=np.intp)
        by_group = np.argsort(gid, kind="stable")
        present, starts = np.unique(gid[by_group], return_index=True)
        block = {"size": np.bincount(gid, minlength=k).astype(np.float64)}
        for stat in stats:
            summed = np.zeros((k, k), dtype=np.float64)
            if len(present):  # float64 sums of the exact per-model counts, by group of i
                rows_of = per_model[stat][by_group, off:off + k].astype(np.float64)
                summed[present] = np.add.reduceat(rows_of, starts, axis=0)
            block[stat] = summed
        result.append(block)
    return result


# ----------------------------------------------------------------------------- the competition


def competition_cell_terms(t00: np.ndarray, t01: np.ndarray, t10: np.ndarray,
                           t11: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per cell, the competition's mutual information and gap entropy from its 2x2 table.

    With t_ab the count of ordered pairs in the cell where a = "gap larger" (0 yes, 1 no) and
    b = "measure larger" (0 yes, 1 no), n = sum t, r_a = t_a0 + t_a1, c_b = t_0b + t_1b:

        MI = sum_{a,b : t_ab > 0} (t_ab/n) log2( (t_ab/n) / ((r_a/n)(c_b/n)) )   (in a,b order)
        H  = -sum_a (r_a/R) log2(r_a/R + 1e-12),   R = r_0 + r_1

    An empty cell (n = 0) gives NaN for both, as in the competition.

    Args:
        t00, t01, t10, t11: counts per cell (float64 arrays of one shape).

    Returns:
        (MI, H) arrays, base-2.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        total = t00 + t01 + t10 + t11
        r0, r1 = t00 + t01, t10 + t11
        c0, c1 = t00 + t10, t01 + t11
        mi = np.zeros_like(total)
        for count, row, col in ((t00, r0, c0), (t01, r0, c1), (t10, r1, c0), (t11, r1, c1)):
            joint = count / total
            term = joint * np.log2(joint / ((row / total) * (col / total)))
            mi = mi + np.where(joint == 0, 0.0, term)
        rows = r0 + r1
        p0, p1 = r0 / rows, r1 / rows
        entropy = -(p0 * np.log2(p0 + _EPS) + p1 * np.log2(p1 + _EPS))
    return mi, entropy


def _cell_keys(possible_a: Sequence[str], possible_b: Sequence[str]) -> tuple[dict[str, int], int]:
    """The competition's cell index: key string -> column; later duplicates win."""
    pairs_a = [v + w for v in possible_a for w in possible_a]
    pairs_b = [v + w for v in possible_b for w in possible_b]
    keys = [p + q for p in pairs_a for q in pairs_b]
    return {key: col for col, key in enumerate(keys)}, len(keys)


def set_cell_columns(grid: ScoringGrid, h1: int, h2: int) -> tuple[np.ndarray, int, int]:
    """The competition's cell of every pair of groups of the conditioning set (h1, h2).

    Models are grouped by ``(str_codes[:, a], str_codes[:, b])`` with a = min(h1, h2),
    b = max(h1, h2) (group ``ga = code_a * n_classes_b + code_b``); the pair of groups (ga, gb)
    falls in the cell keyed ``str(h1 of ga) + str(h1 of gb) + str(h2 of ga) + str(h2 of gb)``
    among the keys built from the possible values (:func:`_cell_keys`).

    Returns:
        (column, n_cells, n_keys): column[ga, gb] the cell's index (-1: no cell, the pair is
        skipped), the number of cells, and the number of distinct keys (fewer than cells when
        keys collide).
    """
    a, b = min(h1, h2), max(h1, h2)
    kb = len(grid.str_classes[b])
    strs = {a: grid.str_classes[a], b: grid.str_classes[b]}
    key_of, n_cells = _cell_keys(grid.possible_strs[h1], grid.possible_strs[h2])
    k = len(grid.str_classes[a]) * kb
    column = np.empty((k, k), dtype=np.intp)
    for ga in range(k):
        va = {a: ga // kb, b: ga % kb}
        for gb in range(k):
            vb = {a: gb // kb, b: gb % kb}
            key = strs[h1][va[h1]] + strs[h1][vb[h1]] + strs[h2][va[h2]] + strs[h2][vb[h2]]
            column[ga, gb] = key_of.get(key, -1)
    return column, n_cells, len(key_of)


def _competition_set_values(values: np.ndarray, grid: ScoringGrid) -> tuple[dict, dict]:
    """Per ordered pair of hyper-parameters, the competition's value, plus diagnostics."""
    names = grid.hparams
    n_h = len(names)
    diag = {"empty": {}, "skipped": {}, "collisions": {}, "culprits": {}, "empty_at_least": set()}
    if n_h < 2:
        return {}, diag
    n_classes = [len(c) for c in grid.str_classes]
    partitions, index = [], {}
    for a in range(n_h):
        for b in range(a + 1, n_h):
            gid = grid.str_codes[:, a] * n_classes[b] + grid.str_codes[:, b]
            index[(a, b)] = len(partitions)
            partitions.append((gid, n_classes[a] * n_classes[b]))
    counts = pair_counts_by_group(grid.gaps, values, partitions, ("gt", "mt", "gt_mt"))
    for h, name in enumerate(names):
        known = set(grid.possible_strs[h])
        bad_classes = [c for c, s in enumerate(grid.str_classes[h]) if s not in known]
        if bad_classes:
            rows = np.flatnonzero(np.isin(grid.str_codes[:, h], bad_classes))
            if len(rows):
                diag["culprits"][name] = list(dict.fromkeys(grid.model_ids[r] for r in rows))
    breakdown: dict[tuple[str, str], float] = {}
    for h1 in range(n_h):
        for h2 in range(n_h):
            if h1 == h2:
                continue
            a, b = min(h1, h2), max(h1, h2)
            block = counts[index[(a, b)]]
            set_key = (names[h1], names[h2])
            n_cells = (len(grid.possible_strs[h1]) * len(grid.possible_strs[h2])) ** 2
            if n_cells > grid.n_models ** 2:
                # More cells than ordered pairs of models: some cell is empty, so the mean over
                # cells, hence the value, is NaN whatever the pairs. Building the k1^2 k2^2 cell
                # keys would only cost time (10^4 per set for 10 values, far more for many).
                breakdown[set_key] = math.nan
                diag["empty"][set_key] = (n_cells - grid.n_models ** 2, n_cells)
                diag["empty_at_least"].add(set_key)
                continue
            column, n_cells, n_keys = set_cell_columns(grid, h1, h2)
            pairs = np.outer(block["size"], block["size"])
            used = column >= 0
            cols = column[used]

            def cell_sum(stat: np.ndarray, cols=cols, used=used, n_cells=n_cells) -> np.ndarray:
                return np.bincount(cols, weights=stat[used], minlength=n_cells)

            n_, g_, m_, gm_ = (cell_sum(pairs), cell_sum(block["gt"]), cell_sum(block["mt"]),
                               cell_sum(block["gt_mt"]))
            mi, entropy = competition_cell_terms(gm_, g_ - gm_, m_ - gm_, n_ - g_ - m_ + gm_)
            with np.errstate(divide="ignore", invalid="ignore"):
                mean_mi = np.cumsum(mi)[-1] / n_cells
                mean_h = np.cumsum(entropy)[-1] / n_cells
                value = mean_mi / mean_h
            key = set_key
            breakdown[key] = float(value)
            skipped = float(pairs[~used].sum())
            if skipped:
                diag["skipped"][key] = int(skipped)
            empty = int((n_ == 0).sum())
            if empty:
                diag["empty"][key] = (empty, n_cells)
            if n_keys < n_cells:
                diag["collisions"][key] = n_cells - n_keys
    return breakdown, diag


def competition_min(breakdown: Mapping[Any, float]) -> tuple[Any, float]:
    """The competition's running minimum over conditioning sets, and the set that gave it.

    The competition computed ``m = min(value, m)`` from ``m = inf`` over the sets in order.
    Python's ``min(a, b)`` returns ``a`` unless ``b < a``, so a NaN value replaces ``m`` and the
    next set's value replaces the NaN: the result depends on the order when a set is NaN.

    Args:
        breakdown: conditioning set -> value, in the competition's order (:func:`cmi_breakdown`).

    Returns:
        (set, value): the set whose value was returned (None if there are no sets) and the
        value (``inf`` when there are no sets).
    """
    best_key, best = None, math.inf
    for key, value in breakdown.items():
        if best < value:
            continue
        if not value == best:
            best_key = key
        best = value
    return best_key, float(best)


def _fmt_sets(sets: Iterable) -> str:
    sets = list(sets)
    shown = ", ".join(f"({a}, {b})" for a, b in sets[:4])
    return shown + (f" and {len(sets) - 4} more" if len(sets) > 4 else "")


def _warn(diag: dict, stacklevel: int = 3) -> None:
    if diag["collisions"]:
        warnings.warn(
            "cell keys collide (the competition keyed cells by concatenating str() of values, "
            "so distinct values can share a cell and leave others empty) in conditioning sets "
            + _fmt_sets(diag["collisions"]), CMIWarning, stacklevel=stacklevel)
    if diag["skipped"]:
        culprits = "; ".join(f"{h}: {', '.join(ids[:5])}" + (" ..." if len(ids) > 5 else "")
                             for h, ids in diag["culprits"].items()) or "none alone"
        total = sum(diag["skipped"].values())
        warnings.warn(
            f"{total} ordered pairs of models skipped, as the competition did silently, because "
            "str() of a current value matches no possible value's (models by hyper-parameter: "
            f"{culprits}) in conditioning sets {_fmt_sets(diag['skipped'])}",
            CMIWarning, stacklevel=stacklevel)
    if diag["empty"]:
        shown = list(diag["empty"].items())[:4]
        detail = ", ".join(f"({a}, {b}) {'>=' if (a, b) in diag['empty_at_least'] else ''}{e}/{n}"
                           for (a, b), (e, n) in shown)
        warnings.warn(
            f"conditioning sets with empty cells have the value NaN (empty/cells: {detail}"
            + (" ..." if len(diag["empty"]) > 4 else "") + ")", CMIWarning, stacklevel=stacklevel)


def cmi_breakdown_grid(values: np.ndarray, grid: ScoringGrid, *,
                       warn: bool = True) -> dict[tuple[str, str], float]:
    """:func:`cmi_breakdown` on a prepared grid and an array of measure values (grid order)."""
    breakdown, diag = _competition_set_values(np.asarray(values, dtype=np.float64), grid)
    if warn:
        _warn(diag)
    return breakdown


def conditional_mutual_information_grid(values: np.ndarray, grid: ScoringGrid, *,
                                        warn: bool = True) -> float:
    """:func:`conditional_mutual_information` on a prepared grid and an array of values."""
    breakdown, diag = _competition_set_values(np.asarray(values, dtype=np.float64), grid)
    key, value = competition_min(breakdown)
    if warn:
        _warn(diag)
        if not breakdown:
            warnings.warn("fewer than two hyper-parameters: no conditioning set, so the "
                          "competition's score is +inf", CMIWarning, stacklevel=2)
        elif any(math.isnan(v) for v in breakdown.values()):
            warnings.warn(
                f"some conditioning sets are NaN; the competition's running min over the sets in "
                f"order returned {value!r} (from set {key}), a result that depends on that order",
                CMIWarning, stacklevel=2)
    return value


def _prepare(prediction: Mapping[Any, Any], model_specs: Mapping[str, Any],
             check_grid: bool) -> tuple[np.ndarray, ScoringGrid]:
    if any(isinstance(v, str) and v == EXCEEDED for v in prediction.values()):
        raise PGDLError('the prediction holds "EXCEEDED": the competition scored the whole '
                        "submission 0 (see scoring.submission.score_submission)")
    grid = scoring_grid(model_specs)
    if check_grid:
        _check_grid(grid)
    return align_prediction(prediction, grid), grid


def cmi_breakdown(prediction: Mapping[Any, Any], model_specs: Mapping[str, Any], *,
                  check_grid: bool = True) -> dict[tuple[str, str], float]:
    """The competition's value of each conditioning set (h1, h2), in the competition's order.

    See :func:`conditional_mutual_information` for the formula; the task score is
    ``competition_min(cmi_breakdown(...))[1]``, and the set that gave it is the ``[0]``.

    Args:
        prediction: model id -> measure value.
        model_specs: the task's ``model_configs.json`` mapping.
        check_grid: require a complete and unique grid (as the competition did).

    Returns:
        (h1, h2) -> value, every ordered pair of distinct hyper-parameters.

    Raises:
        PGDLError: as :func:`conditional_mutual_information`.
    """
    values, grid = _prepare(prediction, model_specs, check_grid)
    return cmi_breakdown_grid(values, grid)


def conditional_mutual_information(prediction: Mapping[Any, Any], model_specs: Mapping[str, Any],
                                   *, check_grid: bool = True) -> float:
    """The PGDL competition's score of a task, reproduced exactly (quirks included).

    With g_i = train_acc_i - test_acc_i and mu_i the prediction of model i, every ordered pair
    of models (i, j), i = j included, gives X = [g_i > g_j] and Y = [mu_i > mu_j] (strict, so
    ties and self-pairs count as "not larger"). For every ordered pair of distinct
    hyper-parameters (h1, h2) of the first model, the pair falls in the cell

        u = str(h1_i) + str(h1_j) + str(h2_i) + str(h2_j)

    among the k1^2 k2^2 cells built the same way from the possible values (colliding strings
    share the last such cell; a pair whose key matches no cell is skipped). Then

        CMI(h1, h2) = [ (1/C) sum_u I_u(X; Y) ] / [ (1/C) sum_u H_u(X) ],   C = k1^2 k2^2

    with per-cell MI and entropy as in :func:`competition_cell_terms` (base 2, 1e-12 inside the
    entropy's log), and the score is ``min`` over the sets taken as the competition did
    (:func:`competition_min`: a NaN set, from an empty cell, is kept until the next set).
    Ids without "model" get the ``model_`` prefix (in the prediction too).

    Warns :class:`CMIWarning` when a quirk changes the result (empty cells, skipped pairs,
    colliding keys, fewer than two hyper-parameters).

    Args:
        prediction: model id -> measure value (finite numbers).
        model_specs: the task's ``model_configs.json`` mapping.
        check_grid: require a complete and unique grid (as the competition did).

    Returns:
        The task score (a fraction; the leaderboard showed 100 x the mean over tasks).

    Raises:
        PGDLError: malformed specs, an incomplete or duplicated grid, a prediction that does
            not cover exactly the task's models, a non-finite value, "EXCEEDED".

    References:
        Jiang et al., "NeurIPS 2020 Competition: Predicting Generalization in Deep Learning",
        arXiv:2012.07976, and the competition's scoring program (``mutual_information.py``).
    """
    values, grid = _prepare(prediction, model_specs, check_grid)
    return conditional_mutual_information_grid(values, grid)


def conditional_mutual_information_batch(values: np.ndarray, grid: ScoringGrid, weights: np.ndarray,
                                         gaps: np.ndarray | None = None) -> np.ndarray:
    """The competition's score of R weighted resamples of the task at once.

    Resample r holds model i ``weights[r, i]`` times (0 leaves it out): its score equals
    :func:`conditional_mutual_information_grid` on the grid resampled at those indices, bit for
    bit (the cell counts are sums of whole numbers, exact in float64, and the cell terms, means
    and running minimum are taken in the same order), without a loop over resamples.

    Args:
        values: measure value per model (grid order), shape (n,), or (R, n) one row per
            resample (a permutation of the values, say).
        grid: the task's grid.
        weights: (R, n) whole numbers.
        gaps: (R, n) gaps, one row per resample, instead of the grid's (simulations).

    Returns:
        (R,) scores.
    """

    values = np.asarray(values, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    r_total, n = weights.shape
    n_h = len(grid.hparams)
    if n_h < 2:
        return np.full(r_total, math.inf)
    n_classes = [len(c) for c in grid.str_classes]
    pairs_ab = [(a, b) for a in range(n_h) for b in range(a + 1, n_h)]
    groups = [one_hot(grid.str_codes[:, a] * n_classes[b] + grid.str_codes[:, b], n_classes[a] * n_classes[b])
              for a, b in pairs_ab]
    index = {ab: i for i, ab in enumerate(pairs_ab)}
    columns = {}
    gaps = grid.gaps if gaps is None else np.asarray(gaps, dtype=np.float64)
    totals = weights.sum(axis=1)
    scores = np.empty(r_total)
    for sl in chunks(r_total, n):
        w = weights[sl]
        r = w.shape[0]
        y = values[sl] if values.ndim == 2 else values
        g = gaps[sl] if gaps.ndim == 2 else gaps
        gt_pair = greater(g)
        mt_pair = greater(y)
        sizes = [w @ g for g in groups]
        gt = _GT_CACHE.get((grid, weights, gaps, sl.start),
                           lambda gt_pair=gt_pair, w=w: group_pair_sums_many(gt_pair, w, groups))
        mt = group_pair_sums_many(mt_pair, w, groups)
        gt_mt = group_pair_sums_many(gt_pair * mt_pair, w, groups)
        best = np.full(r, math.inf)
        for h1 in range(n_h):
            for h2 in range(n_h):
                if h1 == h2:
                    continue
                i = index[(min(h1, h2), max(h1, h2))]
                n_cells = (len(grid.possible_strs[h1]) * len(grid.possible_strs[h2])) ** 2
                value = np.full(r, math.nan)
                ok = n_cells <= totals[sl] ** 2
                if ok.any():
                    if (h1, h2) not in columns:
                        column, n_cells, _ = set_cell_columns(grid, h1, h2)
                        used = (column >= 0).ravel()
                        columns[(h1, h2)] = (used, column.ravel()[used], n_cells)
                    used, cols, n_cells = columns[(h1, h2)]
                    offsets = (cols[None, :] + n_cells * np.arange(r)[:, None]).ravel()

                    def cell_sum(stat: np.ndarray, r=r, used=used, offsets=offsets, n_cells=n_cells) -> np.ndarray:
                        flat = stat.reshape(r, -1)[:, used].ravel()
                        return np.bincount(offsets, weights=flat, minlength=r * n_cells).reshape(r, n_cells)

                    pairs = sizes[i][:, :, None] * sizes[i][:, None, :]
                    n_, g_, m_, gm_ = (cell_sum(pairs), cell_sum(gt[i]), cell_sum(mt[i]), cell_sum(gt_mt[i]))
                    mi, entropy = competition_cell_terms(gm_, g_ - gm_, m_ - gm_, n_ - g_ - m_ + gm_)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        computed = (np.cumsum(mi, axis=1)[:, -1] / n_cells) / (np.cumsum(entropy, axis=1)[:, -1] / n_cells)
                    value = np.where(ok, computed, math.nan)
                best = np.where(best < value, best, value)  # competition_min: a NaN replaces, then is replaced
        scores[sl] = best
    return scores
