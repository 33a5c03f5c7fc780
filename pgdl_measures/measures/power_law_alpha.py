"""Heavy-tailed self-regularization (Martin & Mahoney): the power-law exponent alpha of the
layers' eigenvalue spectra, plain and weighted (data-free), as WeightWatcher computes them.

Conventions. WeightWatcher 0.7.7 (the authors' maintained tool, ``weightwatcher.py``,
``WeightWatcher.combined_eigenvalues`` with its default ``pool=True``) gives each layer one
spectrum: a convolution kernel ``[k_1, ..., c_in, c_out]`` is cut into its ``k_1 ... k_m``
matrices ``[c_in, c_out]`` and their eigenvalues are pooled; the tail is then fitted by
:func:`_power_law.fit_power_law_weightwatcher`. That is ``power_law_alpha`` and
``weighted_power_law_alpha``. ``power_law_alpha_sliced`` keeps the convention of WeightWatcher
0.2x (``ww2x=True``, now ``pool=False``): every kernel offset is a matrix of its own, fitted by
Clauset et al.'s method (:func:`_power_law.fit_power_law`).

Small spectra. A layer of ``M`` eigenvalues (``M = min(c_in, c_out)`` times the kernel offsets)
gives a tail fit from ``M`` points; WeightWatcher fits those with fewer than 20 by a
bias-corrected small-sample rule and skips those with fewer than 8 (its ``min_evals``). On small
networks (a 3x3 convolution with one input channel: 9 eigenvalues; a Dense layer with 10
outputs: 10) such a fit says little about a heavy tail, and its alpha is mostly noise: the
measures warn (:class:`SmallSpectrumWarning`) when a layer they average has fewer than
:data:`_power_law.SMALL_SAMPLE` eigenvalues. By default they average every layer that admits a
fit (``min_eigenvalues=2``), so that a small network still gets a (marked) value;
``min_eigenvalues=8`` keeps WeightWatcher's layer set exactly, and refuses a model none of whose
layers has 8.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np

from pgdl_measures.errors import PGDLError
from pgdl_measures.measures import _norms
from pgdl_measures.measures._power_law import SMALL_SAMPLE, fit_power_law, fit_power_law_weightwatcher
from pgdl_measures.measures.base import Measure, validate_params
from pgdl_measures.params import POSITIVE_INT

#: eigenvalues at or below this are left out of a fit (WeightWatcher's ``EVALS_THRESH``)
EIGENVALUE_FLOOR = 1e-5


class SmallSpectrumWarning(UserWarning):
    """A layer's spectrum has too few eigenvalues for its power-law exponent to mean much."""


def layer_matrices(model) -> list[np.ndarray]:
    """The weight matrices Martin & Mahoney analyse, in layer order (float64): a Dense kernel
    ``[in, out]``; a convolution kernel ``[k_1, ..., c_in, c_out]`` as its ``k_1 ... k_m``
    matrices ``[c_in, c_out]``, one per kernel offset."""
    matrices = []
    for w in _norms.kernels(model):
        if w.ndim == 2:
            matrices.append(w)
        else:
            matrices.extend(w.reshape((-1,) + w.shape[-2:]))
    return matrices


def esd(w: np.ndarray) -> np.ndarray:
    """The empirical spectral density's support: the eigenvalues of ``W^T W`` (squared singular values)."""
    return np.linalg.svd(np.asarray(w, np.float64), compute_uv=False) ** 2


def layer_spectra(model) -> list[np.ndarray]:
    """One eigenvalue spectrum per layer with a kernel, in layer order, as WeightWatcher 0.7.7
    pools them (``pool=True``): the eigenvalues of ``W^T W`` of a Dense kernel, and those of all
    of a convolution kernel's ``[c_in, c_out]`` matrices (one per kernel offset) together, halved
    (WeightWatcher scales a pooled convolution's matrices by ``sqrt(1/2)``, its default
    ``conv2d_norm``, ``apply_normalize_Wmats``; alpha does not change, ``lambda_max`` does).
    Sorted ascending, zeros kept (float64)."""
    spectra = []
    for w in _norms.kernels(model):
        if w.ndim == 2:
            spectra.append(np.sort(esd(w)))
        else:
            spectra.append(np.sort(np.concatenate([esd(m) for m in w.reshape((-1,) + w.shape[-2:])])) / 2.0)
    return spectra


