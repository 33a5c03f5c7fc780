"""The layerwise per-example gradient norms (pgdl_measures.autodiff._layerwise) against the
per-example loop, on the running Keras backend (``KERAS_BACKEND=jax`` for the other one)."""

from __future__ import annotations

import numpy as np
import pytest

from pgdl_measures import autodiff


def _model(layers, shape, seed=0):
    """A Sequential with random weights and non-trivial batch-norm statistics."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input(shape)] + layers)
    rng = np.random.default_rng(seed)
    for v in model.weights:
        size = tuple(v.shape)
        if "variance" in v.path:
            value = rng.uniform(0.5, 1.5, size)
        elif "mean" in v.path:
            value = rng.normal(0, 0.3, size)
        else:
            value = rng.normal(0, 0.5, size)
        v.assign(value.astype("float32"))
    return model


def _data(shape, n=9, classes=3, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n,) + shape).astype(np.float32), rng.integers(0, classes, n)


def _models():
    import keras

    L = keras.layers
    return {
        "dense": ([L.Dense(8, activation="relu"), L.Dense(7, activation="tanh", use_bias=False), L.Dense(3)], (6,)),
        "dropout": ([L.Dense(8, activation="relu"), L.Dropout(0.5), L.Dense(3)], (6,)),
        "conv_same_valid_stride2": ([L.Conv2D(4, 3, padding="same", activation="relu"),
                                     L.Conv2D(5, 3, strides=2, padding="valid", activation="relu"),
                                     L.Conv2D(6, (2, 3), strides=2, padding="same"), L.Flatten(), L.Dense(3)],
                                    (9, 9, 3)),
        "batch_norm": ([L.Conv2D(4, 3, padding="same"), L.BatchNormalization(), L.ReLU(), L.MaxPooling2D(2),
                        L.Conv2D(4, 3, strides=2, padding="same", use_bias=False), L.BatchNormalization(center=False),
                        L.GlobalAveragePooling2D(), L.Dense(5), L.BatchNormalization(scale=False), L.Dense(3)],
                       (8, 8, 3)),
        # 2x2 positions, K = 9 * 16, C = 16: the Gram form is the cheaper one
        "conv_gram": ([L.Conv2D(16, 3, padding="same", activation="relu"),
                       L.Conv2D(16, 3, padding="same", activation="relu"), L.Flatten(), L.Dense(3)], (2, 2, 2)),
        # a Dense on a 3-d input: its gradient sums over the middle axis
        "dense_3d": ([L.Reshape((4, 3)), L.Dense(5, activation="relu"), L.Flatten(), L.Dense(3)], (12,)),
    }


@pytest.mark.parametrize("kind", ["dense", "dropout", "conv_same_valid_stride2", "batch_norm", "conv_gram", "dense_3d"])
def test_layerwise_equals_the_loop(kind):
    layers, shape = _models()[kind]
    model = _model(layers, shape)
    x, y = _data(shape)
    assert autodiff.grad_sq_norms_method(model) == "layerwise"
    fast = autodiff.per_example_grad_sq_norms(model, x, y, method="layerwise")
    assert fast.shape == (9,) and fast.dtype == np.float64
    # both sum float32 products in different orders: a few float32 roundings of 1e-7 each apart
    np.testing.assert_allclose(fast, autodiff.per_example_grad_sq_norms_loop(model, x, y), rtol=1e-4)
    np.testing.assert_allclose(autodiff.per_example_grad_sq_norms(model, x, y), fast)  # auto picks it


def test_the_gram_form_is_chosen_where_cheaper():
    layers, shape = _models()["conv_gram"]
    plan = autodiff.layerwise_plan(_model(layers, shape))
    assert [step.gram for step in plan.steps if step.kind == "conv"] == [True, True]
    layers, shape = _models()["conv_same_valid_stride2"]
    plan = autodiff.layerwise_plan(_model(layers, shape))
    # 81 and 16 positions: the einsum form; the last conv has 4 positions, K = 30, C = 6: Gram
    assert [step.gram for step in plan.steps if step.kind == "conv"] == [False, False, True]


def test_layerwise_variables_subset():
    """Per-variable norms of the layerwise method add up and equal the loop's."""
    layers, shape = _models()["batch_norm"]
    model = _model(layers, shape)
    x, y = _data(shape)
    whole = autodiff.per_example_grad_sq_norms(model, x, y, method="layerwise")
    parts = sum(autodiff.per_example_grad_sq_norms(model, x, y, variables=[v], method="layerwise")
                for v in model.trainable_variables)
    np.testing.assert_allclose(parts, whole, rtol=1e-5)
    gammas = [v for v in model.trainable_variables if "gamma" in v.path]
    np.testing.assert_allclose(autodiff.per_example_grad_sq_norms(model, x, y, variables=gammas, method="layerwise"),
                               autodiff.per_example_grad_sq_norms_loop(model, x, y, variables=gammas), rtol=1e-5)


