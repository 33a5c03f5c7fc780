"""Sum of squared Frobenius norms (Jiang et al. 2019), in its scale-invariant form."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from pgdl_measures.measures import _norms
from pgdl_measures.measures.base import Measure


def sum_of_fro(matrices) -> float:
    """``d (prod_{i=1}^d ||W_i||_F^2)^(1/d)``, computed through logarithms (float64)."""
    return float(np.exp(_norms.log_sum_form(_norms.log_sq_frobenius_norms(matrices))))


class SumOfFro(Measure):
    """Jiang et al.'s sum of squared Frobenius norms of the layer weight matrices::

        sum_of_fro = d (prod_{i=1}^d ||W_i||_F^2)^(1/d)

    over the ``d`` layers with a kernel (Dense kernels, convolution kernels reshaped to
    ``[k k c_in, c_out]``; biases and batch normalization left out). For a ReLU network the
    function is unchanged when one layer is scaled by ``c > 0`` and another by ``1/c``; the
    plain sum ``sum_i ||W_i||_F^2`` is not, and this is its minimum over such rescalings (by the
    AM-GM inequality), the form the paper evaluates. Data-free; larger values predict a larger
    gap.

    References:
        Y. Jiang, B. Neyshabur, H. Mobahi, D. Krishnan, S. Bengio. "Fantastic generalization
        measures and where to find them", ICLR 2020 (arXiv:1912.02178), Appendix C: sum-of-fro.
    """

    name: ClassVar[str] = "sum_of_fro"
    summary: ClassVar[str] = ("Jiang et al. 2019: d (prod_i ||W_i||_F^2)^(1/d), the rescaling-invariant sum of"
                              " squared Frobenius norms")
    direction: ClassVar[int] = 1
    needs_train_data: ClassVar[bool] = False
    needs_initial_weights: ClassVar[bool] = False
    reference: ClassVar[str] = ("Jiang et al., 'Fantastic generalization measures and where to find them', ICLR 2020, "
                                "arXiv:1912.02178, sum-of-fro: d (prod_i ||W_i||_F^2)^(1/d)")

    def compute(self, trained) -> float:
        return sum_of_fro(_norms.weight_matrices(trained.model))