def pooled_alphas(model, min_eigenvalues: int) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha, lambda_max)`` of every layer spectrum (:func:`layer_spectra`) of at least
    `min_eigenvalues` eigenvalues (zeros counted, as WeightWatcher's ``min_evals``), fitted by
    :func:`_power_law.fit_power_law_weightwatcher` on the eigenvalues above
    :data:`EIGENVALUE_FLOOR`. Warns (:class:`SmallSpectrumWarning`) when a layer kept has fewer
    than :data:`_power_law.SMALL_SAMPLE` eigenvalues.

    Raises:
        PGDLError: no layer has enough eigenvalues for a fit.
    """
    alphas, peaks, small = [], [], []
    for index, eigenvalues in enumerate(layer_spectra(model)):
        if len(eigenvalues) < min_eigenvalues:
            continue
        kept = eigenvalues[eigenvalues > EIGENVALUE_FLOOR]
        try:
            alphas.append(fit_power_law_weightwatcher(kept).alpha)
        except ValueError:
            continue
        peaks.append(float(kept.max()))
        if len(eigenvalues) < SMALL_SAMPLE:
            small.append(f"layer {index}: {len(eigenvalues)}")
    if not alphas:
        raise PGDLError(f"model {model.name!r}: no layer has {min_eigenvalues} or more eigenvalues for a power-law fit")
    if small:
        warnings.warn(f"model {model.name!r}: power-law alpha fitted on fewer than {SMALL_SAMPLE} eigenvalues "
                      f"({', '.join(small)}); such a fit is mostly noise", SmallSpectrumWarning, stacklevel=2)
    return np.asarray(alphas), np.asarray(peaks)


def layer_alphas(matrices, min_eigenvalues: int) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha, lambda_max)`` of every matrix with at least `min_eigenvalues` positive
    eigenvalues whose spectrum admits a fit (see :func:`_power_law.fit_power_law`)."""
    alphas, peaks = [], []
    for w in matrices:
        eigenvalues = esd(w)
        eigenvalues = eigenvalues[eigenvalues > 0]
        if len(eigenvalues) < min_eigenvalues:
            continue
        try:
            fit = fit_power_law(eigenvalues)
        except ValueError:
            continue
        alphas.append(fit.alpha)
        peaks.append(float(eigenvalues.max()))
    if not alphas:
        raise PGDLError(f"no weight matrix has {min_eigenvalues} or more positive eigenvalues with a power-law fit")
    return np.asarray(alphas), np.asarray(peaks)


class PowerLawAlpha(Measure):
    """Mean power-law exponent of the layers' eigenvalue spectra, as WeightWatcher 0.7.7 computes it.

    For every layer with a kernel, the eigenvalues ``lambda`` of ``W^T W`` (a convolution's
    kernel offsets pooled into one spectrum, :func:`layer_spectra`) are fitted with a power-law
    tail ``p(lambda) ~ lambda^(-alpha)`` for ``lambda >= lambda_min``: ``alpha`` by maximum
    likelihood, ``lambda_min`` by the Kolmogorov-Smirnov distance, both as WeightWatcher's
    default fit (:func:`_power_law.fit_power_law_weightwatcher`)::

        power_law_alpha = (1/L) sum_l alpha_l

    over the ``L`` layers of at least `min_eigenvalues` eigenvalues. With ``min_eigenvalues=8``
    (or any layers of 8 or more) this is the mean of the ``alpha`` column of
    ``weightwatcher.WeightWatcher(model).analyze()``. Martin & Mahoney find
    heavier tails (smaller alpha, typically 2 to 4 in well-trained layers) in better-trained
    networks; larger values predict a larger gap. Data-free. A layer of fewer than 20
    eigenvalues raises a :class:`SmallSpectrumWarning` (see the module docstring).

    Args:
        min_eigenvalues: layers with fewer eigenvalues are skipped (WeightWatcher's
            ``min_evals`` is 8; the default 2 keeps every layer that admits a fit, marked by a
            :class:`SmallSpectrumWarning` below 20).

    Raises:
        PGDLError: no layer has `min_eigenvalues` eigenvalues.

    References:
        C. H. Martin, M. W. Mahoney. "Implicit self-regularization in deep neural networks:
        evidence from random matrix theory and implications for learning", JMLR 22 (2021),
        arXiv:1810.01075. WeightWatcher 0.7.7 (https://pypi.org/project/weightwatcher/0.7.7/),
        ``weightwatcher.py`` (``combined_eigenvalues``, ``fit_powerlaw``) and ``WW_powerlaw.py``.
    """

    name: ClassVar[str] = "power_law_alpha"
    revision: ClassVar[int] = 2  # the authors' computation; values of revision 1 are not reused
    summary: ClassVar[str] = ("Martin & Mahoney: mean power-law exponent alpha of the layers' eigenvalue spectra"
                              " (WeightWatcher 0.7.7)")
    direction: ClassVar[int] = 1
    needs_train_data: ClassVar[bool] = False
    needs_initial_weights: ClassVar[bool] = False
    reference: ClassVar[str] = ("Martin & Mahoney, 'Implicit self-regularization in deep neural networks', JMLR 2021, "
                                "arXiv:1810.01075: mean_l alpha_l, a layer's pooled ESD tail fitted as "
                                "WeightWatcher 0.7.7")

    @validate_params({"min_eigenvalues": POSITIVE_INT})
    def __init__(self, *, min_eigenvalues: int = 2):
        self.min_eigenvalues = min_eigenvalues

    def compute(self, trained) -> float:
        alphas, _ = pooled_alphas(trained.model, self.min_eigenvalues)
        return float(np.mean(alphas))


class WeightedPowerLawAlpha(PowerLawAlpha):
    """Martin & Mahoney's weighted alpha: the mean over layers of ``alpha_l log10 lambda_max,l``::

        weighted_power_law_alpha = (1/L) sum_l alpha_l log10(lambda_max,l)

    with ``alpha_l`` as in ``power_law_alpha`` and ``lambda_max,l`` the largest eigenvalue of the
    layer's spectrum (the squared spectral norm of its largest matrix), so it combines the
    tail's exponent with the layer's scale: WeightWatcher's ``alpha_weighted`` column, averaged.
    Smaller values went with better test accuracy across pretrained model families; larger
    values predict a larger gap. Data-free.

    Args:
        min_eigenvalues: layers with fewer eigenvalues are skipped.

    References:
        C. H. Martin, T. S. Peng, M. W. Mahoney. "Predicting trends in the quality of
        state-of-the-art neural networks without access to training or testing data", Nature
        Communications 12 (2021), arXiv:2002.06716: alpha-hat.
    """

    name: ClassVar[str] = "weighted_power_law_alpha"
    summary: ClassVar[str] = ("Martin & Mahoney: mean of alpha_l log10 lambda_max,l over the layers (alpha-hat,"
                              " WeightWatcher 0.7.7)")
    reference: ClassVar[str] = ("Martin, Peng & Mahoney, 'Predicting trends in the quality of state-of-the-art neural "
                                "networks without access to training or testing data', Nat. Commun. 2021, "
                                "arXiv:2002.06716: mean_l alpha_l log10 lambda_max,l")

    def compute(self, trained) -> float:
        alphas, peaks = pooled_alphas(trained.model, self.min_eigenvalues)
        return float(np.mean(alphas * np.log10(peaks)))


class PowerLawAlphaSliced(PowerLawAlpha):
    """Mean power-law exponent over every weight matrix, a convolution sliced per kernel offset
    (WeightWatcher 0.2x's convention, ``pool=False``).

    Each Dense kernel and each ``c_in x c_out`` matrix of a convolution kernel offset
    (:func:`layer_matrices`) is a spectrum of its own, fitted by Clauset et al.'s method
    (:func:`_power_law.fit_power_law`: MLE, two-sided KS choice of ``lambda_min``)::

        power_law_alpha_sliced = (1/M) sum_m alpha_m

    over the ``M`` matrices of at least `min_eigenvalues` positive eigenvalues. Kept as a named
    variant: it is what Martin & Mahoney's first papers computed, and it weighs a convolution by
    its kernel size; its spectra are even smaller than the pooled ones (a matrix has only
    ``min(c_in, c_out)`` eigenvalues). Larger values predict a larger gap. Data-free.

    Args:
        min_eigenvalues: matrices with fewer positive eigenvalues are skipped.

    References:
        C. H. Martin, M. W. Mahoney, JMLR 22 (2021), arXiv:1810.01075. A. Clauset, C. R.
        Shalizi, M. E. J. Newman, "Power-law distributions in empirical data", SIAM Review
        51(4), 2009.
    """

    name: ClassVar[str] = "power_law_alpha_sliced"
    summary: ClassVar[str] = ("Martin & Mahoney: mean power-law exponent alpha over the weight matrices, a"
                              " convolution sliced per kernel offset (WeightWatcher 0.2x)")
    reference: ClassVar[str] = ("Martin & Mahoney, JMLR 2021, arXiv:1810.01075: mean_m alpha_m over per-offset "
                                "matrices, ESD tail fit by MLE with KS-chosen lambda_min (Clauset et al. 2009)")

    @validate_params({"min_eigenvalues": POSITIVE_INT})
    def __init__(self, *, min_eigenvalues: int = 3):
        super().__init__(min_eigenvalues=min_eigenvalues)

    def compute(self, trained) -> float:
        alphas, _ = layer_alphas(layer_matrices(trained.model), self.min_eigenvalues)
        return float(np.mean(alphas))
