"""Jacobian norm: the PGDL competition's baseline, the mean squared Jacobian of the logits with
respect to every layer's input."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from pgdl_measures import autodiff
from pgdl_measures.autodiff import model_graph
from pgdl_measures.errors import PGDLError
from pgdl_measures.measures import _common
from pgdl_measures.measures.base import Measure, validate_params
from pgdl_measures.params import POSITIVE_INT


def batch_jacobian_score(sq_sums: np.ndarray, sizes: list[int], classes: int) -> float:
    """One batch's value: the mean over layers of the mean squared Jacobian entry.

    Args:
        sq_sums: ``[examples, layers]``, per example the sum of squared entries of the Jacobian
            of the logits w.r.t. each layer's input (:func:`pgdl_measures.autodiff.input_jacobian_sq_sums`).
        sizes: the number of entries of each layer's input per example.
        classes: the number of logits.

    Returns:
        ``(1/L) sum_l sum_i ||J_l(x_i)||_F^2 / (n * C * d_l)``.
    """
    n = sq_sums.shape[0]
    per_layer = sq_sums.sum(axis=0) / (n * classes * np.asarray(sizes, np.float64))
    return float(np.mean(per_layer))


class JacobianNorm(Measure):
    """The competition's Jacobian-norm baseline: the mean squared entry of the Jacobian of the
    logits with respect to each layer's input, averaged over layers and batches.

    Take the first ``T = num_batches`` batches ``B_t`` of ``batch_size`` training examples in
    dataset order (33 x 16 = 528 examples by default; fewer when the data is shorter, the last
    batch possibly partial). For every layer ``l = 0..L-1`` of the model, with ``u_l`` its input
    (``u_0 = x``, the model input) and ``J_l(x) = d f(x) / d u_l`` the ``C x d_l`` Jacobian of
    the logits ``f(x)`` (inference mode)::

        v_t = (1/L) sum_l  sum_{i in B_t} ||J_l(x_i)||_F^2 / (|B_t| C d_l)
        jacobian_norm = (1/T) sum_t v_t

    This mirrors the PGDL baseline (``complexity`` of the starting kit's Jacobian sample
    submission): per batch of 16, ``tape.batch_jacobian(model output, layer._last_seen_input)``
    for every layer, ``mean(square(J))`` per layer, mean over layers, and a running mean over
    batches, stopping after batch index 32. Its models output logits; a model ending in a softmax
    is read here as logits followed by softmax, and the softmax layers are left out (see
    :mod:`pgdl_measures.autodiff.model_graph`). All ``C`` Jacobian rows of all layers come from
    ``C`` backward passes per batch, vectorized over the classes.

    Args:
        num_batches: the number of batches (the competition used 33).
        batch_size: examples per batch (the competition used 16).

    Raises:
        MeasureError: the model is not a chain of layers, or the training data is empty.
        PGDLError: (when constructed) a parameter is not a positive integer.

    References:
        Y. Jiang, P. Foret, S. Yak, D. M. Roy, H. Mobahi, G. K. Dziugaite, S. Bengio,
        S. Gunasekar, I. Guyon, B. Neyshabur. "NeurIPS 2020 Competition: Predicting
        Generalization in Deep Learning", arXiv:2012.07976; starting-kit baseline "norm of
        the jacobian wrt to activations" (P. Foret, 2020). Related: R. Novak et al., "Sensitivity
        and generalization in neural networks", ICLR 2018 (input-output Jacobian norm).
    """

    name: ClassVar[str] = "jacobian_norm"
    summary: ClassVar[str] = "PGDL baseline: mean squared Jacobian of the logits w.r.t. every layer's input (33 batches of 16)"
    direction: ClassVar[int] = 1
    needs_train_data: ClassVar[bool] = True
    needs_initial_weights: ClassVar[bool] = False
    reference: ClassVar[str] = ("Jiang et al., 'NeurIPS 2020 Competition: Predicting Generalization in Deep Learning', "
                                "arXiv:2012.07976, starting-kit baseline: per batch of 16, mean over layers of "
                                "mean(square(batch_jacobian(logits, layer input))), averaged over 33 batches")

    @validate_params({"num_batches": POSITIVE_INT, "batch_size": POSITIVE_INT})
    def __init__(self, *, num_batches: int = 33, batch_size: int = 16):
        self.num_batches = num_batches
        self.batch_size = batch_size

    def compute(self, trained) -> float:
        model = model_graph.perturbed_logits_model(trained.model)
        classes = model_graph.num_outputs(model)
        sizes = [math.prod(u.shape[1:]) for u in model.inputs]
        zeros = [np.zeros((self.batch_size,) + tuple(u.shape[1:]), np.float32) for u in model.inputs[1:]]
        scores = []
        for x, _, n in _common.padded_batches(trained.train, self.batch_size, self.num_batches * self.batch_size):
            sq_sums = autodiff.input_jacobian_sq_sums(model, [x] + zeros)
            scores.append(batch_jacobian_score(sq_sums[:n], sizes, classes))
        if not scores:
            raise PGDLError("the training data yielded no examples")
        return float(np.mean(scores))
