"""jacobian_norm: analytic values, an independent slow implementation, the competition's own
algorithm (tf_keras with wrapped layers) on the sample task, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pgdl_measures.autodiff import model_graph
from pgdl_measures.errors import PGDLError
from pgdl_measures.measures.base import MeasureError
from pgdl_measures.measures.jacobian_norm import JacobianNorm, batch_jacobian_score
from pgdl_measures.tasks import TrainedModel
from pgdl_measures.tasks.data import ArrayDataset
from pgdl_measures.testing import tiny_trained_model


def _np(variable):
    """A Keras variable as float64 numpy, on either backend (without numpy's copy= warning)."""
    value = variable.value
    return np.array(value.numpy() if hasattr(value, "numpy") else value, np.float64)


def _data(shape, n=40, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return ArrayDataset(rng.normal(size=(n,) + shape).astype(np.float32), rng.integers(0, classes, n))


def _example_jacobians(layers, x):
    """Per layer l, the Jacobians [n, C, d_l] of the logits w.r.t. layer l's input, one example
    at a time, with the running backend's own autodiff (independent of pgdl_measures.autodiff)."""
    import keras

    inputs = [x]
    for layer in layers[:-1]:
        inputs.append(keras.ops.convert_to_numpy(layer(inputs[-1], training=False)))

    def tail(k):
        def f(u):
            for layer in layers[k:]:
                u = layer(u, training=False)
            return u
        return f

    out = []
    if keras.backend.backend() == "jax":
        import jax

        for k, u in enumerate(inputs):
            f = tail(k)
            out.append(np.stack([np.asarray(jax.jacrev(lambda v, f=f: f(v[None])[0])(u[i])).reshape(-1, u[i].size)
                                 for i in range(len(u))]))
    else:
        import tensorflow as tf

        for k, u in enumerate(inputs):
            rows = []
            for i in range(len(u)):
                v = tf.constant(u[i:i + 1])
                with tf.GradientTape() as tape:
                    tape.watch(v)
                    logits = tail(k)(v)
                rows.append(tape.jacobian(logits, v).numpy().reshape(-1, v.shape.num_elements()))
            out.append(np.stack(rows))
    return out


def _reference(model, data, num_batches, batch_size):
    """The definition, literally: per batch, mean over layers of mean(J^2); mean over batches."""
    layers = model_graph.logit_layers(model).layers
    scores = []
    for x, _ in data.batches(batch_size, limit=num_batches * batch_size):
        jacobians = _example_jacobians(layers, x)
        scores.append(np.mean([np.mean(np.square(j.astype(np.float64))) for j in jacobians]))
    return float(np.mean(scores))


def test_batch_score_formula():
    sq_sums = np.array([[2.0, 8.0], [4.0, 0.0]])  # 2 examples, 2 layers
    # layer 0: (2 + 4) / (2 * 3 * 1) = 1; layer 1: 8 / (2 * 3 * 2) = 2/3
    assert batch_jacobian_score(sq_sums, [1, 2], 3) == pytest.approx((1 + 2 / 3) / 2)


def test_one_linear_layer():
    """f(x) = xW + b: J = W^T for every example, so the value is ||W||^2 / (C d)."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    value = JacobianNorm()(TrainedModel("model_0", model, train=_data((4,))))
    np.testing.assert_allclose(value, np.sum(_np(model.layers[0].kernel) ** 2) / 12, rtol=1e-6)


def test_two_linear_layers():
    """f(x) = (xW1 + b1)W2 + b2: J_0 = (W1 W2)^T, J_1 = W2^T; value = mean of their mean squares."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5), keras.layers.Dense(3)])
    w1, w2 = _np(model.layers[0].kernel), _np(model.layers[1].kernel)
    expected = (np.mean((w1 @ w2) ** 2) + np.mean(w2 ** 2)) / 2
    value = JacobianNorm(num_batches=2, batch_size=7)(TrainedModel("model_0", model, train=_data((4,))))
    np.testing.assert_allclose(value, expected, rtol=1e-6)


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_equals_the_slow_definition(kind):
    """Against per-example Jacobians of every layer: 4 + 4 + 1 examples, so the partial last
    batch counts as one batch (a mean of batch means, as in the competition)."""
    model = tiny_trained_model(kind).model
    data = _data(tuple(model.inputs[0].shape[1:]), n=9)
    value = JacobianNorm(num_batches=4, batch_size=4)(TrainedModel("model_0", model, train=data))
    np.testing.assert_allclose(value, _reference(model, data, 4, 4), rtol=1e-5)


def test_only_the_first_batches_are_read():
    trained = tiny_trained_model("dense")
    x, y = trained.train.take()
    changed = x.copy()
    changed[32:] *= 10.0
    value = JacobianNorm(num_batches=2, batch_size=16)(trained)
    other = TrainedModel("model_0", trained.model, train=ArrayDataset(changed, y))
    assert JacobianNorm(num_batches=2, batch_size=16)(other) == pytest.approx(value, rel=1e-6)
    assert JacobianNorm(num_batches=3, batch_size=16)(other) != pytest.approx(value, rel=1e-3)


def test_a_softmax_output_is_read_as_logits():
    import keras

    L = keras.layers
    keras.utils.set_random_seed(0)
    logits = keras.Sequential([keras.Input((4,)), L.Dense(5, activation="relu"), L.Dense(3)])
    probs = keras.Sequential([keras.Input((4,)), L.Dense(5, activation="relu"), L.Dense(3, activation="softmax")])
    probs.set_weights(logits.get_weights())
    data = _data((4,))
    np.testing.assert_allclose(JacobianNorm()(TrainedModel("a", probs, train=data)),
                               JacobianNorm()(TrainedModel("b", logits, train=data)), rtol=1e-6)


def test_empty_dataset_is_a_measure_error():
    with pytest.raises(MeasureError, match=r"measure 'jacobian_norm' on contract/model_dense: .*empty"):
        JacobianNorm()(tiny_trained_model("dense", empty_train=True))


def test_a_model_that_is_not_a_chain_is_a_measure_error():
    import keras

    x = keras.Input((4,))
    a, b = keras.layers.Dense(3)(x), keras.layers.Dense(3)(x)
    model = keras.Model(x, keras.layers.Add()([a, b]), name="branchy")
    with pytest.raises(MeasureError, match=r"'jacobian_norm' on model_3: model 'branchy' is not a chain"):
        JacobianNorm()(TrainedModel("model_3", model, train=_data((4,))))


def _competition_jacobian_norm(model_dir, dataset):
    """The starting kit's algorithm, rewritten with tf_keras: layers wrapped to remember their
    last input, a Sequential that watches its input on the tape, batch_jacobian of the output
    w.r.t. every layer's last-seen input, mean(square) per layer, mean over layers, running mean
    over batches of 16, stopping after batch index 32."""
    tf = pytest.importorskip("tensorflow")
    tf_keras = pytest.importorskip("tf_keras")

    class Sequential(tf_keras.Sequential):
        def __call__(self, x, tape=None, *args, **kwargs):
            if tape is not None:
                tape.watch(x)
            return super().__call__(x, *args, **kwargs)

    def wrapped(layer_cls, **kwargs):
        class Remembering(layer_cls):
            def __call__(self, x, *args, **kw):
                self._last_seen_input = x
                return super().__call__(x, *args, **kw)
        return Remembering(**kwargs)

    config = json.loads((model_dir / "config.json").read_text())
    layers = []
    for spec in config["model_config"]:
        spec = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in spec.items()}
        layers.append(wrapped(getattr(tf_keras.layers, spec.pop("layer_name")), **spec))
    model = Sequential(layers)
    model.build([None] + [int(s) for s in config["input_shape"]])
    model.load_weights(str(model_dir / "weights.hdf5"))

    @tf.function
    def jacobians(inputs):
        with tf.GradientTape(persistent=True) as tape:
            out = model(inputs, tape=tape)
        return [tape.batch_jacobian(out, layer._last_seen_input) for layer in model.layers]

    scores = []
    for i, (x, _) in enumerate(dataset.batches(16)):
        scores.append(np.mean([np.mean(np.square(j.numpy())) for j in jacobians(tf.constant(x))]))
        if i == 32:
            break
    return float(np.mean(scores))


@pytest.mark.parametrize("model_id", ["model_0", "model_5"])
def test_matches_the_competition_algorithm_on_the_sample_task(toy_path, model_id):
    from pgdl_measures.tasks import find_tasks

    trained = find_tasks(toy_path)[0].load_model(model_id)
    value = JacobianNorm()(trained)
    np.testing.assert_allclose(value, _competition_jacobian_norm(toy_path / model_id, trained.train), rtol=1e-5)


def test_bad_parameters_are_refused():
    with pytest.raises(PGDLError, match=r"measure 'jacobian_norm': parameter num_batches must be a positive integer"):
        JacobianNorm(num_batches=1.5)
