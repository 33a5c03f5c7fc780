"""Label variation on a latent geometry graph (Lassance et al., the PGDL competition's third
place): how often strongly similar representations carry different labels."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from pgdl_measures.errors import PGDLError
from pgdl_measures.measures import _common
from pgdl_measures.measures import _representations as rep
from pgdl_measures.measures.base import Measure


def knn_cosine_graph(features: np.ndarray, k: int) -> np.ndarray:
    """The symmetric k-nearest-neighbour graph of cosine similarities.

    ``S_ij = <h_i, h_j> / (||h_i|| ||h_j||)`` (0 for a zero vector), negative similarities set
    to 0 and the diagonal to 0; each row keeps its ``k`` largest entries, and the graph is made
    symmetric with ``W = max(W, W^T)``.

    Returns:
        ``W [n, n]`` in float64.
    """
    h = np.asarray(features, np.float64).reshape(len(features), -1)
    norms = np.linalg.norm(h, axis=1)
    unit = h / np.where(norms > 0, norms, 1.0)[:, None]
    s = np.clip(unit @ unit.T, 0.0, None)
    np.fill_diagonal(s, 0.0)
    n = len(s)
    k = min(k, n - 1)
    w = np.zeros_like(s)
    if k > 0:
        keep = np.argpartition(-s, k - 1, axis=1)[:, :k]
        rows = np.arange(n)[:, None]
        w[rows, keep] = s[rows, keep]
    return np.maximum(w, w.T)


def label_variation(w: np.ndarray, y: np.ndarray) -> float:
    """The share of the graph's edge weight between examples of different labels.

    With one-hot labels ``Y``, the label variation ``sum_ij W_ij ||Y_i - Y_j||^2 / 2 =
    sum_ij W_ij [y_i != y_j]``, divided here by ``sum_ij W_ij`` so that models (whose
    similarities differ in scale) compare: 0 when no edge joins two classes, 1 when every one
    does. A graph without edges gives 0.
    """
    y = np.asarray(y)
    total = float(w.sum())
    if total <= 0:
        return 0.0
    return float(np.sum(w * (y[:, None] != y[None, :])) / total)


class LabelVariation(Measure):
    """Label variation of the k-nearest-neighbour graph of a layer's representations.

    On the first ``examples_per_class`` training examples of each class, take the flattened
    representations ``h_i`` at layer `layer` (inference mode), build the symmetric k-NN graph of
    their cosine similarities ``W`` (:func:`knn_cosine_graph`) and measure how much of its
    weight joins examples of different classes (:func:`label_variation`)::

        LV = sum_ij W_ij [y_i != y_j] / sum_ij W_ij

    Lassance et al. found that networks whose latent geometry separates the classes (low label
    variation) generalise better; larger values predict a larger gap.

    Args:
        layer: index of the layer in the model's chain up to its logits (default ``-2``: the
            last representation before the logits; negative indices count from the logits).
        k: neighbours kept per example.
        examples_per_class: training examples per class.
        batch_size: examples per forward pass.

    References:
        C. Lassance, L. Béthune, M. Bontonou, M. Hamidouche, V. Gripon. "Ranking deep learning
        generalization using label variation in latent geometry graphs", arXiv:2011.12737
        (2020), the PGDL competition's third place.
    """

    name: ClassVar[str] = "label_variation"
    summary: ClassVar[str] = ("Lassance et al. (PGDL third place): label variation of a k-NN cosine graph of a"
                              " layer's representations")
    direction: ClassVar[int] = 1
    needs_train_data: ClassVar[bool] = True
    needs_initial_weights: ClassVar[bool] = False
    reference: ClassVar[str] = ("Lassance et al., 'Ranking deep learning generalization using label variation in "
                                "latent geometry graphs', arXiv:2011.12737: "
                                "LV = sum_ij W_ij [y_i != y_j] / sum_ij W_ij, "
                                "W the symmetric k-NN cosine-similarity graph")

    def __init__(self, *, layer: int = -2, k: int = 10, examples_per_class: int = 100, batch_size: int = 256):
        if isinstance(layer, bool) or not isinstance(layer, int):
            raise PGDLError(f"measure {self.name!r}: parameter layer must be an integer, got {layer!r}")
        _common.check_count(self.name, "k", k)
        _common.check_count(self.name, "examples_per_class", examples_per_class)
        _common.check_count(self.name, "batch_size", batch_size)
        self.layer = layer
        self.k = k
        self.examples_per_class = examples_per_class
        self.batch_size = batch_size

    def compute(self, trained) -> float:
        x, y = rep.class_balanced_sample(trained.train, trained.num_classes, self.examples_per_class)
        h = rep.predict(rep.representation_model(trained.model, self.layer), x, self.batch_size)
        return label_variation(knn_cosine_graph(h, self.k), y)
