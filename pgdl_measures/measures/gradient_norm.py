"""Gradient norm: the exact per-example squared gradient norm over all parameters."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from pgdl_measures import autodiff
from pgdl_measures.autodiff import model_graph
from pgdl_measures.errors import PGDLError
from pgdl_measures.measures import _common
from pgdl_measures.measures.base import Measure, validate_params
from pgdl_measures.params import POSITIVE_INT


def mean_grad_sq_norm(model, dataset, *, batch_size: int, max_examples: int | None = None, variables=None) -> float:
    """``(1/n) sum_i ||grad_theta l_i||^2`` over the first `max_examples` examples of `dataset`.

    Args:
        model: any Keras model (a final softmax is read as logits + softmax, see
            :mod:`pgdl_measures.autodiff.model_graph`).
        dataset: a :class:`~pgdl_measures.tasks.data.Dataset`.
        batch_size: examples per vectorized call.
        max_examples: the number of examples (None: all).
        variables: a subset of the trainable variables (None: all).

    Raises:
        PGDLError: no examples, or a label outside the model's outputs.
    """
    logits = model_graph.logits_model(model)
    classes = model_graph.num_outputs(logits)
    total, count = 0.0, 0
    for x, y, n in _common.padded_batches(dataset, batch_size, max_examples):
        _common.check_labels(y[:n], classes)
        norms = autodiff.per_example_grad_sq_norms(logits, x, y, variables=variables)
        total += float(np.sum(norms[:n]))
        count += n
    if count == 0:
        raise PGDLError("the training data yielded no examples")
    return total / count


class GradientNorm(Measure):
    """Mean squared norm of the per-example gradient of the loss over all trainable parameters.

    With ``theta`` every trainable parameter of the model and
    ``l_i = -log softmax(f_theta(x_i))_{y_i}`` the cross-entropy of training example ``i``
    (logits ``f_theta(x_i)``, inference mode)::

        gradient_norm = (1/n) sum_i ||grad_theta l_i||_2^2

    over the first ``n`` training examples in dataset order (all by default). This is the exact
    quantity :class:`~pgdl_measures.measures.agn.AGN` approximates with the last layer alone. The
    per-example norms are computed for a whole batch in one compiled function per model: for a
    chain of Dense, Conv2D, BatchNormalization and weightless layers, layer by layer from one
    batched backward pass (each layer's per-example norm from its input and output gradient,
    never forming a per-example gradient); for any other model, from per-example gradients
    vectorized over the batch (``jax.vmap(jax.grad)`` or ``tf.vectorized_map``). See
    :func:`pgdl_measures.autodiff.per_example_grad_sq_norms`.

    Args:
        max_examples: use the first `max_examples` training examples (None: all).
        batch_size: examples per vectorized call (memory grows with batch_size x activations, and
            x parameters where per-example gradients are vectorized).

    Raises:
        MeasureError: the training data is empty, or a label exceeds the model's outputs.
        PGDLError: (when constructed) a parameter is not a positive integer.

    References:
        H. An et al. "Can we use gradient norm as a measure of generalization error for model
        selection in practice?" (ICLR 2021 submission, openreview.net/forum?id=MDX3F0qAfm3):
        the gradient norm of all parameters, averaged over training examples; motivated by
        the bound of J. Li et al., "On generalization error bounds of noisy gradient methods
        for non-convex learning", ICLR 2020.
    """

    name: ClassVar[str] = "gradient_norm"
    summary: ClassVar[str] = "mean per-example squared norm of the loss gradient over all parameters"
    direction: ClassVar[int] = 1
    needs_train_data: ClassVar[bool] = True
    needs_initial_weights: ClassVar[bool] = False
    reference: ClassVar[str] = ("An et al., 'Can we use gradient norm as a measure of generalization error for model "
                                "selection in practice?' (ICLR 2021 submission): gradient norm (1/n) sum_i ||grad l_i||^2 "
                                "over all parameters; Li et al., ICLR 2020")

    @validate_params({"max_examples": [POSITIVE_INT, None], "batch_size": POSITIVE_INT})
    def __init__(self, *, max_examples: int | None = None, batch_size: int = 32):
        self.max_examples = max_examples
        self.batch_size = batch_size

    def compute(self, trained) -> float:
        return mean_grad_sq_norm(trained.model, trained.train, batch_size=self.batch_size,
                                 max_examples=self.max_examples)
