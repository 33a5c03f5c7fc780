"""Davies-Bouldin index of the per-class clusters of a layer's representations (Natekar &
Sharma, the PGDL competition's winners)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from pgdl_measures.measures import _common
from pgdl_measures.measures import _representations as rep
from pgdl_measures.measures.base import Measure, validate_params
from pgdl_measures.params import INTEGER, POSITIVE_INT, SEED


def layer_davies_bouldin(model, x: np.ndarray, y: np.ndarray, layer: int, batch_size: int,
                         pool_size: int = 1) -> float:
    """The Davies-Bouldin index of layer `layer`'s outputs on ``x``, clustered by ``y``: the
    outputs max-pooled ``pool_size x pool_size`` when image-shaped (see
    :func:`~pgdl_measures.measures._representations.pooled_representation_model`), flattened."""
    features = rep.pooled_representation_model(model, layer, pool_size)
    classes = np.unique(y)
    centroids, spreads = rep.class_statistics(rep.predict(features, x[y == c], batch_size) for c in classes)
    return rep.davies_bouldin_from_stats(centroids, spreads)


def mean_davies_bouldin(model, draws, layer: int, pool_size: int, batch_size: int) -> float:
    """The mean of :func:`layer_davies_bouldin` over `draws`, a sequence of ``(x, y)`` samples
    (each small: its representations are computed in one pass)."""
    features = rep.pooled_representation_model(model, layer, pool_size)
    return float(np.mean([rep.davies_bouldin(rep.predict(features, x, batch_size), y) for x, y in draws]))


def sampled_davies_bouldin(trained, *, layer: int, pool_size: int, draws: int, examples_per_draw: int,
                           shuffle_buffer: int, seed: int, batch_size: int) -> float:
    """:class:`DaviesBouldin`'s value on `trained` (shared with ``davies_bouldin_mixup``): the
    index averaged over `draws` consecutive samples of a shuffled stream of the training set."""
    x, y = rep.shuffled_examples(trained.train, draws * examples_per_draw, shuffle_buffer,
                                 np.random.default_rng(seed))
    _common.check_labels(y, trained.num_classes)
    samples = [(x[k:k + examples_per_draw], y[k:k + examples_per_draw])
               for k in range(0, draws * examples_per_draw, examples_per_draw)]
    return mean_davies_bouldin(trained.model, samples, layer, pool_size, batch_size)


class DaviesBouldin(Measure):
    """Davies-Bouldin index of the per-class clusters of one layer's representations, as the
    PGDL winners computed it.

    Read the training set over and over through a shuffle buffer of ``shuffle_buffer``
    examples (drawn with `seed`) and cut the first ``draws x examples_per_draw`` examples it
    yields into ``draws`` samples; for each, the representations ``h(x)`` at
    layer `layer` (inference mode), max-pooled ``pool_size x pool_size`` (stride
    ``pool_size``, no padding) when they are feature maps, flattened; with ``c_k`` the mean of
    class ``k``'s representations and ``s_k`` their mean distance to ``c_k``::

        DB = (1/K) sum_k max_{l != k} (s_k + s_l) / ||c_k - c_l||

    and the measure is the mean of ``DB`` over the draws. Tight, well-separated class clusters
    (small DB) are what Natekar & Sharma found in networks that generalise well: "consistency
    of representations". Larger values predict a larger gap.

    This follows the authors' code (``complexitymeasures.py``, ``complexityDB`` with
    ``pool=True, layer='initial', computeOver=400, batchSize=40``, called from
    ``complexity.py``'s ``complexity``): the first layer's output after its activation,
    max-pooled 4x4, 10 draws of 3 x 40 = 120 examples, DB averaged. Their draws come from
    TensorFlow's ``shuffle(5000, seed=1)`` of the repeated training set, which NumPy cannot
    reproduce; ours come from the same shuffle buffer, with NumPy's generator
    (:func:`~pgdl_measures.measures._representations.shuffle_buffer_order`). On the authors'
    own draws (rebuilt with ``tf.data`` in ``tests/measures/test_winners_reference.py``) our
    index equals theirs; with our draws the two rank mnist_conv's models alike up to the noise
    of 10 draws of 120 examples.
    Pooling a map smaller than ``pool_size`` uses the map's size.

    Args:
        layer: index of the layer in the model's chain up to its logits (``0``: the first
            layer, the authors' ``'initial'`` on PGDL's conv nets; negative indices count from
            the logits).
        pool_size: the max-pooling window and stride (1: no pooling).
        draws: how many random samples the index is averaged over.
        examples_per_draw: training examples per sample.
        shuffle_buffer: the size of the shuffle buffer the samples are drawn through.
        seed: the seed of the draws.
        batch_size: examples per forward pass.

    References:
        P. Natekar, M. Sharma. "Representation based complexity measures for predicting
        generalization in deep learning", arXiv:2012.02775 (2020) (consistency of
        representations, Davies-Bouldin index); their code, github.com/parthnatekar/pgdl
        (``complexitymeasures.py``, ``complexityDB``). D. L. Davies, D. W. Bouldin, IEEE TPAMI 1979.
    """

    name: ClassVar[str] = "davies_bouldin"
    revision: ClassVar[int] = 2  # the authors' computation; values of revision 1 are not reused
    summary: ClassVar[str] = ("Natekar & Sharma: Davies-Bouldin index of the per-class clusters of a layer's"
                              " max-pooled representations")
    direction: ClassVar[int] = 1
    needs_train_data: ClassVar[bool] = True
    needs_initial_weights: ClassVar[bool] = False
    reference: ClassVar[str] = ("Natekar & Sharma, 'Representation based complexity measures for predicting "
                                "generalization in deep learning', arXiv:2012.02775, and their code "
                                "(complexitymeasures.py, complexityDB): mean over draws of "
                                "DB = (1/K) sum_k max_l (s_k + s_l)/||c_k - c_l|| on 4x4-max-pooled first-layer maps")

    @validate_params({"layer": INTEGER, "pool_size": POSITIVE_INT, "draws": POSITIVE_INT,
                      "examples_per_draw": POSITIVE_INT, "shuffle_buffer": POSITIVE_INT, "seed": SEED,
                      "batch_size": POSITIVE_INT})
    def __init__(self, *, layer: int = 0, pool_size: int = 4, draws: int = 10, examples_per_draw: int = 120,
                 shuffle_buffer: int = 5000, seed: int = 0, batch_size: int = 256):
        self.layer = layer
        self.pool_size = pool_size
        self.draws = draws
        self.examples_per_draw = examples_per_draw
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.batch_size = batch_size

    def compute(self, trained) -> float:
        return sampled_davies_bouldin(trained, layer=self.layer, pool_size=self.pool_size, draws=self.draws,
                                      examples_per_draw=self.examples_per_draw, shuffle_buffer=self.shuffle_buffer,
                                      seed=self.seed, batch_size=self.batch_size)

