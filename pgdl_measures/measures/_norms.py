"""Helpers of Jiang et al.'s norm- and margin-based measures: the layer weight matrices, their
norms, and the margin ``gamma`` they are normalised by."""

from __future__ import annotations

import numpy as np

from pgdl_measures.autodiff import model_graph
from pgdl_measures.errors import PGDLError
from pgdl_measures.measures import _common
from pgdl_measures.measures import _representations as rep
from pgdl_measures.measures.base import Measure, validate_params
from pgdl_measures.params import PERCENTILE, POSITIVE, POSITIVE_INT


def kernels(model) -> list[np.ndarray]:
    """The kernel of every layer of `model`'s chain that has one (Dense, convolutions), in layer
    order, as float64 arrays of the kernel's own shape."""
    out = []
    for layer in model_graph.layer_chain(model):
        kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            out.append(np.asarray(kernel.numpy() if hasattr(kernel, "numpy") else kernel, np.float64))
    return out


def weight_matrices(model) -> list[np.ndarray]:
    """The kernel of every layer with one, as a matrix, in layer order (float64).

    A Dense kernel ``[in, out]`` is taken as is; a convolution kernel ``[k_1, ..., c_in, c_out]``
    is reshaped to ``[k_1 ... c_in, c_out]`` (the matrix of the layer acting on one patch, as
    Jiang et al. treat convolutions). Biases, batch-normalization parameters and statistics are
    left out.

    Raises:
        PGDLError: the model has no layer with a kernel.
    """
    matrices = [w.reshape(-1, w.shape[-1]) if w.ndim != 2 else w for w in kernels(model)]
    if not matrices:
        raise PGDLError(f"model {model.name!r} has no layer with a kernel (Dense or convolution)")
    return matrices


def log_sq_spectral_norms(matrices) -> np.ndarray:
    """``log ||W||_2^2`` of each matrix (its largest singular value, squared), float64."""
    return np.array([2.0 * np.log(np.linalg.norm(w, 2)) for w in matrices])


def log_sq_frobenius_norms(matrices) -> np.ndarray:
    """``log ||W||_F^2`` of each matrix, float64."""
    return np.array([np.log(np.sum(np.square(w))) for w in matrices])


def log_sum_form(log_norms: np.ndarray, log_gamma_sq: float = 0.0) -> float:
    """``log( d (prod_i n_i / gamma^2)^(1/d) ) = log d + (sum_i log n_i - log gamma^2) / d``."""
    d = len(log_norms)
    return float(np.log(d) + (np.sum(log_norms) - log_gamma_sq) / d)


def margin_gamma(trained, percentile: float, max_examples: int | None, min_margin: float,
                 batch_size: int = 256) -> float:
    """Jiang et al.'s margin ``gamma``: the `percentile`-th percentile of the output margins
    ``f(x)_y - max_{j != y} f(x)_j`` over the first `max_examples` training examples, floored
    at `min_margin` (a model misclassifying more than that share of its training set has a
    non-positive percentile; the floor gives it the largest values, finite)."""
    x, y = rep.first_examples(trained.train, max_examples)
    _common.check_labels(y, trained.num_classes)
    return max(rep.margin_percentile(trained.model, x, y, percentile, batch_size), float(min_margin))


class MarginMeasure(Measure):
    """Base of the measures normalised by the training-set output margin ``gamma``
    (:func:`margin_gamma`): their four parameters, checked once, and :meth:`gamma`.

    Args:
        percentile: the margin percentile ``q`` that defines ``gamma``.
        min_margin: the floor of ``gamma``.
        max_examples: training examples used.
        batch_size: examples per forward pass.
    """

    direction = 1
    needs_initial_weights = False

    @validate_params({"percentile": PERCENTILE, "min_margin": POSITIVE, "max_examples": POSITIVE_INT,
                      "batch_size": POSITIVE_INT})
    def __init__(self, *, percentile: float = 10.0, min_margin: float = 1e-3, max_examples: int = 5000,
                 batch_size: int = 256):
        self.percentile = percentile
        self.min_margin = min_margin
        self.max_examples = max_examples
        self.batch_size = batch_size

    def gamma(self, trained) -> float:
        """``gamma`` of `trained`: the `percentile` margin on its training set, floored at `min_margin`."""
        return margin_gamma(trained, self.percentile, self.max_examples, self.min_margin, self.batch_size)
