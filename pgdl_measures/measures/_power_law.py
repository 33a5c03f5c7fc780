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


#: WeightWatcher 0.7.7 fits spectra of fewer eigenvalues than this with its small-sample rule
#: (``WW_powerlaw.SMALL_N_CUTOFF``); below it a power-law tail is hardly identifiable.
SMALL_SAMPLE = 20
#: the fewest eigenvalues WeightWatcher 0.7.7's small-sample rule keeps in a tail (``k_min``)
SMALL_SAMPLE_MIN_TAIL = 8


def fit_power_law_weightwatcher(x: np.ndarray) -> PowerLawFit:
    """Fit a power-law tail to positive data `x` as WeightWatcher 0.7.7 does (its default,
    ``pl_package="ww"``; ``WW_powerlaw.py``, class ``WWFit``).

    With ``n`` sorted values ``x_(1) <= ... <= x_(n)``, every ``x_(i)``, ``i < n``, is a
    candidate ``x_min``, its tail the ``m = n - i + 1`` values from it on, and
    ``L = sum_tail log(x / x_min)``:

    * ``n >= SMALL_SAMPLE`` (20): ``alpha = 1 + m / L`` (the MLE, :func:`alpha_mle`), and the
      candidate minimising the one-sided KS distance ``max_k |P(x_k) - (k - 1) / m|`` (``P``
      the fitted CDF, ``k`` the rank in the tail) wins; a candidate with ``alpha <= 1`` counts
      as distance 1.
    * ``n < SMALL_SAMPLE``: only tails of ``SMALL_SAMPLE_MIN_TAIL`` (8) or more values count,
      with ``alpha = 1 + (m - 1) / L`` (bias-corrected, ``WWFit.fit_powerlaw_smallN``), chosen
      by the same KS distance (``WWFit.__init__`` takes the minimum of the distances, so the
      small-sample objective ``D - 0.868 / sqrt(m)`` computed there does not decide); when no
      candidate qualifies, the whole sample is the tail.

    Unlike :func:`fit_power_law` (Clauset et al.'s two-sided KS, as the ``powerlaw`` package),
    the candidates include repeated values and the KS distance is one-sided.

    Raises:
        ValueError: fewer than 2 positive values, or (fewer than 20) all of them equal.
    """
    data = np.sort(np.asarray(x, np.float64).ravel())
    data = data[data > 0]
    n = len(data)
    if n < 2:
        raise ValueError(f"a power-law fit needs at least 2 positive values, got {n}")
    logs = np.log(data)
    small = n < SMALL_SAMPLE
    best: PowerLawFit | None = None
    for i in range(n - 1):
        m = n - i
        spread = float(np.sum(logs[i:]) - m * logs[i])
        if small:
            if m < SMALL_SAMPLE_MIN_TAIL or spread <= 1e-12:
                continue
            alpha = 1.0 + (m - 1.0) / spread
        else:
            with np.errstate(divide="ignore"):
                alpha = 1.0 + m / spread if spread > 0 else np.inf
        ks = _one_sided_ks(data[i:], alpha) if alpha > 1 else 1.0
        if small and alpha <= 1:
            continue
        if best is None or ks < best.ks:
            best = PowerLawFit(float(alpha), float(data[i]), float(ks), m)
    if best is None:
        spread = float(np.sum(logs) - n * logs[0])
        if spread <= 1e-12:
            raise ValueError("no power-law fit: the values are all equal")
        alpha = 1.0 + (n - 1.0) / spread
        best = PowerLawFit(float(alpha), float(data[0]), _one_sided_ks(data, alpha), n)
    return best


def _one_sided_ks(tail: np.ndarray, alpha: float) -> float:
    """``max_k |1 - (x_k / x_min)^(1 - alpha) - (k - 1) / m|`` over a sorted tail of ``m`` values
    (the lower side of each step of the empirical CDF only, as WeightWatcher measures it)."""
    m = len(tail)
    with np.errstate(over="ignore", invalid="ignore"):
        fitted = 1.0 - (tail / tail[0]) ** (1.0 - alpha)
    return float(np.max(np.abs(fitted - np.arange(m) / m)))
