"""The autodiff interface (pgdl_measures.autodiff) on the running Keras backend, and the
agreement of the two backends on the same model and weights.

Run once per backend: ``KERAS_BACKEND=jax python -m pytest tests/autodiff``. The cross-backend
test runs both backends in subprocesses whichever backend runs the suite.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pgdl_measures import autodiff
from pgdl_measures.testing import tiny_trained_model


def _np(variable):
    """A Keras variable as float64 numpy, on either backend (without numpy's copy= warning)."""
    value = variable.value
    return np.array(value.numpy() if hasattr(value, "numpy") else value, np.float64)


@pytest.fixture(params=["dense", "conv"])
def trained(request):
    return tiny_trained_model(request.param)


def test_backend_module_matches_keras():
    import keras

    assert autodiff.backend_name() == keras.backend.backend()
    assert autodiff.backend_module().__name__ == autodiff.MODULES[keras.backend.backend()]


def test_unknown_backend_is_refused():
    with pytest.raises(NotImplementedError, match="torch"):
        autodiff.backend_module("torch")


@pytest.mark.parametrize("method", ["auto", "layerwise", "vmap"])
def test_vectorized_grad_norms_equal_the_loop(trained, method):
    """The vectorized per-example gradients equal a loop of single-example gradients (the conv
    model has batch normalization with non-trivial statistics: inference mode per example)."""
    x, y = trained.train.take(12)
    fast = autodiff.per_example_grad_sq_norms(trained.model, x, y, method=method)
    slow = autodiff.per_example_grad_sq_norms_loop(trained.model, x, y)
    assert fast.shape == (12,) and fast.dtype == np.float64
    np.testing.assert_allclose(fast, slow, rtol=1e-5)
    assert np.all(fast > 0)


@pytest.mark.parametrize("chunk", [5, 64])
def test_jax_vmap_width(trained, chunk, monkeypatch):
    """On JAX the CPU vmaps one example per call (CPU_VMAP_CHUNK); an accelerator vmaps the
    whole batch. Force wider vmaps here (12 examples: a padded chunk of 5, one chunk of 64)."""
    if autodiff.backend_name() != "jax":
        pytest.skip("JAX backend only")
    from pgdl_measures.autodiff import jax as jax_backend

    monkeypatch.setattr(jax_backend, "CPU_VMAP_CHUNK", chunk)
    x, y = trained.train.take(12)
    np.testing.assert_allclose(autodiff.per_example_grad_sq_norms(trained.model, x, y, method="vmap"),
                               autodiff.per_example_grad_sq_norms_loop(trained.model, x, y), rtol=1e-5)


def test_op_by_op_loop_equals_the_compiled_loop(trained):
    x, y = trained.train.take(3)
    np.testing.assert_allclose(autodiff.per_example_grad_sq_norms_loop(trained.model, x, y, compiled=False),
                               autodiff.per_example_grad_sq_norms_loop(trained.model, x, y), rtol=1e-5)


def test_grad_norms_of_a_linear_softmax_regression():
    """Analytic: for logits z = xW + b, ||dl/dW||^2 + ||dl/db||^2 = (||x||^2 + 1) ||p - e_y||^2."""
    import keras

    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4)])
    rng = np.random.default_rng(3)
    x = rng.normal(size=(7, 5)).astype(np.float32)
    y = rng.integers(0, 4, 7)
    z = x.astype(np.float64) @ _np(model.layers[0].kernel) + _np(model.layers[0].bias)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(7), y] -= 1
    expected = ((x.astype(np.float64) ** 2).sum(1) + 1) * (p ** 2).sum(1)
    np.testing.assert_allclose(autodiff.per_example_grad_sq_norms(model, x, y), expected, rtol=1e-5)


def test_variables_subset(trained):
    """`variables` restricts the norm to those variables; the parts add up to the whole."""
    model = trained.model
    x, y = trained.train.take(8)
    variables = model.trainable_variables
    head, tail = variables[:2], variables[2:]
    whole = autodiff.per_example_grad_sq_norms(model, x, y)
    parts = (autodiff.per_example_grad_sq_norms(model, x, y, variables=head)
             + autodiff.per_example_grad_sq_norms(model, x, y, variables=tail))
    np.testing.assert_allclose(parts, whole, rtol=1e-5)
    np.testing.assert_allclose(autodiff.per_example_grad_sq_norms(model, x, y, variables=head),
                               autodiff.per_example_grad_sq_norms_loop(model, x, y, variables=head), rtol=1e-5)


