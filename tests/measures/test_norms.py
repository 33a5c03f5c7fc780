"""Jiang et al.'s norm and margin measures: spectral norms against NumPy's SVD, Frobenius sums
exact, margins on hand-built logits, path norm by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pgdl_measures.measures import _norms
from pgdl_measures.measures.inverse_margin import InverseMargin
from pgdl_measures.measures.path_norm import LogPathNorm, log_path_norm
from pgdl_measures.measures.spectral_norms import LogProdOfSpec, LogProdOfSpecOverMargin, SumOfSpec, SumOfSpecOverMargin
from pgdl_measures.measures.sum_of_fro import SumOfFro
from pgdl_measures.tasks.data import ArrayDataset
from pgdl_measures.tasks.trained import TrainedModel
from pgdl_measures.testing import tiny_trained_model


def _kernels(model):
    return [np.asarray(layer.kernel, np.float64) for layer in model.layers if hasattr(layer, "kernel")]


def test_matrices_reshape_convolutions():
    trained = tiny_trained_model("conv")
    shapes = [m.shape for m in _norms.weight_matrices(trained.model)]
    assert shapes == [(27, 4), (36, 4), (4, 3)]


def test_spectral_measures_equal_numpy_svd():
    trained = tiny_trained_model("conv")
    sigmas = [np.linalg.svd(k.reshape(-1, k.shape[-1]), compute_uv=False)[0] for k in _kernels(trained.model)]
    d = len(sigmas)
    log_prod = sum(2 * math.log(s) for s in sigmas)
    assert LogProdOfSpec()(trained) == pytest.approx(log_prod, rel=1e-9)
    assert SumOfSpec()(trained) == pytest.approx(d * math.exp(log_prod / d), rel=1e-9)


def test_sum_of_fro_exact():
    trained = tiny_trained_model("dense")
    fro = [float(np.sum(k ** 2)) for k in _kernels(trained.model)]
    assert SumOfFro()(trained) == pytest.approx(2 * math.sqrt(fro[0] * fro[1]), rel=1e-12)


def _identity_model(z: np.ndarray, y: np.ndarray):
    """A model whose logits are its inputs (Dense with the identity kernel): margins by hand."""
    import keras

    model = keras.Sequential([keras.Input((z.shape[1],)), keras.layers.Dense(z.shape[1], use_bias=False)])
    model.set_weights([np.eye(z.shape[1], dtype=np.float32)])
    return TrainedModel("identity", model, None, ArrayDataset(z.astype(np.float32), y), task="t")


def test_margin_measures_on_hand_built_logits():
    # margins 1, 2, ..., 10 (class 0 ahead of class 1 by i)
    z = np.array([[float(i), 0.0] for i in range(1, 11)])
    y = np.zeros(10, np.int64)
    trained = _identity_model(z, y)
    gamma = float(np.percentile(np.arange(1, 11), 10))  # 1.9
    assert InverseMargin()(trained) == pytest.approx(1 / gamma ** 2, rel=1e-6)
    # the identity kernel's spectral norm is 1
    assert LogProdOfSpecOverMargin()(trained) == pytest.approx(-2 * math.log(gamma), rel=1e-6)
    assert SumOfSpecOverMargin()(trained) == pytest.approx(1 / gamma ** 2, rel=1e-6)


def test_non_positive_margin_is_floored():
    z = np.array([[0.0, 1.0]] * 5)
    trained = _identity_model(z, np.zeros(5, np.int64))
    assert InverseMargin(min_margin=0.01)(trained) == pytest.approx(1e4)


def _dense_net(with_batch_norm: bool):
    import keras

    keras.utils.set_random_seed(0)
    layers = [keras.layers.Dense(3, activation="relu")]
    if with_batch_norm:
        layers.append(keras.layers.BatchNormalization())
    layers.append(keras.layers.Dense(2))
    model = keras.Sequential([keras.Input((2,))] + layers)
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) if w.ndim > 1 or "gamma" in v.path
                       else (rng.uniform(0.5, 2, w.shape).astype(np.float32) if "variance" in v.path
                             else rng.normal(size=w.shape).astype(np.float32))
                       for w, v in zip(model.get_weights(), model.weights)])
    return model


def test_path_norm_by_hand():
    model = _dense_net(False)
    w1, _, w2, _ = [np.float64(w) for w in model.get_weights()]
    paths = sum(w1[i, j] ** 2 * w2[j, k] ** 2 for i in range(2) for j in range(3) for k in range(2))
    assert log_path_norm(model) == pytest.approx(math.log(paths), rel=1e-6)


def test_path_norm_folds_batch_norm_scale():
    model = _dense_net(True)
    bn = model.layers[1]
    scale = (np.float64(bn.gamma) / np.sqrt(np.float64(bn.moving_variance) + bn.epsilon)) ** 2
    w1, w2 = np.float64(model.layers[0].kernel), np.float64(model.layers[2].kernel)
    paths = np.ones(2) @ (w1 ** 2) @ np.diag(scale) @ (w2 ** 2) @ np.ones(2)
    assert log_path_norm(model) == pytest.approx(math.log(paths), rel=1e-6)


def test_path_norm_is_invariant_to_relu_rescaling():
    trained = tiny_trained_model("dense")
    before = LogPathNorm()(trained)
    w1, b1, w2, b2 = trained.model.get_weights()
    trained.model.set_weights([w1 * 4.0, b1 * 4.0, w2 / 4.0, b2])
    assert LogPathNorm()(trained) == pytest.approx(before, rel=1e-6)
    assert math.isfinite(LogPathNorm()(tiny_trained_model("conv")))


def test_path_norm_ignores_the_activation():
    """A function of the weights alone: a tanh network's path norm is its ReLU twin's."""
    import keras

    nets = {}
    for activation in ("relu", "tanh"):
        keras.utils.set_random_seed(0)
        nets[activation] = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation=activation),
                                             keras.layers.Dense(2, activation="softmax")])
    nets["tanh"].set_weights(nets["relu"].get_weights())
    assert log_path_norm(nets["tanh"]) == pytest.approx(log_path_norm(nets["relu"]), rel=1e-9)
    w1, _, w2, _ = [np.float64(w) for w in nets["relu"].get_weights()]
    assert log_path_norm(nets["relu"]) == pytest.approx(math.log(np.sum((w1 ** 2) @ (w2 ** 2))), rel=1e-6)
