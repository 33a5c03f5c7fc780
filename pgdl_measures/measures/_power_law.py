"""Power-law fits of eigenvalue tails (continuous maximum likelihood with the Kolmogorov-Smirnov
choice of the tail's start), as Martin & Mahoney fit layer spectra.

References:
    A. Clauset, C. R. Shalizi, M. E. J. Newman. "Power-law distributions in empirical data",
    SIAM Review 51(4), 2009: eq. (3.1) (the MLE, a Hill estimator) and Sec. 3.3 (x_min by
    minimising the KS distance).
    B. M. Hill. "A simple general approach to inference about the tail of a distribution",
    Annals of Statistics 3(5), 1975.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PowerLawFit:
    """A fitted tail ``p(x) ~ x^(-alpha)`` for ``x >= xmin``.

    Attributes:
        alpha: the exponent.
        xmin: where the tail starts.
        ks: the Kolmogorov-Smirnov distance between the tail's data and the fit.
        n_tail: the number of data points in the tail.
    """

    alpha: float
    xmin: float
    ks: float
    n_tail: int


def alpha_mle(x: np.ndarray, xmin: float) -> float:
    """The continuous power-law MLE of the data ``x >= xmin``: ``1 + n / sum_i log(x_i / xmin)``
    (Clauset et al. eq. 3.1). ``inf`` when every point equals ``xmin``."""
    tail = np.asarray(x, np.float64)
    tail = tail[tail >= xmin]
    logs = np.sum(np.log(tail / xmin))
    return float(1.0 + len(tail) / logs) if logs > 0 else float("inf")


def ks_distance(x: np.ndarray, xmin: float, alpha: float) -> float:
    """``max_x |S(x) - P(x)|`` over the tail ``x >= xmin``: ``S`` its empirical CDF, ``P(x) = 1 -
    (x / xmin)^(1 - alpha)`` the fitted one (both sides of each step of ``S`` are checked)."""
    tail = np.sort(np.asarray(x, np.float64)[np.asarray(x) >= xmin])
    n = len(tail)
    fitted = 1.0 - (tail / xmin) ** (1.0 - alpha)
    above = np.arange(1, n + 1) / n
    below = np.arange(0, n) / n
    return float(max(np.max(np.abs(above - fitted)), np.max(np.abs(below - fitted))))


def fit_power_law(x: np.ndarray, *, xmin: float | None = None, min_tail: int = 2) -> PowerLawFit:
    """Fit a power-law tail to positive data ``x``.

    With `xmin` given, only the exponent is fitted (:func:`alpha_mle`). Otherwise every
    distinct data value leaving at least `min_tail` points in the tail is tried as ``xmin``, and
    the one minimising the KS distance (:func:`ks_distance`) is kept (Clauset et al. Sec. 3.3).

    Raises:
        ValueError: fewer than `min_tail` positive values, or no candidate with a finite fit.
    """
    data = np.sort(np.asarray(x, np.float64).ravel())
    data = data[data > 0]
    if len(data) < max(min_tail, 2):
        raise ValueError(f"a power-law fit needs at least {max(min_tail, 2)} positive values, got {len(data)}")
    if xmin is not None:
        alpha = alpha_mle(data, xmin)
        return PowerLawFit(alpha, float(xmin), ks_distance(data, xmin, alpha), int(np.sum(data >= xmin)))
    best = None
    candidates = np.unique(data[:len(data) - max(min_tail, 2) + 1])
    for candidate in candidates:
        alpha = alpha_mle(data, candidate)
        if not np.isfinite(alpha):
            continue
        ks = ks_distance(data, candidate, alpha)
        if best is None or ks < best.ks:
            best = PowerLawFit(alpha, float(candidate), ks, int(np.sum(data >= candidate)))
    if best is None:
        raise ValueError("no candidate x_min gives a finite power-law fit (the values are all equal)")
    return best
