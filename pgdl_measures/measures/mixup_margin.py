"""Mixup margin (Natekar & Sharma): output margins on mixtures of same-class training examples."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from pgdl_measures.measures import _common
from pgdl_measures.measures import _representations as rep
from pgdl_measures.measures.base import Measure


class MixupMargin(Measure):
    """A percentile of the output margins on within-class mixtures of training examples.

    On the first ``examples_per_class`` training examples of each class, mix every example with
    a random partner of its class (``x~_i = lam x_i + (1 - lam) x_p(i)``, as in
    ``mixup_accuracy``), and with ``f`` the logits::

        gamma_i = f(x~_i)_{y_i} - max_{j != y_i} f(x~_i)_j
        mixup_margin = percentile_q(gamma_1, ..., gamma_n)

    Large margins on the interpolations mean the class regions are wide and convex; larger
    values predict a smaller gap (direction -1).

    Args:
        lam: the mixing coefficient.
        percentile: ``q``, the percentile of the margins (50: the median).
        examples_per_class: training examples per class.
        seed: the seed of the mixup partners.
        batch_size: examples per forward pass.

    References:
        P. Natekar, M. Sharma. "Representation based complexity measures for predicting
        generalization in deep learning", arXiv:2012.02775 (2020): the mixup margin.
    """

    name: ClassVar[str] = "mixup_margin"
    summary: ClassVar[str] = "Natekar & Sharma: percentile of the output margins on same-class mixup examples"
    direction: ClassVar[int] = -1
    needs_train_data: ClassVar[bool] = True
    needs_initial_weights: ClassVar[bool] = False
    reference: ClassVar[str] = ("Natekar & Sharma, arXiv:2012.02775, mixup margin: percentile_q of "
                                "f(x~)_y - max_{j != y} f(x~)_j on x~ = lam x_i + (1-lam) x_p(i), same class")

    def __init__(self, *, lam: float = 0.5, percentile: float = 50.0, examples_per_class: int = 500, seed: int = 0,
                 batch_size: int = 256):
        rep.check_fraction(self.name, "lam", lam)
        rep.check_percentile(self.name, percentile)
        _common.check_count(self.name, "examples_per_class", examples_per_class)
        _common.check_count(self.name, "batch_size", batch_size)
        self.lam = lam
        self.percentile = percentile
        self.examples_per_class = examples_per_class
        self.seed = seed
        self.batch_size = batch_size

    def compute(self, trained) -> float:
        x, y = rep.class_balanced_sample(trained.train, trained.num_classes, self.examples_per_class)
        mixed = rep.within_class_mixup(x, y, self.lam, np.random.default_rng(self.seed))
        return rep.margin_percentile(trained.model, mixed, y, self.percentile, self.batch_size)
