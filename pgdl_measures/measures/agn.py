"""Approximated gradient norm (AGN): the loss gradient of the last Dense layer, without backprop."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from pgdl_measures.autodiff import model_graph
from pgdl_measures.errors import PGDLError
from pgdl_measures.measures import _common
from pgdl_measures.measures.base import Measure, validate_params
from pgdl_measures.params import POSITIVE_INT


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits ``[batch, classes]``, in float64."""
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def agn_per_example(h: np.ndarray, z: np.ndarray, y: np.ndarray, *, use_bias: bool = True) -> np.ndarray:
    """Squared norm of each example's cross-entropy gradient w.r.t. a final Dense layer.

    For a Dense layer ``z = h W + b`` feeding ``l = -log softmax(z)_y``, Goodfellow's
    per-example identity gives, with ``delta = dl/dz = softmax(z) - onehot(y)``::

        ||dl/dW||_F^2 + ||dl/db||^2 = (||h||^2 + 1) * ||delta||^2

    (``dl/dW = h delta^T`` is rank one). Without a bias the ``+ 1`` is dropped.

    Args:
        h: the layer's inputs ``[batch, features]``.
        z: its pre-activation outputs (logits) ``[batch, classes]``.
        y: integer labels ``[batch]``.
        use_bias: whether the layer has a bias.

    Returns:
        float64 array ``[batch]``.
    """
    h = np.asarray(h, np.float64)
    delta = softmax(z)
    delta[np.arange(len(delta)), np.asarray(y, np.int64)] -= 1.0
    return (np.sum(h * h, axis=1) + (1.0 if use_bias else 0.0)) * np.sum(delta * delta, axis=1)


class AGN(Measure):
    """Approximated gradient norm: the mean squared norm of the per-example loss gradient with
    respect to the last Dense layer's kernel and bias, computed from a forward pass only.

    With ``h_i`` the input of the final Dense layer on training example ``i``, ``z_i = h_i W + b``
    its logits and ``delta_i = softmax(z_i) - onehot(y_i)`` the gradient of the cross-entropy
    ``l_i = -log softmax(z_i)_{y_i}`` with respect to ``z_i``::

        AGN = (1/n) sum_i ||d l_i / d(W, b)||^2 = (1/n) sum_i (||h_i||^2 + 1) ||delta_i||^2

    over the first ``n`` training examples in dataset order (all of them by default), in
    inference mode. A Dense without bias drops the ``+ 1``. The final Dense may be linear
    (logits) or apply the softmax itself, and may be followed by a ``Softmax`` or
    ``Activation("softmax")`` layer; no backpropagation through the network is needed
    (Goodfellow's per-example gradient identity), so it costs one inference pass. The head of
    the NiN and all-convolutional families -- a linear 1x1 ``Conv2D`` followed by
    ``GlobalAveragePooling2D`` -- is a Dense on the pooled features (``h_i`` is the conv's input
    averaged over positions), and its AGN is that Dense's, exactly
    (:class:`~pgdl_measures.autodiff.model_graph.FinalDense`).

    Args:
        max_examples: use the first `max_examples` training examples (None: all).
        batch_size: examples per forward pass.

    Raises:
        MeasureError: the model has no final Dense layer (or one with another activation or a
            non-flat input) and no linear 1x1 Conv2D + GlobalAveragePooling2D head, the training
            data is empty, or a label exceeds the model's outputs.
        PGDLError: (when constructed) a parameter is not a positive integer.

    References:
        H. An, H. Xiong, X. Li, X. Li, D. Dou, Z. Zhu. "Can we use gradient norm as a measure of
        generalization error for model selection in practice?" (ICLR 2021 submission,
        openreview.net/forum?id=MDX3F0qAfm3): the approximated gradient norm of the FC layer.
        I. Goodfellow. "Efficient per-example gradient computations", arXiv:1510.01799 (2015).
    """

    name: ClassVar[str] = "agn"
    summary: ClassVar[str] = "approximated gradient norm: mean per-example squared loss-gradient norm of the last Dense layer"
    direction: ClassVar[int] = 1
    needs_train_data: ClassVar[bool] = True
    needs_initial_weights: ClassVar[bool] = False
    reference: ClassVar[str] = ("An et al., 'Can we use gradient norm as a measure of generalization error for model "
                                "selection in practice?' (ICLR 2021 submission), approximated gradient norm of the FC layer; "
                                "per-example identity (||h||^2 + 1)||softmax(z) - onehot(y)||^2 from Goodfellow, "
                                "arXiv:1510.01799")

    @validate_params({"max_examples": [POSITIVE_INT, None], "batch_size": POSITIVE_INT})
    def __init__(self, *, max_examples: int | None = None, batch_size: int = 256):
        self.max_examples = max_examples
        self.batch_size = batch_size

    def compute(self, trained) -> float:
        model = trained.model
        dense = model_graph.final_dense(model)
        features = model_graph.features_model(model)
        classes = model_graph.num_outputs(model)
        total, count = 0.0, 0
        for x, y, n in _common.padded_batches(trained.train, self.batch_size, self.max_examples):
            _common.check_labels(y[:n], classes)
            h, z = features.predict_on_batch(x)
            total += float(np.sum(agn_per_example(np.asarray(h)[:n], np.asarray(z)[:n], y[:n], use_bias=dense.use_bias)))
            count += n
        if count == 0:
            raise PGDLError("the training data yielded no examples")
        return total / count
