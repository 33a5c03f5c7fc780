"""Robustness to augmentations (Aithal, Kashyap & Subramanyam, the PGDL competition's runner-up):
how often the model's prediction on a training image changes when the image is augmented."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from pgdl_measures.measures import _augment, _common
from pgdl_measures.measures import _representations as rep
from pgdl_measures.measures.base import Measure


def prediction_change_rate(z_original: np.ndarray, z_augmented: np.ndarray) -> float:
    """The fraction of examples whose predicted class differs between two sets of logits."""
    return float(np.mean(np.argmax(z_original, axis=1) != np.argmax(z_augmented, axis=1)))


class AugmentRobustness(Measure):
    """The fraction of training images whose predicted class changes under augmentation.

    On the first ``max_examples`` training images ``x_i``, each augmented ``repeats`` times
    (``a_r``, random parameters drawn with `seed`; see :mod:`pgdl_measures.measures._augment`)::

        change = (1 / (n R)) sum_r sum_i [ argmax f(a_r(x_i)) != argmax f(x_i) ]

    Aithal et al. argue that a network whose output is robust to augmentations of its inputs
    generalises better, and compute their metric from the change of the model's output after
    augmenting the input; here that change is read as the rate of changed predictions (the
    label is not needed, so misfitted training examples count like the rest). Larger values
    predict a larger gap. Image inputs only.

    Args:
        augmentations: the augmentation names, applied in order (``flip``, ``shift``,
            ``brightness``, ``contrast``).
        repeats: ``R``, augmented copies of each image.
        max_examples: training examples used.
        seed: the seed of the augmentations' random parameters.
        batch_size: examples per forward pass.

    Raises:
        MeasureError: the model does not take images ``[height, width, channels]``.

    References:
        A. K. Aithal, D. Kashyap, N. Subramanyam. "Robustness to augmentations as a
        generalization metric", arXiv:2101.06459 (2021), the PGDL competition's second place.
    """

    name: ClassVar[str] = "augment_robustness"
    summary: ClassVar[str] = ("Aithal et al. (PGDL runner-up): rate of changed predictions under augmentation of"
                              " training images")
    direction: ClassVar[int] = 1
    needs_train_data: ClassVar[bool] = True
    needs_initial_weights: ClassVar[bool] = False
    needs_images: ClassVar[bool] = True
    reference: ClassVar[str] = ("Aithal, Kashyap & Subramanyam, 'Robustness to augmentations as a generalization "
                                "metric', arXiv:2101.06459: mean over r, i of [argmax f(a_r(x_i)) != argmax f(x_i)]")

    def __init__(self, *, augmentations: tuple = ("flip", "shift", "brightness", "contrast"), repeats: int = 2,
                 max_examples: int = 5000, seed: int = 0, batch_size: int = 256):
        _augment.check_names(self.name, augmentations)
        _common.check_count(self.name, "repeats", repeats)
        _common.check_count(self.name, "max_examples", max_examples)
        _common.check_count(self.name, "batch_size", batch_size)
        self.augmentations = tuple(augmentations)
        self.repeats = repeats
        self.max_examples = max_examples
        self.seed = seed
        self.batch_size = batch_size

    def compute(self, trained) -> float:
        rep.require_images(trained.model)
        x, _ = rep.first_examples(trained.train, self.max_examples)
        rng = np.random.default_rng(self.seed)
        z = rep.logits(trained.model, x, self.batch_size)
        rates = [prediction_change_rate(z, rep.logits(trained.model, _augment.augment(x, self.augmentations, rng),
                                                      self.batch_size))
                 for _ in range(self.repeats)]
        return float(np.mean(rates))