def test_a_softmax_model_through_its_logits_model():
    """The logits model of a softmax-Dense model (a pre-activation wrapper) goes layerwise."""
    import keras

    from pgdl_measures.autodiff import model_graph

    L = keras.layers
    model = _model([L.Dense(6, activation="relu"), L.Dense(3, activation="softmax")], (4,))
    logits = model_graph.logits_model(model)
    x, y = _data((4,))
    assert autodiff.grad_sq_norms_method(logits) == "layerwise"
    np.testing.assert_allclose(autodiff.per_example_grad_sq_norms(logits, x, y),
                               autodiff.per_example_grad_sq_norms_loop(logits, x, y), rtol=1e-5)


def test_an_unknown_weighted_layer_falls_back_to_vmap():
    import keras

    L = keras.layers
    model = _model([L.Dense(6), L.LayerNormalization(), L.Dense(3)], (4,))
    x, y = _data((4,))
    assert autodiff.grad_sq_norms_method(model) == "vmap"
    with pytest.raises(ValueError, match="layerwise method does not handle"):
        autodiff.per_example_grad_sq_norms(model, x, y, method="layerwise")
    np.testing.assert_allclose(autodiff.per_example_grad_sq_norms(model, x, y),
                               autodiff.per_example_grad_sq_norms_loop(model, x, y), rtol=1e-5)


def test_a_layer_computing_in_half_precision_falls_back_to_vmap():
    import keras

    L = keras.layers
    model = _model([L.Dense(6, dtype="mixed_bfloat16"), L.Dense(3)], (4,))
    assert autodiff.grad_sq_norms_method(model) == "vmap"


def test_a_nan_weight_gives_nan_norms():
    """Even where the NaN does not reach the logits (TensorFlow's relu(NaN) is 0)."""
    layers, shape = _models()["dense"]
    model = _model(layers, shape)
    bias = model.layers[0].bias
    bias.assign(np.full(tuple(bias.shape), np.nan, np.float32))
    x, y = _data(shape)
    assert np.all(np.isnan(autodiff.per_example_grad_sq_norms(model, x, y, method="layerwise")))


def test_unknown_method_is_refused():
    layers, shape = _models()["dense"]
    x, y = _data(shape)
    with pytest.raises(ValueError, match="unknown method 'fast'"):
        autodiff.per_example_grad_sq_norms(_model(layers, shape), x, y, method="fast")


def test_layerwise_reads_current_weights():
    layers, shape = _models()["conv_same_valid_stride2"]
    model = _model(layers, shape)
    x, y = _data(shape)
    before = autodiff.per_example_grad_sq_norms(model, x, y)
    kernel = model.layers[0].kernel
    kernel.assign(np.asarray(kernel.value) * 2)
    after = autodiff.per_example_grad_sq_norms(model, x, y)
    assert not np.allclose(after, before)
    np.testing.assert_allclose(after, autodiff.per_example_grad_sq_norms_loop(model, x, y), rtol=1e-5)


def test_layerwise_on_the_official_sample_task(toy_path):
    from pgdl_measures.autodiff import model_graph
    from pgdl_measures.tasks import find_tasks

    trained = find_tasks(toy_path)[0].load_model("model_0")
    logits = model_graph.logits_model(trained.model)
    x, y = trained.train.take(16)
    assert autodiff.grad_sq_norms_method(logits) == "layerwise"
    np.testing.assert_allclose(autodiff.per_example_grad_sq_norms(logits, x, y, method="layerwise"),
                               autodiff.per_example_grad_sq_norms_loop(logits, x, y), rtol=1e-5)


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("chunk", [None, 5])
def test_the_vmap_method_still_equals_the_loop(kind, chunk, monkeypatch):
    """``method="vmap"`` (the fallback) on the tiny models that ``"auto"`` now sends layerwise;
    on JAX also with a padded vmap chunk of 5 (12 examples)."""
    from pgdl_measures.testing import tiny_trained_model

    if chunk is not None:
        if autodiff.backend_name() != "jax":
            pytest.skip("JAX backend only")
        from pgdl_measures.autodiff import jax as jax_backend

        monkeypatch.setattr(jax_backend, "CPU_VMAP_CHUNK", chunk)
    trained = tiny_trained_model(kind)
    x, y = trained.train.take(12)
    np.testing.assert_allclose(autodiff.per_example_grad_sq_norms(trained.model, x, y, method="vmap"),
                               autodiff.per_example_grad_sq_norms_loop(trained.model, x, y), rtol=1e-5)
