"""Dziugaite et al.'s robust sign-error: how a measure orders the gaps of coupled networks.

The math of :class:`scoring.rankers.RobustSignError` (which checks the grid and wires these in):
the sign-error in every environment of models that differ in one hyper-parameter, for a batch of
weighted resamples (:mod:`scoring.resampling`), its worst case and its distribution.
"""

from __future__ import annotations

import math

import numpy as np

from scoring import resampling
from scoring.predictions import ScoringGrid

QUANTILE_PREFIX = "environments: "
"""Breakdown keys of :class:`scoring.rankers.RobustSignError` that hold the distribution over environments."""

DZIUGAITE_2020 = ('Dziugaite, Drouin, Neal, Rajkumar, Caballero, Wang, Mitliagkas, Roy, "In search of robust '
                  'measures of generalization", NeurIPS 2020 (arXiv:2010.11924), Sec. 3-4')


def environment_sign_errors(values: np.ndarray, grid: ScoringGrid, weights: np.ndarray, *,
                            tolerance: float = 0.0, gaps: np.ndarray | None = None) -> list[np.ndarray]:
    """The sign-error of the measure in every environment of coupled networks, per resample.

    An environment e = (h, theta_{-h}) holds the models that share every hyper-parameter but h
    (Dziugaite et al.'s coupled networks: pairs that differ in one hyper-parameter). Its
    sign-error is the mean over its pairs (i, j) whose gaps differ by more than `tolerance` of

        SE(i, j) = (1 - sign(mu_i - mu_j) sign(g_i - g_j)) / 2

    (1 when the measure orders the two gaps wrongly, 1/2 when it ties them, 0 when right). Pairs
    whose gaps are within `tolerance` are left out, as the paper leaves out pairs whose gap
    difference is within its noise: a PGDL task has one seed per configuration and no noise
    estimate, so the default keeps every pair with different gaps.

    Args:
        values: (n,) or (R, n) measure values.
        grid: the task's grid.
        weights: (R, n) whole numbers (resample r holds model i w_ri times).
        tolerance: the smallest gap difference a pair counts with.

    Returns:
        Per hyper-parameter h (grid order), an (R, environments of h) array, NaN for an
        environment with no pair left.
    """
    values = np.asarray(values, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    r_total, n = weights.shape
    groups = [resampling.WithinGroupPairs(resampling.others_groups(grid, h)[0]) for h in range(len(grid.hparams))]
    gaps = grid.gaps if gaps is None else np.asarray(gaps, dtype=np.float64)
    out = [np.empty((r_total, g.k)) for g in groups]
    for sl in resampling.chunks(r_total, n):
        w = weights[sl]
        y = values[sl] if values.ndim == 2 else values
        g_ = gaps[sl] if gaps.ndim == 2 else gaps
        gap_diff = g_[..., :, None] - g_[..., None, :]
        kept = (np.abs(gap_diff) > tolerance).astype(np.float64)
        error = 0.5 * (kept - np.sign(gap_diff) * kept * resampling.signs(y))
        for h, g in enumerate(groups):
            num = g.sums(error, w)
            den = g.sums(kept, w)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[h][sl] = np.where(den > 0, num / den, np.nan)
    return out


def worst(errors: list[np.ndarray]) -> np.ndarray:
    """Per resample, the largest finite sign-error over the environments of every array (the
    robust sign-error), NaN where there is none."""
    stacked = np.concatenate(errors, axis=1) if errors else np.empty((0, 0))
    finite = np.isfinite(stacked)
    return np.where(finite.any(axis=1), np.max(np.where(finite, stacked, -np.inf), axis=1), math.nan)


def environment_quantiles(errors: list[np.ndarray], quantiles: tuple[float, ...] = (0.5, 0.75, 0.9, 1.0)
                          ) -> dict[str, float]:
    """The distribution over environments of the sign-errors of one resample (row 0 of each array):
    its quantiles (1.0 is the robust sign-error) and the number of environments with a pair."""
    every = np.concatenate([e[0] for e in errors]) if errors else np.empty(0)
    every = every[np.isfinite(every)]
    out = {f"q{q:g}": (float(np.quantile(every, q)) if len(every) else math.nan) for q in quantiles}
    out["environments"] = float(len(every))
    return out
