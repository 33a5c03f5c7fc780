"""Heavy-tailed self-regularization (Martin & Mahoney): the power-law exponent alpha of the
layer weight matrices' eigenvalue spectra, plain and weighted (data-free)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from pgdl_measures.errors import PGDLError
from pgdl_measures.measures import _common, _norms
from pgdl_measures.measures._power_law import fit_power_law
from pgdl_measures.measures.base import Measure


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
    """Mean power-law exponent of the layer weight matrices' eigenvalue spectra.

    For every weight matrix ``W`` (Dense kernels; each kernel offset of a convolution, a
    ``c_in x c_out`` matrix), the eigenvalues ``lambda`` of ``W^T W`` are fitted with a
    power-law tail ``p(lambda) ~ lambda^(-alpha)`` for ``lambda >= lambda_min``: ``alpha`` by
    maximum likelihood (the Hill estimator), ``lambda_min`` by minimising the Kolmogorov-
    Smirnov distance (Clauset et al. 2009; :mod:`pgdl_measures.measures._power_law`)::

        power_law_alpha = (1/L) sum_l alpha_l

    over the ``L`` matrices with at least `min_eigenvalues` eigenvalues. Martin & Mahoney find
    heavier tails (smaller alpha, typically 2 to 4 in well-trained layers) in better-trained
    networks; larger values predict a larger gap. Data-free.

    Args:
        min_eigenvalues: matrices with fewer positive eigenvalues are skipped.

    References:
        C. H. Martin, M. W. Mahoney. "Implicit self-regularization in deep neural networks:
        evidence from random matrix theory and implications for learning", JMLR 22 (2021),
        arXiv:1810.01075. A. Clauset, C. R. Shalizi, M. E. J. Newman, "Power-law distributions
        in empirical data", SIAM Review 51(4), 2009.
    """

    name: ClassVar[str] = "power_law_alpha"
    summary: ClassVar[str] = ("Martin & Mahoney: mean power-law exponent alpha of the layer weight matrices'"
                              " eigenvalue spectra")
    direction: ClassVar[int] = 1
    needs_train_data: ClassVar[bool] = False
    needs_initial_weights: ClassVar[bool] = False
    reference: ClassVar[str] = ("Martin & Mahoney, 'Implicit self-regularization in deep neural networks', JMLR 2021, "
                                "arXiv:1810.01075: mean_l alpha_l, ESD tail fit by MLE with KS-chosen lambda_min "
                                "(Clauset et al., SIAM Review 2009)")

    def __init__(self, *, min_eigenvalues: int = 3):
        _common.check_count(self.name, "min_eigenvalues", min_eigenvalues)
        self.min_eigenvalues = min_eigenvalues

    def compute(self, trained) -> float:
        alphas, _ = layer_alphas(layer_matrices(trained.model), self.min_eigenvalues)
        return float(np.mean(alphas))


class WeightedPowerLawAlpha(PowerLawAlpha):
    """Martin & Mahoney's weighted alpha: the mean over weight matrices of ``alpha_l log10
    lambda_max,l``::

        weighted_power_law_alpha = (1/L) sum_l alpha_l log10(lambda_max,l)

    with ``alpha_l`` as in ``power_law_alpha`` and ``lambda_max,l`` the largest eigenvalue of
    ``W_l^T W_l`` (the squared spectral norm), so it combines the tail's exponent with the
    layer's scale. Smaller values went with better test accuracy across pretrained model
    families; larger values predict a larger gap. Data-free.

    Args:
        min_eigenvalues: matrices with fewer positive eigenvalues are skipped.

    References:
        C. H. Martin, T. S. Peng, M. W. Mahoney. "Predicting trends in the quality of
        state-of-the-art neural networks without access to training or testing data", Nature
        Communications 12 (2021), arXiv:2002.06716: alpha-hat.
    """

    name: ClassVar[str] = "weighted_power_law_alpha"
    summary: ClassVar[str] = ("Martin & Mahoney: mean of alpha_l log10 lambda_max,l over the layer weight matrices"
                              " (alpha-hat)")
    reference: ClassVar[str] = ("Martin, Peng & Mahoney, 'Predicting trends in the quality of state-of-the-art neural "
                                "networks without access to training or testing data', Nat. Commun. 2021, "
                                "arXiv:2002.06716: mean_l alpha_l log10 lambda_max,l")

    def compute(self, trained) -> float:
        alphas, peaks = layer_alphas(layer_matrices(trained.model), self.min_eigenvalues)
        return float(np.mean(alphas * np.log10(peaks)))
