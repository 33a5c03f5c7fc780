"""Augment margin (Natekar & Sharma): output margins on augmented training images."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from pgdl_measures.measures import _augment, _common
from pgdl_measures.measures import _representations as rep
from pgdl_measures.measures.base import Measure, validate_params
from pgdl_measures.params import PERCENTILE, POSITIVE_INT, SEED


class AugmentMargin(Measure):
    """A percentile of the output margins on augmented training images.

    On the first ``max_examples`` training images, apply the augmentations (in order, random
    parameters drawn with `seed`; see :mod:`pgdl_measures.measures._augment`) and, with ``f``
    the logits::

        gamma_i = f(a(x_i))_{y_i} - max_{j != y_i} f(a(x_i))_j
        augment_margin = percentile_q(gamma_1, ..., gamma_n)

    A network that keeps a wide margin on transformed copies of its training images has learnt
    features invariant to them; larger values predict a smaller gap (direction -1). Image
    inputs only.

    Args:
        augmentations: the augmentation names, applied in order (``flip``, ``shift``,
            ``brightness``, ``contrast``); the default, flips and shifts, is the standard
            CIFAR/SVHN augmentation.
        percentile: ``q``, the percentile of the margins (50: the median).
        max_examples: training examples used.
        seed: the seed of the augmentations' random parameters.
        batch_size: examples per forward pass.

    Natekar & Sharma's augmented margin (``complexityMargin`` with ``augment='standard'``)
    normalises each margin as ``normalized_margin`` does and augments with flips, colour
    jitter and zoom crops (TensorFlow's ``tf.image`` random ops, unseeded per example); this
    measure keeps raw logit margins and seeded NumPy flips and shifts, our own variant.

    Raises:
        MeasureError: the model does not take images ``[height, width, channels]``.

    References:
        P. Natekar, M. Sharma. "Representation based complexity measures for predicting
        generalization in deep learning", arXiv:2012.02775 (2020): the augment margin.
    """

    name: ClassVar[str] = "augment_margin"
    summary: ClassVar[str] = "Natekar & Sharma: percentile of the output margins on augmented training images"
    direction: ClassVar[int] = -1
    needs_train_data: ClassVar[bool] = True
    needs_initial_weights: ClassVar[bool] = False
    needs_images: ClassVar[bool] = True
    reference: ClassVar[str] = ("Natekar & Sharma, arXiv:2012.02775, augment margin: percentile_q of "
                                "f(a(x))_y - max_{j != y} f(a(x))_j over augmented training images a(x)")

    @validate_params({"augmentations": _augment.NAMES, "percentile": PERCENTILE, "max_examples": POSITIVE_INT,
                      "seed": SEED, "batch_size": POSITIVE_INT})
    def __init__(self, *, augmentations: tuple = ("flip", "shift"), percentile: float = 50.0,
                 max_examples: int = 5000, seed: int = 0, batch_size: int = 256):
        self.augmentations = tuple(augmentations)
        self.percentile = percentile
        self.max_examples = max_examples
        self.seed = seed
        self.batch_size = batch_size

    def compute(self, trained) -> float:
        rep.require_images(trained.model)
        x, y = rep.first_examples(trained.train, self.max_examples)
        _common.check_labels(y, trained.num_classes)
        augmented = _augment.augment(x, self.augmentations, np.random.default_rng(self.seed))
        return rep.margin_percentile(trained.model, augmented, y, self.percentile, self.batch_size)
