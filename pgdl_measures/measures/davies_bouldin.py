"""Davies-Bouldin index of the per-class clusters of a layer's representations (Natekar &
Sharma, the PGDL competition's winners)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from pgdl_measures.errors import PGDLError
from pgdl_measures.measures import _common
from pgdl_measures.measures import _representations as rep
from pgdl_measures.measures.base import Measure


def layer_davies_bouldin(model, x: np.ndarray, y: np.ndarray, layer: int, batch_size: int) -> float:
    """The Davies-Bouldin index of layer `layer`'s flattened outputs on ``x``, clustered by ``y``."""
    features = rep.representation_model(model, layer)
    classes = np.unique(y)
    centroids, spreads = rep.class_statistics(rep.predict(features, x[y == c], batch_size) for c in classes)
    return rep.davies_bouldin_from_stats(centroids, spreads)


class DaviesBouldin(Measure):
    """Davies-Bouldin index of the per-class clusters of one layer's representations.

    Take the first ``m = examples_per_class`` training examples of each class (dataset order),
    their representations ``h(x)`` at layer `layer` (flattened, inference mode); with ``c_k``
    the mean of class ``k``'s representations and ``s_k`` their mean distance to ``c_k``::

        DB = (1/K) sum_k max_{l != k} (s_k + s_l) / ||c_k - c_l||

    Tight, well-separated class clusters (small DB) are what Natekar & Sharma found in networks
    that generalise well: "consistency of representations". Larger values predict a larger gap.

    Args:
        layer: index of the layer in the model's chain up to its logits (``0``: the first
            layer, the default, which the winners' submission used as we read the paper;
            negative indices count from the logits).
        examples_per_class: training examples per class.
        batch_size: examples per forward pass.

    References:
        P. Natekar, M. Sharma. "Representation based complexity measures for predicting
        generalization in deep learning", arXiv:2012.02775 (2020) (consistency of
        representations, Davies-Bouldin index). D. L. Davies, D. W. Bouldin, IEEE TPAMI 1979.
    """

    name: ClassVar[str] = "davies_bouldin"
    summary: ClassVar[str] = ("Natekar & Sharma: Davies-Bouldin index of the per-class clusters of a layer's"
                              " representations")
    direction: ClassVar[int] = 1
    needs_train_data: ClassVar[bool] = True
    needs_initial_weights: ClassVar[bool] = False
    reference: ClassVar[str] = ("Natekar & Sharma, 'Representation based complexity measures for predicting "
                                "generalization in deep learning', arXiv:2012.02775: "
                                "DB = (1/K) sum_k max_l (s_k + s_l)/||c_k - c_l||")

    def __init__(self, *, layer: int = 0, examples_per_class: int = 500, batch_size: int = 256):
        if isinstance(layer, bool) or not isinstance(layer, int):
            raise PGDLError(f"measure {self.name!r}: parameter layer must be an integer, got {layer!r}")
        _common.check_count(self.name, "examples_per_class", examples_per_class)
        _common.check_count(self.name, "batch_size", batch_size)
        self.layer = layer
        self.examples_per_class = examples_per_class
        self.batch_size = batch_size

    def compute(self, trained) -> float:
        model = trained.model
        x, y = rep.class_balanced_sample(trained.train, trained.num_classes, self.examples_per_class)
        return layer_davies_bouldin(model, x, y, self.layer, self.batch_size)
