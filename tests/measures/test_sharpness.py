"""Magnitude-aware sharpness: the math alone, the Keras stepping machinery against NumPy, and
the measure (seeded, ordered flat < sharp, on the official sample task, under the contract).

Run once per backend: ``KERAS_BACKEND=tensorflow pytest ...`` and ``KERAS_BACKEND=jax pytest ...``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pgdl_measures.autodiff.perturbed import PerturbedCopy
from pgdl_measures.errors import PGDLError
from pgdl_measures.measures._streams import BatchStream, DatasetBatchStream, batch_stream, shuffle_buffer_order
from pgdl_measures.measures.sharpness import (
    Sharpness,
    bisect_largest,
    cross_entropy_and_accuracy,
    magnitude_box,
    negated_sparse_cross_entropy,
    project_to_box,
    sparse_cross_entropy,
)
from pgdl_measures.registry import get_measure
from pgdl_measures.tasks import TrainedModel
from pgdl_measures.tasks.data import ArrayDataset, ShardedDataset
from pgdl_measures.tasks.tfrecords import write_shards
from pgdl_measures.testing import MeasureContract


def _weights(model):
    """Copies of a model's weights (``np.asarray``: no NumPy-2 copy warning under JAX)."""
    return [np.array(np.asarray(v)) for v in model.weights]

#: Small settings that keep each run well under a second on a tiny model.
FAST = dict(ascent_steps=5, rounds=6, max_examples=64, batch_size=32)


# -- the math ----------------------------------------------------------------------------------

def test_magnitude_box_is_alpha_times_magnitude_plus_eps():
    w = [np.array([[-2.0, 0.0], [0.5, 3.0]], dtype=np.float32), np.array([0.0, -1.0], dtype=np.float32)]
    half = magnitude_box(w, 0.1, 1e-3)
    np.testing.assert_allclose(half[0], 0.1 * (np.abs(w[0]) + 1e-3), rtol=1e-6)
    np.testing.assert_allclose(half[1], [1e-4, 0.1001], rtol=1e-6)
    assert half[0].dtype == np.float32
    with pytest.raises(ValueError):
        magnitude_box(w, -1.0, 1e-3)


def test_projection_keeps_perturbation_in_the_magnitude_aware_box():
    rng = np.random.default_rng(0)
    w = [rng.normal(size=(5, 4)), rng.normal(size=7)]
    alpha, eps = 0.05, 1e-3
    half = magnitude_box(w, alpha, eps)
    u = [rng.normal(scale=1.0, size=a.shape) for a in w]  # far outside the box
    projected = project_to_box(u, half)
    for p, a in zip(projected, w):
        assert np.all(np.abs(p) <= alpha * (np.abs(a) + eps) + 1e-15)
    # points inside the box are left as they are; points outside land on its faces
    inside = [0.5 * h * np.sign(r) for h, r in zip(half, u)]
    for p, q in zip(project_to_box(inside, half), inside):
        np.testing.assert_array_equal(p, q)
    for p, q, h in zip(projected, u, half):
        outside = np.abs(q) > h
        np.testing.assert_allclose(np.abs(p[outside]), h[outside])


@pytest.mark.parametrize("geometric", [True, False])
def test_bisection_finds_the_threshold_of_a_monotone_predicate(geometric):
    threshold = 0.0371
    calls = []

    def below(x):
        calls.append(x)
        return x <= threshold

    found, trace = bisect_largest(below, 1e-4, 10.0, 30, geometric=geometric)
    assert found <= threshold
    assert found == pytest.approx(threshold, rel=1e-6)
    assert len(trace) == len(calls) == 30
    assert all(ok == (x <= threshold) for x, ok in trace)


def test_bisection_at_the_ends_of_its_range():
    lo, hi = 1e-3, 1.0
    never, _ = bisect_largest(lambda x: False, lo, hi, 10)
    always, _ = bisect_largest(lambda x: True, lo, hi, 10)
    assert never == lo
    assert always == pytest.approx(hi, rel=0.01) and always < hi
    with pytest.raises(ValueError):
        bisect_largest(lambda x: True, 0.0, 1.0, 3, geometric=True)


