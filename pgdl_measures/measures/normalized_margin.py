"""Normalised margin (Natekar & Sharma): the mean output margin divided by its gradient norm at
the first layer and by that layer's spread, the winners' plain ``'Margin'``."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from pgdl_measures.measures import _common
from pgdl_measures.measures import _margin_distribution as md
from pgdl_measures.measures import _representations as rep
from pgdl_measures.measures.base import Measure, validate_params
from pgdl_measures.params import POSITIVE_INT, SEED


def mean_normalized_margin(model, x: np.ndarray, y: np.ndarray, batch_size: int) -> float:
    """The mean of the normalised margins (:func:`~pgdl_measures.measures._margin_distribution.normalized_margins`)
    at the model's first conv/dense layer on ``(x, y)``."""
    return float(np.nanmean(md.normalized_margins(model, x, y, md.first_weighted_layer(model), batch_size)))


class NormalizedMargin(Measure):
    """The mean normalised margin of training examples at the first layer, as the PGDL winners'
    ``'Margin'`` computed it.

    Read ``examples`` training examples through a shuffle buffer of ``shuffle_buffer`` over the
    repeated training set (drawn with `seed`). With ``h`` the output of the model's first conv/dense layer
    (after its activation), ``z`` the logits and ``(a, b)`` the top two classes (the label
    and the top class when the example is misclassified, so its margin is negative)::

        g_i = (z_a - z_b) / ||d(z_a - z_b)/dh||_2 / sqrt(trimmed mean_features var_i h)
        normalized_margin = mean_i g_i

    the distance to the decision boundary in ``h``'s space, linearised, in units of ``h``'s
    spread (the variance of each feature over the examples, its 5% smallest and largest left
    out). Larger values predict a smaller gap (direction -1); the authors' submission returns
    the negative.

    This follows the authors' code (``complexitymeasures.py``, ``complexityMargin`` with
    ``augment=None``, as ``complexity.py``'s ``measure='Margin'`` calls it;
    ``computecomplexityfinal.py``, ``CustomComplexityFinal.computeMargins`` and
    ``distancefromMargin``: 10 batches of 50). Their examples come from TensorFlow's
    ``shuffle(5000, seed=1)`` of the repeated training set, which NumPy cannot reproduce (ours
    come from the same shuffle buffer with NumPy's generator); on their own examples our value
    is theirs (``tests/measures/test_winners_reference.py``).
    ``perturbed_margin`` (raw margins on noisy inputs) is our own measure, not this one.

    Args:
        examples: training examples drawn (the authors': 500).
        shuffle_buffer: the size of the shuffle buffer the examples are drawn through (the
            training set read over and over, as the authors' ``shuffle(5000)``).
        seed: the seed of the draw.
        batch_size: examples per forward and backward pass.

    References:
        P. Natekar, M. Sharma. "Representation based complexity measures for predicting
        generalization in deep learning", arXiv:2012.02775 (2020): margin distribution
        normalised as Jiang et al. 2019; their code, github.com/parthnatekar/pgdl
        (``complexitymeasures.py``, ``computecomplexityfinal.py``).
    """

    name: ClassVar[str] = "normalized_margin"
    summary: ClassVar[str] = ("Natekar & Sharma: mean margin over its gradient norm at the first layer, in units of"
                              " that layer's spread")
    direction: ClassVar[int] = -1
    needs_train_data: ClassVar[bool] = True
    needs_initial_weights: ClassVar[bool] = False
    reference: ClassVar[str] = ("Natekar & Sharma, arXiv:2012.02775, and their code (complexityMargin, "
                                "CustomComplexityFinal): mean of (z_a - z_b)/||grad_h(z_a - z_b)|| / sqrt(trimmed mean var h)")

    @validate_params({"examples": POSITIVE_INT, "shuffle_buffer": POSITIVE_INT, "seed": SEED,
                      "batch_size": POSITIVE_INT})
    def __init__(self, *, examples: int = 500, shuffle_buffer: int = 5000, seed: int = 0, batch_size: int = 250):
        self.examples = examples
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.batch_size = batch_size

    def compute(self, trained) -> float:
        x, y = rep.shuffled_examples(trained.train, self.examples, self.shuffle_buffer, np.random.default_rng(self.seed))
        _common.check_labels(y, trained.num_classes)
        return mean_normalized_margin(trained.model, x, y, self.batch_size)
