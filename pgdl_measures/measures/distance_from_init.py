"""Distance from initialisation: the PGDL competition's weight-distance baseline."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pgdl_measures.measures.base import Measure


def squared_distance(weights: Sequence[np.ndarray], initial: Sequence[np.ndarray]) -> float:
    """The squared Euclidean distance between two lists of weight arrays.

    .. math::

        \\sum_k \\lVert W_k - W_k^0 \\rVert_F^2

    summed over every array :math:`k`, in float64.

    Args:
        weights: the trained weight arrays (``model.get_weights()``).
        initial: the arrays at initialisation, in the same order and shapes.

    Returns:
        The sum of squared differences, a float.

    Raises:
        ValueError: the lists differ in length or an array differs in shape.
    """
    if len(weights) != len(initial):
        raise ValueError(f"the model has {len(weights)} weight arrays but the initial weights have {len(initial)}")
    total = 0.0
    for index, (w, w0) in enumerate(zip(weights, initial)):
        w, w0 = np.asarray(w, dtype=np.float64), np.asarray(w0, dtype=np.float64)
        if w.shape != w0.shape:
            raise ValueError(f"weight array {index} has shape {w.shape} but its initial value has shape {w0.shape}")
        total += float(np.sum(np.square(w - w0)))
    return total


class DistanceFromInit(Measure):
    """Squared distance of the weights from their initial values.

    .. math::

        \\mu(f_W) = \\sum_k \\lVert W_k - W_k^0 \\rVert_F^2

    over every array the model holds, in the order Keras lists them (``model.get_weights()``):
    kernels, biases and non-trainable arrays such as batch-norm moving statistics, as the
    competition's baseline did. See :func:`squared_distance`.
    """

    name = "distance_from_init"
    summary = "Squared Frobenius distance of all weights from their initial values (competition baseline)"
    direction = 1
    needs_train_data = False
    needs_initial_weights = True
    reference = ("Jiang et al., NeurIPS 2020 PGDL competition (arXiv:2012.07976), distance-from-init baseline; "
                 "Nagarajan & Kolter, arXiv:1901.01672, 2019; Jiang et al., ICLR 2020, 'Fantastic "
                 "generalization measures', dist. from init.")

    def compute(self, trained) -> float:
        return squared_distance(trained.model.get_weights(), trained.initial_weights)
