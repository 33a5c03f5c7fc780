"""davies_bouldin and davies_bouldin_mixup: scikit-learn's index on the same features, the
class-balanced sample, the product of the two parts."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import davies_bouldin_score

from pgdl_measures.measures import _representations as rep
from pgdl_measures.measures.davies_bouldin import DaviesBouldin, mean_davies_bouldin
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


def _representation(model, x, layer):
    """Layer `layer`'s output, built independently: the model's layers called one by one."""
    import keras

    h = keras.ops.convert_to_tensor(x)
    for item in model.layers[:layer % len(model.layers) + 1]:
        h = item(h, training=False) if isinstance(item, keras.layers.BatchNormalization) else item(h)
    return keras.ops.convert_to_numpy(h)


def _max_pool(h, p):
    """``p x p`` max-pooling with stride ``p``, no padding, of maps ``[n, height, width, c]``."""
    n, height, width, c = h.shape
    h = h[:, :height // p * p, :width // p * p]
    return h.reshape(n, height // p, p, width // p, p, c).max(axis=(2, 4))


@pytest.mark.parametrize("layer", [0, 3, -2])
def test_measure_equals_scikit_learn_on_the_layer_representations(layer):
    trained = tiny_trained_model("conv")
    x, y = trained.train.take()
    features = _representation(trained.model, x, layer).reshape(len(x), -1)
    expected = davies_bouldin_score(features, y)
    assert mean_davies_bouldin(trained.model, [(x, y)], layer, pool_size=1, batch_size=256) == \
        pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("pool_size, used", [(2, 2), (4, 4), (50, 8)])
def test_first_layer_maps_are_max_pooled_before_clustering(pool_size, used):
    trained = tiny_trained_model("conv")
    x, y = trained.train.take()
    h = _representation(trained.model, x, 0)
    assert h.shape[1:3] == (8, 8)  # a window larger than the map is the map's size
    expected = davies_bouldin_score(_max_pool(h, used).reshape(len(x), -1), y)
    assert mean_davies_bouldin(trained.model, [(x, y)], 0, pool_size=pool_size, batch_size=256) == \
        pytest.approx(expected, rel=1e-5)


def test_measure_is_the_mean_over_draws_of_the_index():
    trained = tiny_trained_model("conv")
    x, y = trained.train.take()
    rng = np.random.default_rng(5)
    draws = [(x[p], y[p]) for p in (rng.choice(len(x), 20, replace=False) for _ in range(3))]
    pooled = [davies_bouldin_score(_max_pool(_representation(trained.model, dx, 0), 4).reshape(len(dx), -1), dy)
              for dx, dy in draws]
    assert mean_davies_bouldin(trained.model, draws, 0, 4, 256) == pytest.approx(np.mean(pooled), rel=1e-5)


def test_plugin_averages_the_index_over_consecutive_samples_of_the_shuffled_stream():
    trained = tiny_trained_model("conv")
    x, y = rep.shuffled_examples(trained.train, 3 * 16, 100, np.random.default_rng(2))
    draws = [(x[k:k + 16], y[k:k + 16]) for k in (0, 16, 32)]
    expected = mean_davies_bouldin(trained.model, draws, 0, pool_size=4, batch_size=256)
    measure = DaviesBouldin(draws=3, examples_per_draw=16, shuffle_buffer=100, seed=2)
    assert measure(trained) == pytest.approx(expected, rel=1e-9)


def test_a_shuffle_buffer_of_one_keeps_the_order():
    assert rep.shuffle_buffer_order(4, 10, 1, np.random.default_rng(0)).tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]


def test_shuffle_buffer_order_has_tf_datas_law():
    tf = pytest.importorskip("tensorflow")
    tf.random.set_seed(0)
    # 5,000 outputs of a buffer of 5,000 over a set of 1,000 read over and over, four times
    stream = tf.data.Dataset.range(1000).repeat(-1)
    theirs = [next(iter(stream.shuffle(5000, seed=s).batch(5000))).numpy() for s in range(4)]
    ours = [rep.shuffle_buffer_order(1000, 5000, 5000, np.random.default_rng(s)) for s in range(4)]
    for name, stat in (("count spread", lambda o: np.bincount(o, minlength=1000).std()),  # not 5 each
                       ("first quarter", lambda o: np.mean(o < 250)),
                       ("last half", lambda o: np.mean(o >= 500))):
        assert np.mean([stat(o) for o in ours]) == pytest.approx(np.mean([stat(o) for o in theirs]), rel=0.1), name


def test_samples_read_a_small_training_set_over_again():
    x = np.arange(7, dtype=np.float32)[:, None]
    y = np.array([0, 1, 2, 0, 1, 2, 0])
    xs, ys = rep.cycled_examples(ArrayDataset(x, y), 16, batch_size=3)
    assert xs[:, 0].tolist() == [0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6, 0, 1]
    assert ys.tolist() == y[np.arange(16) % 7].tolist()


def test_layer_out_of_range_is_a_measure_error():
    from pgdl_measures.measures.base import MeasureError

    with pytest.raises(MeasureError, match="layer 9 does not exist"):
        DaviesBouldin(layer=9)(tiny_trained_model("dense"))


def test_combined_measure_is_the_index_times_the_mixup_error():
    trained = tiny_trained_model("dense")
    combined = DaviesBouldinMixup(layer=0, draws=4, examples_per_draw=30, seed=3, per_class_in_batch=5)(trained)
    dbi = DaviesBouldin(layer=0, draws=4, examples_per_draw=30, seed=3)(trained)
    accuracy = MixupAccuracy(per_class_in_batch=5)(trained)
    assert 0 < accuracy < 1
    assert combined == pytest.approx(combine(dbi, accuracy), rel=1e-9)
    assert combine(2.0, 0.75) == 0.5