def test_foreign_variable_is_refused(trained):
    other = tiny_trained_model("dense", seed=5).model
    x, y = trained.train.take(2)
    with pytest.raises(ValueError, match="not trainable variables"):
        autodiff.per_example_grad_sq_norms(trained.model, x, y, variables=other.trainable_variables[:1])


def test_compiled_functions_are_cached_and_read_current_weights(trained):
    """One compiled function per model and input shape, reused across batches; it reads the
    weights at call time (scaling the last layer by 2 scales its gradient's norm as expected)."""
    model = trained.model
    x, y = trained.train.take(8)
    before = autodiff.per_example_grad_sq_norms(model, x, y)
    cache = autodiff.model_cache(model)
    keys = set(cache)
    assert keys, "nothing was cached on the model"
    autodiff.per_example_grad_sq_norms(model, x[:8], y[:8])
    assert set(cache) == keys
    original = [_np(v) for v in model.trainable_variables]
    try:
        for v in model.trainable_variables:
            v.assign((_np(v) * 0.5).astype(np.float32))
        after = autodiff.per_example_grad_sq_norms(model, x, y)
        assert set(cache) == keys
        assert not np.allclose(after, before)
        np.testing.assert_allclose(after, autodiff.per_example_grad_sq_norms_loop(model, x, y), rtol=1e-5)
    finally:
        for v, value in zip(model.trainable_variables, original):
            v.assign(value.astype(np.float32))
    np.testing.assert_allclose(autodiff.per_example_grad_sq_norms(model, x, y), before, rtol=1e-6)


def test_input_jacobian_of_a_linear_map():
    """Analytic: for f(x) = xW + b the Jacobian is W^T for every example; for f(x, e) = (x+e)W
    it is W^T for both inputs."""
    import keras

    keras.utils.set_random_seed(1)
    dense = keras.layers.Dense(3)
    x_in, e_in = keras.Input((4,)), keras.Input((4,))
    model = keras.Model([x_in, e_in], dense(keras.ops.add(x_in, e_in)))
    w = _np(dense.kernel)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    sums = autodiff.input_jacobian_sq_sums(model, [x, np.zeros_like(x)])
    assert sums.shape == (5, 2) and sums.dtype == np.float64
    np.testing.assert_allclose(sums, np.full((5, 2), np.sum(w ** 2)), rtol=1e-6)


def test_input_jacobian_of_an_elementwise_map():
    """Analytic: f(x) = tanh(x) (C = d = 3) has Jacobian diag(1 - tanh(x)^2)."""
    import keras

    x_in = keras.Input((3,))
    model = keras.Model(x_in, keras.layers.Activation("tanh")(x_in))
    x = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
    expected = np.sum((1 - np.tanh(x.astype(np.float64)) ** 2) ** 2, axis=1)
    np.testing.assert_allclose(autodiff.input_jacobian_sq_sums(model, [x])[:, 0], expected, rtol=1e-5)


# -- the two backends agree ------------------------------------------------------------------

