"""The winners' normalised margins (normalized_margin, mixup_margin): an obvious gradient-tape
implementation on the same examples, the Tukey summary and the label-wise mixup by hand."""

from __future__ import annotations

import numpy as np
import pytest

from pgdl_measures.measures import _margin_distribution as md
from pgdl_measures.measures import _representations as rep
from pgdl_measures.measures.mixup_margin import MixupMargin, mixup_margin_summary
from pgdl_measures.measures.normalized_margin import NormalizedMargin, mean_normalized_margin
from pgdl_measures.testing import tiny_trained_model


def obvious_normalized_margins(model, x, y):
    """One example at a time: the layers called in turn under a tape, the gradient of
    z_a - z_b with respect to the first conv/dense layer's output."""
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the reference computes under TensorFlow's tape (the plugin itself is tested on every backend)")
    tf = pytest.importorskip("tensorflow")
    layers = model.layers
    first = next(i for i, layer in enumerate(layers) if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)))
    margins, features = [], []
    for xi, yi in zip(x, y):
        h = tf.convert_to_tensor(xi[None])
        for layer in layers[:first + 1]:
            h = layer(h, training=False)
        with tf.GradientTape() as tape:
            tape.watch(h)
            z = h
            for layer in layers[first + 1:]:
                z = layer(z, training=False)
            order = np.argsort(-z.numpy()[0])
            a, b = (order[0], order[1]) if order[0] == yi else (yi, order[0])
            diff = z[0, a] - z[0, b]
        grad = tape.gradient(diff, h).numpy().reshape(-1)
        margins.append(float(diff) / (np.linalg.norm(grad) + 1e-7))
        features.append(h.numpy().reshape(-1))
    variances = np.var(np.array(features, np.float64), axis=0)
    k = int(0.05 * len(variances))
    spread = np.sqrt(np.mean(np.sort(variances)[k:len(variances) - k]))
    return np.array(margins) / (spread + 1e-7)


@pytest.mark.parametrize("kind", ["conv", "dense"])
def test_normalized_margins_equal_a_tape_per_example(kind):
    trained = tiny_trained_model(kind)
    x, y = trained.train.take()
    x, y = x[:20], y[:20].astype(np.int64)
    ours = md.normalized_margins(trained.model, x, y, md.first_weighted_layer(trained.model), batch_size=7)
    expected = obvious_normalized_margins(trained.model, x, y)
    assert np.all(np.isfinite(ours)) and (ours < 0).any()  # misclassified examples: negative margins
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-6)


def test_margin_classes_pick_the_top_two_or_the_label_and_the_top():
    z = np.array([[3.0, 1.0, 2.0], [0.0, 5.0, -1.0], [1.0, 2.0, 4.0]])
    a, b = md.margin_classes(z, np.array([0, 2, 2]))
    assert a.tolist() == [0, 2, 2] and b.tolist() == [2, 1, 1]


def test_tukey_summary_takes_the_outlier_nearest_each_fence():
    d = np.array([-50.0, 1, 2, 3, 4, 5, 6, 7, 8, 100, 200])
    q1, q2, q3 = np.percentile(d, [25, 50, 75])
    assert md.tukey_summary(d).tolist() == [-50.0, q1, q2, q3, 100.0]
    plain = np.arange(10.0)
    assert md.tukey_summary(plain)[[0, 4]].tolist() == [0.0, 9.0]  # no outlier: the extremes


def test_labelwise_mixup_draws_same_class_pairs_with_the_legacy_generator():
    x = np.array([[0.0], [10.0], [1.0], [20.0], [30.0], [5.0]], np.float32)
    y = np.array([0, 0, 2, 0, 0, 2])
    mixed, labels = md.labelwise_mixup_batch(x, y, 0.5, seed=1)
    assert labels.tolist() == [0, 0, 0, 0, 2, 2]
    pairs0 = rep.pairwise_mixtures(x[y == 0], 0.5)[:, 0]
    pairs2 = rep.pairwise_mixtures(x[y == 2], 0.5)[:, 0]
    random = np.random.RandomState(1)
    assert mixed[:4, 0].tolist() == pairs0[random.randint(0, 6, size=4)].tolist()
    assert mixed[4:, 0].tolist() == pairs2[random.randint(0, 1, size=2)].tolist()
    alone, _ = md.labelwise_mixup_batch(x[:3], np.array([0, 0, 1]), 0.5, seed=1)
    assert alone[2, 0] == 1.0  # a class with one example keeps it


def test_plugins_are_the_summaries_of_their_shuffled_examples():
    trained = tiny_trained_model("conv")
    x, y = rep.shuffled_examples(trained.train, 60, 100, np.random.default_rng(4))
    assert NormalizedMargin(examples=60, shuffle_buffer=100, seed=4)(trained) == \
        pytest.approx(mean_normalized_margin(trained.model, x, y, 250), rel=1e-9)
    expected = mixup_margin_summary(trained.model, x, y, batch=30, lam=0.5, mix_seed=1, layer=None, batch_size=250)
    assert MixupMargin(examples=60, shuffle_buffer=100, seed=4)(trained) == pytest.approx(expected, rel=1e-9)