def test_shuffle_buffer_order_is_a_local_permutation():
    rng = np.random.default_rng(1)
    n, buffer = 200, 16
    order = shuffle_buffer_order(n, buffer, rng)
    assert sorted(order.tolist()) == list(range(n))
    position = np.empty(n, dtype=int)
    position[order] = np.arange(n)
    # index i enters the buffer only after i - buffer + 1 outputs
    assert np.all(position >= np.arange(n) - buffer + 1)
    assert not np.array_equal(order, np.arange(n))
    np.testing.assert_array_equal(shuffle_buffer_order(n, 1, rng), np.arange(n))
    full = shuffle_buffer_order(n, None, np.random.default_rng(5))
    np.testing.assert_array_equal(full, shuffle_buffer_order(n, 10_000, np.random.default_rng(5)))


def test_batch_stream_repeats_reshuffles_and_is_seeded():
    x = np.arange(10, dtype=np.float32)[:, None]
    y = np.arange(10)
    stream = BatchStream(x, y, 4, 3, np.random.default_rng(0))
    batches = [stream.next() for _ in range(5)]  # 20 examples: two epochs
    assert all(len(b[0]) == 4 for b in batches)
    seen = np.concatenate([b[1] for b in batches])
    assert sorted(seen[:10].tolist()) == list(range(10)) and sorted(seen[10:].tolist()) == list(range(10))
    assert not np.array_equal(seen[:10], seen[10:])  # reshuffled each epoch
    np.testing.assert_array_equal(np.concatenate([b[0][:, 0] for b in batches]), seen)
    again = BatchStream(x, y, 4, 3, np.random.default_rng(0))
    np.testing.assert_array_equal(np.concatenate([again.next()[1] for _ in range(5)]), seen)
    with pytest.raises(PGDLError, match="empty"):
        BatchStream(x[:0], y[:0], 4, 3, np.random.default_rng(0))


class _CountingDataset(ArrayDataset):
    """An in-memory dataset that counts the examples it has handed out."""

    read = 0

    def batches(self, batch_size, *, limit=None):
        for x, y in super().batches(batch_size, limit=limit):
            self.read += len(x)
            yield x, y