_CHILD = r"""
import json, sys
import numpy as np
import keras
from pgdl_measures.tasks.data import ArrayDataset
from pgdl_measures.registry import get_measure
from pgdl_measures.tasks import TrainedModel

def build(kind):
    L = keras.layers
    if kind == "dense":
        layers = [L.Dense(8, activation="relu"), L.Dropout(0.3), L.Dense(3, activation="softmax")]
        shape = (6,)
    else:
        layers = [L.Conv2D(4, 3, padding="same"), L.BatchNormalization(), L.ReLU(), L.MaxPooling2D(2),
                  L.Conv2D(4, 3, activation="relu"), L.Flatten(), L.Dense(5, activation="relu"), L.Dense(3)]
        shape = (8, 8, 3)
    return keras.Sequential([keras.Input(shape)] + layers), shape

out = {}
for kind in ("dense", "conv"):
    model, shape = build(kind)
    rng = np.random.RandomState(7)
    for v in model.weights:  # the same weights on both backends, from numpy
        size = tuple(v.shape)
        value = rng.uniform(0.5, 1.5, size) if "variance" in v.path else rng.normal(0, 0.5, size)
        v.assign(value.astype("float32"))
    x = rng.normal(size=(40,) + shape).astype("float32")
    y = rng.randint(0, 3, 40)
    trained = TrainedModel("model_" + kind, model, None, ArrayDataset(x, y), task="cross")
    out[kind] = {
        "agn": get_measure("agn", batch_size=16)(trained),
        "gradient_norm": get_measure("gradient_norm", batch_size=16)(trained),
        "jacobian_norm": get_measure("jacobian_norm", num_batches=3, batch_size=16)(trained),
    }
out["tensorflow_imported"] = "tensorflow" in sys.modules
out["backend"] = keras.backend.backend()
print("RESULT " + json.dumps(out))
"""


def _run_child(backend_name: str) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend_name, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
               JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"{backend_name} child failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return json.loads(lines[-1][len("RESULT "):])


@pytest.mark.one_backend  # each backend runs in its own child
@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("jax") is None,
                    reason="needs both TensorFlow and JAX installed")
def test_backends_agree_on_the_same_weights():
    """agn, gradient_norm and jacobian_norm give the same value (rtol 1e-4) on TensorFlow and
    JAX for the same model and weights (a softmax dense model with dropout; a conv model with
    batch normalization); and the JAX run never imports TensorFlow."""
    results = {name: _run_child(name) for name in ("tensorflow", "jax")}
    assert results["tensorflow"]["backend"] == "tensorflow" and results["jax"]["backend"] == "jax"
    for kind in ("dense", "conv"):
        for measure, value in results["tensorflow"][kind].items():
            other = results["jax"][kind][measure]
            assert np.isfinite(value) and value > 0
            np.testing.assert_allclose(other, value, rtol=1e-4, err_msg=f"{measure} on the {kind} model")
    assert not results["jax"]["tensorflow_imported"], "the JAX path imported tensorflow"


def _framework_precision():
    """What the running framework will do with float32 matrix products on an Ampere+ GPU:
    TensorFlow's TensorFloat-32 switch, or JAX's default matmul precision."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.config.jax_default_matmul_precision
    import tensorflow as tf

    return tf.config.experimental.tensor_float_32_execution_enabled()


def _precision_probe():
    """A measure (agn, renamed) that records the framework's precision setting while it computes."""
    from pgdl_measures.measures.agn import AGN

    class Probe(AGN):
        name = "precision_probe"
        seen: list = []

        def compute(self, trained):
            Probe.seen.append(_framework_precision())
            return super().compute(trained)

    return Probe


@pytest.mark.parametrize("allow", [None, "1"])
def test_measures_run_in_full_float32(monkeypatch, allow):
    """Measure.__call__ turns TensorFloat-32 off (TF) / asks for the highest matmul precision
    (JAX) while the measure computes, and restores the previous setting afterwards;
    PGDL_ALLOW_TF32=1 leaves the framework's default alone."""
    import keras

    if allow is None:
        monkeypatch.delenv(autodiff.ALLOW_TF32_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(autodiff.ALLOW_TF32_VARIABLE, allow)
    before = _framework_precision()
    probe = _precision_probe()
    trained = tiny_trained_model("conv")
    value = probe()(trained)
    assert np.isfinite(value) and value > 0
    assert _framework_precision() == before
    full = "highest" if keras.backend.backend() == "jax" else False
    assert probe.seen == ([before] if allow else [full])
    assert autodiff.float32_mode() == ("tf32-allowed" if allow else "float32")


def test_full_float32_gives_the_same_values_on_cpu(trained):
    """On a CPU the context changes nothing but the setting: the same per-example norms
    (a function first traced outside the context is traced again inside on JAX)."""
    x, y = trained.train.take(8)
    outside = autodiff.per_example_grad_sq_norms(trained.model, x, y)
    with autodiff.full_float32():
        inside = autodiff.per_example_grad_sq_norms(trained.model, x, y)
    np.testing.assert_allclose(inside, outside, rtol=1e-6)
