"""Label-wise mixup accuracy (Natekar & Sharma): accuracy on mixtures of same-class examples."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from pgdl_measures.measures import _common
from pgdl_measures.measures import _representations as rep
from pgdl_measures.measures.base import Measure


def mixup_accuracy(model, x: np.ndarray, y: np.ndarray, lam: float, rng: np.random.Generator,
                   batch_size: int) -> float:
    """Accuracy of `model` on within-class mixtures ``lam x_i + (1 - lam) x_p(i)`` labelled ``y_i``
    (see :func:`pgdl_measures.measures._representations.within_class_mixup`)."""
    mixed = rep.within_class_mixup(x, y, lam, rng)
    z = rep.logits(model, mixed, batch_size)
    return float(np.mean(np.argmax(z, axis=1) == y))


class MixupAccuracy(Measure):
    """Label-wise mixup accuracy: how well the model classifies mixtures of two training
    examples of the same class.

    Take the first ``m = examples_per_class`` training examples of each class; pair each
    example ``x_i`` of class ``k`` with a random partner ``x_p(i)`` of the same class (a random
    permutation within the class, drawn with `seed`) and classify the mixture::

        acc = (1/n) sum_i [ argmax_j f(lam x_i + (1 - lam) x_p(i))_j = y_i ]

    A network whose class regions are convex and robust keeps these interpolations in their
    class; Natekar & Sharma found higher label-wise mixup accuracy in networks that generalise
    better, so larger values predict a smaller gap (direction -1).

    Args:
        lam: the mixing coefficient (0.5: the midpoint, the paper's choice as we read it).
        examples_per_class: training examples per class.
        seed: the seed of the partner permutation.
        batch_size: examples per forward pass.

    References:
        P. Natekar, M. Sharma. "Representation based complexity measures for predicting
        generalization in deep learning", arXiv:2012.02775 (2020) (label-wise mixup).
        H. Zhang, M. Cisse, Y. Dauphin, D. Lopez-Paz. "mixup: Beyond empirical risk
        minimization", ICLR 2018.
    """

    name: ClassVar[str] = "mixup_accuracy"
    summary: ClassVar[str] = "Natekar & Sharma: accuracy on mixtures of two training examples of the same class"
    direction: ClassVar[int] = -1
    needs_train_data: ClassVar[bool] = True
    needs_initial_weights: ClassVar[bool] = False
    reference: ClassVar[str] = ("Natekar & Sharma, arXiv:2012.02775, label-wise mixup: "
                                "acc = mean_i [argmax f(lam x_i + (1-lam) x_p(i)) = y_i], p a within-class permutation")

    def __init__(self, *, lam: float = 0.5, examples_per_class: int = 500, seed: int = 0, batch_size: int = 256):
        rep.check_fraction(self.name, "lam", lam)
        _common.check_count(self.name, "examples_per_class", examples_per_class)
        _common.check_count(self.name, "batch_size", batch_size)
        self.lam = lam
        self.examples_per_class = examples_per_class
        self.seed = seed
        self.batch_size = batch_size

    def compute(self, trained) -> float:
        x, y = rep.class_balanced_sample(trained.train, trained.num_classes, self.examples_per_class)
        return mixup_accuracy(trained.model, x, y, self.lam, np.random.default_rng(self.seed), self.batch_size)
