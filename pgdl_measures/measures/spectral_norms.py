"""Products and sums of spectral norms, plain and margin-normalised (Jiang et al. 2019)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from pgdl_measures.measures import _norms
from pgdl_measures.measures.base import Measure

_REFERENCE = ("Jiang et al., 'Fantastic generalization measures and where to find them', ICLR 2020, "
              "arXiv:1912.02178, Appendix C")


def log_prod_of_spec(matrices, gamma: float = 1.0) -> float:
    """``log( prod_i ||W_i||_2^2 / gamma^2 )``."""
    return float(np.sum(_norms.log_sq_spectral_norms(matrices)) - 2.0 * np.log(gamma))


def sum_of_spec(matrices, gamma: float = 1.0) -> float:
    """``d (prod_{i=1}^d ||W_i||_2^2 / gamma^2)^(1/d)``, through logarithms."""
    return float(np.exp(_norms.log_sum_form(_norms.log_sq_spectral_norms(matrices), 2.0 * np.log(gamma))))


class LogProdOfSpec(Measure):
    """Log of the product of the squared spectral norms of the layer weight matrices::

        log_prod_of_spec = log prod_{i=1}^d ||W_i||_2^2 = sum_i log sigma_max(W_i)^2

    (Dense kernels, convolution kernels reshaped to ``[k k c_in, c_out]``). The log keeps deep
    networks finite and leaves every ranking unchanged. Data-free; larger values predict a
    larger gap.

    References:
        Jiang et al., "Fantastic generalization measures and where to find them", ICLR 2020,
        Appendix C: prod-of-spec (after Bartlett et al. 2017; Neyshabur et al. 2018).
    """

    name: ClassVar[str] = "log_prod_of_spec"
    summary: ClassVar[str] = "Jiang et al. 2019: log prod_i ||W_i||_2^2 (product of squared spectral norms)"
    direction: ClassVar[int] = 1
    needs_train_data: ClassVar[bool] = False
    needs_initial_weights: ClassVar[bool] = False
    reference: ClassVar[str] = _REFERENCE + ", prod-of-spec: log prod_i ||W_i||_2^2"

    def compute(self, trained) -> float:
        return log_prod_of_spec(_norms.weight_matrices(trained.model))


class LogProdOfSpecOverMargin(_norms.MarginMeasure):
    """Log of the product of squared spectral norms over the squared margin::

        log_prod_of_spec_over_margin = log( prod_{i=1}^d ||W_i||_2^2 / gamma^2 )

    with ``gamma`` the `percentile`-th percentile (10th, the paper's choice) of the output
    margins ``f(x)_y - max_{j != y} f(x)_j`` on the first `max_examples` training examples,
    floored at `min_margin`. Larger values predict a larger gap.

    Args:
        percentile: the percentile of the margins taken as ``gamma``.
        min_margin: the floor of ``gamma`` (for models misclassifying more than `percentile`
            per cent of their training data).
        max_examples: training examples of the margin.
        batch_size: examples per forward pass.

    References:
        Jiang et al., "Fantastic generalization measures and where to find them", ICLR 2020,
        Appendix C: prod-of-spec/margin.
    """

    name: ClassVar[str] = "log_prod_of_spec_over_margin"
    summary: ClassVar[str] = "Jiang et al. 2019: log(prod_i ||W_i||_2^2 / gamma^2), gamma the 10th-percentile margin"
    needs_train_data: ClassVar[bool] = True
    reference: ClassVar[str] = _REFERENCE + ", prod-of-spec/margin: log(prod_i ||W_i||_2^2 / gamma^2)"

    def compute(self, trained) -> float:
        return log_prod_of_spec(_norms.weight_matrices(trained.model), self.gamma(trained))


class SumOfSpec(Measure):
    """The rescaling-invariant sum of squared spectral norms::

        sum_of_spec = d (prod_{i=1}^d ||W_i||_2^2)^(1/d)

    (the minimum of ``sum_i ||W_i||_2^2`` over the layer rescalings that leave a ReLU network's
    function unchanged). Data-free; larger values predict a larger gap.

    References:
        Jiang et al., "Fantastic generalization measures and where to find them", ICLR 2020,
        Appendix C: sum-of-spec.
    """

    name: ClassVar[str] = "sum_of_spec"
    summary: ClassVar[str] = ("Jiang et al. 2019: d (prod_i ||W_i||_2^2)^(1/d) (rescaling-invariant sum of squared"
                              " spectral norms)")
    direction: ClassVar[int] = 1
    needs_train_data: ClassVar[bool] = False
    needs_initial_weights: ClassVar[bool] = False
    reference: ClassVar[str] = _REFERENCE + ", sum-of-spec: d (prod_i ||W_i||_2^2)^(1/d)"

    def compute(self, trained) -> float:
        return sum_of_spec(_norms.weight_matrices(trained.model))


class SumOfSpecOverMargin(_norms.MarginMeasure):
    """The rescaling-invariant sum of squared spectral norms over the squared margin::

        sum_of_spec_over_margin = d (prod_{i=1}^d ||W_i||_2^2 / gamma^2)^(1/d)

    with ``gamma`` as in ``log_prod_of_spec_over_margin`` (10th-percentile output margin).
    Larger values predict a larger gap.

    Args:
        percentile: the percentile of the margins taken as ``gamma``.
        min_margin: the floor of ``gamma``.
        max_examples: training examples of the margin.
        batch_size: examples per forward pass.

    References:
        Jiang et al., "Fantastic generalization measures and where to find them", ICLR 2020,
        Appendix C: sum-of-spec/margin.
    """

    name: ClassVar[str] = "sum_of_spec_over_margin"
    summary: ClassVar[str] = ("Jiang et al. 2019: d (prod_i ||W_i||_2^2 / gamma^2)^(1/d), gamma the 10th-percentile"
                              " margin")
    needs_train_data: ClassVar[bool] = True
    reference: ClassVar[str] = _REFERENCE + ", sum-of-spec/margin: d (prod_i ||W_i||_2^2 / gamma^2)^(1/d)"

    def compute(self, trained) -> float:
        return sum_of_spec(_norms.weight_matrices(trained.model), self.gamma(trained))
