"""The competition winners' combined measure: the Davies-Bouldin index times the label-wise
mixup error (Natekar & Sharma)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from pgdl_measures.errors import PGDLError
from pgdl_measures.measures import _common
from pgdl_measures.measures import _representations as rep
from pgdl_measures.measures.base import Measure
from pgdl_measures.measures.davies_bouldin import layer_davies_bouldin
from pgdl_measures.measures.mixup_accuracy import mixup_accuracy


def combine(dbi: float, accuracy: float) -> float:
    """``DB x (1 - acc)``: large when the classes cluster poorly *and* mixtures are misclassified."""
    return float(dbi) * (1.0 - float(accuracy))


class DaviesBouldinMixup(Measure):
    """The Davies-Bouldin index of a layer's per-class clusters times the label-wise mixup error.

    On the same class-balanced sample of the training set (``examples_per_class`` per class)::

        DB x mixup = DB(h_layer) * (1 - acc_mixup)

    with ``DB`` as :class:`~pgdl_measures.measures.davies_bouldin.DaviesBouldin` and
    ``acc_mixup`` as :class:`~pgdl_measures.measures.mixup_accuracy.MixupAccuracy`. Natekar &
    Sharma's winning submission combined the two (both predict a larger gap as they grow
    worse); the product with the mixup *error* keeps one direction: larger values predict a
    larger gap. A model that classifies every mixture correctly scores 0 (a tie with every such
    model).

    Args:
        layer: the layer of the Davies-Bouldin index (see ``davies_bouldin``).
        lam: the mixing coefficient of the mixtures.
        examples_per_class: training examples per class.
        seed: the seed of the mixup partners.
        batch_size: examples per forward pass.

    References:
        P. Natekar, M. Sharma. "Representation based complexity measures for predicting
        generalization in deep learning", arXiv:2012.02775 (2020) (the combined
        DBI x mixup submission).
    """

    name: ClassVar[str] = "davies_bouldin_mixup"
    summary: ClassVar[str] = "Natekar & Sharma (PGDL winners): Davies-Bouldin index x label-wise mixup error"
    direction: ClassVar[int] = 1
    needs_train_data: ClassVar[bool] = True
    needs_initial_weights: ClassVar[bool] = False
    reference: ClassVar[str] = ("Natekar & Sharma, arXiv:2012.02775, the winning DBI x mixup measure: "
                                "DB(h_layer) * (1 - label-wise mixup accuracy)")

    def __init__(self, *, layer: int = 0, lam: float = 0.5, examples_per_class: int = 500, seed: int = 0,
                 batch_size: int = 256):
        if isinstance(layer, bool) or not isinstance(layer, int):
            raise PGDLError(f"measure {self.name!r}: parameter layer must be an integer, got {layer!r}")
        rep.check_fraction(self.name, "lam", lam)
        _common.check_count(self.name, "examples_per_class", examples_per_class)
        _common.check_count(self.name, "batch_size", batch_size)
        self.layer = layer
        self.lam = lam
        self.examples_per_class = examples_per_class
        self.seed = seed
        self.batch_size = batch_size

    def compute(self, trained) -> float:
        x, y = rep.class_balanced_sample(trained.train, trained.num_classes, self.examples_per_class)
        dbi = layer_davies_bouldin(trained.model, x, y, self.layer, self.batch_size)
        accuracy = mixup_accuracy(trained.model, x, y, self.lam, np.random.default_rng(self.seed), self.batch_size)
        return combine(dbi, accuracy)