@pytest.mark.parametrize("limit", [None, 23])
def test_dataset_stream_equals_the_in_memory_stream(tmp_path, limit):
    """Streamed from real TFRecord shards, epoch after epoch, the batches are those of the
    in-memory stream over the same examples with the same generator (shuffle buffer 5 < n)."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(37, 3, 2)).astype(np.float32)
    y = rng.integers(0, 4, 37)
    write_shards(tmp_path, x, y, num_shards=3)
    n = 37 if limit is None else limit
    streamed = DatasetBatchStream(ShardedDataset.from_folder(tmp_path), 8, 5, np.random.default_rng(0),
                                  limit=limit, chunk=6)
    in_memory = BatchStream(x[:n], y[:n], 8, 5, np.random.default_rng(0))
    for _ in range(12):  # 96 examples: more than two epochs
        (xs, ys), (xm, ym) = streamed.next(), in_memory.next()
        np.testing.assert_array_equal(ys, ym)
        np.testing.assert_array_equal(xs, xm)
    assert streamed.epochs == in_memory.epochs >= 3


def test_dataset_stream_reads_lazily():
    """Only the shuffle buffer, one batch and one read chunk are read ahead of the output."""
    x = np.arange(200, dtype=np.float32)[:, None]
    data = _CountingDataset(x, np.zeros(200, dtype=np.int64))
    stream = DatasetBatchStream(data, 8, 10, np.random.default_rng(0), chunk=4)
    stream.next()
    assert data.read <= 10 + 8 + 4
    for _ in range(24):  # 200 examples out: one epoch, read once
        stream.next()
    assert data.read == 200 and stream.epochs == 1


def test_batch_stream_chooses_by_buffer():
    x = np.arange(30, dtype=np.float32)[:, None]
    data = ArrayDataset(x, np.zeros(30, dtype=np.int64))
    assert isinstance(batch_stream(data, 4, 10, np.random.default_rng(0)), DatasetBatchStream)
    assert isinstance(batch_stream(data, 4, 10, np.random.default_rng(0), limit=10), BatchStream)
    assert isinstance(batch_stream(data, 4, None, np.random.default_rng(0)), BatchStream)
    empty = ArrayDataset(x[:0], np.zeros(0, dtype=np.int64))
    for buffer in (None, 10):
        with pytest.raises(PGDLError, match="empty"):
            batch_stream(empty, 4, buffer, np.random.default_rng(0))


def test_cross_entropy_and_accuracy():
    logits = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    loss, acc = cross_entropy_and_accuracy(logits, np.array([0, 0, 0]))
    expected = np.mean([math.log(2), math.log(1 + math.exp(-2)), 3 + math.log(1 + math.exp(-3))])
    assert loss == pytest.approx(expected)
    assert acc == pytest.approx(2 / 3)


# -- the Keras machinery, against NumPy ----------------------------------------------------------

def _linear_model(kernel, bias):
    import keras

    model = keras.Sequential([keras.Input(shape=(kernel.shape[0],)), keras.layers.Dense(kernel.shape[1])])
    model.set_weights([np.asarray(kernel, np.float32), np.asarray(bias, np.float32)])
    return model


def _softmax_ce_gradient(x, y, kernel, bias):
    """Gradient of the mean softmax cross-entropy of a linear model, by hand."""
    z = x.astype(np.float64) @ kernel + bias
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    return x.T @ p / len(y), p.mean(axis=0)


def _linear_problem(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(16, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=16)
    kernel = rng.normal(size=(4, 3)).astype(np.float32)
    bias = rng.normal(size=3).astype(np.float32)
    return x, y, kernel, bias


def test_box_projected_gradient_step_matches_numpy():
    x, y, kernel, bias = _linear_problem()
    model = _linear_model(kernel, bias)
    copy = PerturbedCopy(model, sparse_cross_entropy, rule="gradient", learning_rate=0.5)
    lower = [kernel - 0.01, bias - 10.0]
    upper = [kernel + 0.01, bias + 10.0]
    copy.set_box(lower, upper)
    copy.step(x, y)
    g_kernel, g_bias = _softmax_ce_gradient(x, y, kernel, bias)
    new_kernel, new_bias = copy.get_trainable()
    np.testing.assert_allclose(new_kernel, np.clip(kernel - 0.5 * g_kernel, lower[0], upper[0]), atol=1e-5)
    np.testing.assert_allclose(new_bias, bias - 0.5 * g_bias, atol=1e-5)
    assert np.any(np.abs(new_kernel - kernel) > 0.01 - 1e-5)  # some clipped
    # the original model is untouched
    np.testing.assert_array_equal(_weights(model)[0], kernel)


def test_scaled_sign_step_ascends_within_the_box():
    x, y, kernel, bias = _linear_problem(1)
    model = _linear_model(kernel, bias)
    copy = PerturbedCopy(model, negated_sparse_cross_entropy, rule="scaled_sign", learning_rate=0.25)
    center = copy.start_trainable
    half = magnitude_box(center, 0.1, 1e-3)
    copy.set_box([w - h for w, h in zip(center, half)], [w + h for w, h in zip(center, half)], half)
    copy.step(x, y)
    g_kernel, g_bias = _softmax_ce_gradient(x, y, kernel, bias)
    new_kernel, new_bias = copy.get_trainable()
    np.testing.assert_allclose(new_kernel, kernel + 0.25 * half[0] * np.sign(g_kernel), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(new_bias, bias + 0.25 * half[1] * np.sign(g_bias), rtol=1e-6, atol=1e-7)
    before, _ = cross_entropy_and_accuracy(x @ kernel + bias, y)
    for _ in range(10):
        copy.step(x, y)
    after, _ = cross_entropy_and_accuracy(copy.logits(x), y)
    assert after > before  # ascent
    for w, c, h in zip(copy.get_trainable(), center, half):
        assert np.all(np.abs(w - c) <= h * (1 + 1e-6))


def test_inference_mode_leaves_batch_norm_statistics_and_skips_dropout():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(8), keras.layers.BatchNormalization(),
                              keras.layers.Dropout(0.9), keras.layers.Dense(3)])
    x, y, _, _ = _linear_problem(2)
    copy = PerturbedCopy(model, sparse_cross_entropy, rule="gradient", learning_rate=0.0)
    big = [np.full_like(w, 1e9) for w in copy.start_trainable]
    copy.set_box([-b for b in big], big)
    copy.step(x, y)  # learning rate 0: nothing may change, not even batch-norm statistics
    for a, b in zip(_weights(copy.inner), _weights(model)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(copy.logits(x), np.asarray(model(x, training=False)), rtol=1e-5, atol=1e-6)


# -- the measure ---------------------------------------------------------------------------------

def _cancelling_models():
    """Two linear models computing the same function, logit_1 - logit_0 = 2 x_0, on inputs
    ``(x_0, z, z)``: the flat one ignores z; the sharp one adds 50 z - 50 z. A magnitude-aware
    box of radius alpha moves the sharp one's logits by about 100 alpha |z|, so it tolerates a
    much smaller alpha."""
    rng = np.random.default_rng(0)
    n = 128
    x0 = rng.choice([-1.0, 1.0], size=n) * rng.uniform(0.5, 1.5, size=n)
    z = rng.normal(size=n)
    x = np.stack([x0, z, z], axis=1).astype(np.float32)
    y = (x0 > 0).astype(np.int64)
    flat = np.zeros((3, 2), np.float32)
    flat[0, 1] = 2.0
    sharp = flat.copy()
    sharp[1, 1], sharp[2, 1] = 50.0, -50.0
    data = ArrayDataset(x, y)
    return [TrainedModel(name, _linear_model(k, np.zeros(2)), None, data, data, task="cancel")
            for name, k in (("flat", flat), ("sharp", sharp))]


def test_sharp_model_is_sharper_than_flat_one_of_the_same_function():
    flat, sharp = _cancelling_models()
    np.testing.assert_allclose(flat.model.predict_on_batch(flat.train.x), sharp.model.predict_on_batch(flat.train.x),
                               atol=1e-4)
    measure = Sharpness(ascent_steps=5, rounds=8, max_examples=128)
    flat_value, sharp_value = measure(flat), measure(sharp)
    assert sharp_value > 10 * flat_value
    loss_measure = Sharpness(criterion="loss", target=0.1, ascent_steps=5, rounds=8, max_examples=128)
    assert loss_measure(sharp) > loss_measure(flat)


def test_same_value_under_the_same_seed():
    _, sharp = _cancelling_models()
    first = Sharpness(**FAST, seed=3)(sharp)
    assert Sharpness(**FAST, seed=3)(sharp) == first
    assert math.isfinite(first) and first > 0


def test_value_bounded_by_the_search_range():
    _, sharp = _cancelling_models()
    measure = Sharpness(**FAST, alpha_min=0.5, alpha_max=0.6)
    assert 1 / 0.6 ** 2 <= measure(sharp) <= 1 / 0.5 ** 2


def test_bad_parameters_are_refused():
    with pytest.raises(PGDLError, match="criterion"):
        Sharpness(criterion="margin")
    with pytest.raises(PGDLError, match="alpha_min"):
        Sharpness(alpha_min=1.0, alpha_max=0.5)


def test_registered():
    measure = get_measure("sharpness", rounds=3)
    assert isinstance(measure, Sharpness) and measure.rounds == 3
    assert Sharpness.direction == 1 and Sharpness.needs_train_data


def test_runs_on_the_official_sample_task(toy_path):
    from pgdl_measures.tasks import find_tasks

    trained = find_tasks(toy_path)[0].load_model("model_0")
    before = _weights(trained.model)
    value = Sharpness(ascent_steps=5, rounds=6, max_examples=200)(trained)
    assert math.isfinite(value) and value > 0
    for a, b in zip(_weights(trained.model), before):
        np.testing.assert_array_equal(a, b)


class TestSharpnessContract(MeasureContract):
    """The measure contract, with small settings."""

    measure_class = Sharpness

    def make_measure(self):
        return Sharpness(**FAST)
