"""davies_bouldin and davies_bouldin_mixup: scikit-learn's index on the same features, the
class-balanced sample, the product of the two parts."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import davies_bouldin_score

from pgdl_measures.measures import _representations as rep
from pgdl_measures.measures.davies_bouldin import DaviesBouldin
from pgdl_measures.measures.davies_bouldin_mixup import DaviesBouldinMixup, combine
from pgdl_measures.measures.mixup_accuracy import MixupAccuracy
from pgdl_measures.tasks.data import ArrayDataset
from pgdl_measures.testing import tiny_trained_model


@pytest.mark.parametrize("seed, classes, spread", [(0, 2, 1.0), (1, 3, 0.3), (2, 5, 2.0)])
def test_index_equals_scikit_learn(seed, classes, spread):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (classes, 7))
    y = rng.integers(0, classes, 120)
    y[:classes] = np.arange(classes)
    x = centres[y] + rng.normal(0, spread, (120, 7))
    assert rep.davies_bouldin(x, y) == pytest.approx(davies_bouldin_score(x, y), rel=1e-10)


def test_index_of_identical_points_is_zero_like_scikit_learn():
    x = np.ones((6, 3))
    y = np.array([0, 0, 0, 1, 1, 1])
    assert rep.davies_bouldin(x, y) == davies_bouldin_score(x, y) == 0.0


def test_class_balanced_sample_takes_the_first_examples_of_each_class():
    x = np.arange(10, dtype=np.float32)[:, None]
    y = np.array([0, 1, 0, 0, 2, 1, 1, 0, 2, 2])
    xs, ys = rep.class_balanced_sample(ArrayDataset(x, y), 3, 2, batch_size=3)
    assert ys.tolist() == [0, 0, 1, 1, 2, 2]
    assert xs[:, 0].tolist() == [0, 2, 1, 5, 4, 8]


@pytest.mark.parametrize("layer", [0, 3, -2])
def test_measure_equals_scikit_learn_on_the_layer_representations(layer):
    import keras

    trained = tiny_trained_model("conv")
    x, y = trained.train.take()
    model = trained.model
    # the representation, built independently: the model's layers called one by one
    h = keras.ops.convert_to_tensor(x)
    for item in model.layers[:layer % len(model.layers) + 1]:
        h = item(h, training=False) if isinstance(item, keras.layers.BatchNormalization) else item(h)
    features = keras.ops.convert_to_numpy(h).reshape(len(x), -1)
    expected = davies_bouldin_score(features, y)
    assert DaviesBouldin(layer=layer, examples_per_class=100)(trained) == pytest.approx(expected, rel=1e-5)


def test_layer_out_of_range_is_a_measure_error():
    from pgdl_measures.measures.base import MeasureError

    with pytest.raises(MeasureError, match="layer 9 does not exist"):
        DaviesBouldin(layer=9)(tiny_trained_model("dense"))


def test_combined_measure_is_the_index_times_the_mixup_error():
    trained = tiny_trained_model("dense")
    combined = DaviesBouldinMixup(layer=0, lam=0.5, examples_per_class=10, seed=3)(trained)
    dbi = DaviesBouldin(layer=0, examples_per_class=10)(trained)
    accuracy = MixupAccuracy(lam=0.5, examples_per_class=10, seed=3)(trained)
    assert combined == pytest.approx(combine(dbi, accuracy), rel=1e-9)
    assert combine(2.0, 0.75) == 0.5
