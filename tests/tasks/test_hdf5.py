"""Weights in the tf.keras 2.x HDF5 layout: same layout as tf_keras writes, read exactly by
Keras 3 and by tf_keras (the competition's loader)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from pgdl_measures.tasks.hdf5 import (
    _load_attribute,
    _save_attribute,
    layer_weight_layout,
    read_weights,
    save_weights,
    tf_keras_layer_name,
)
from pgdl_measures.tasks.model_config import build_model

CONFIG = {
    "model_config": [
        {"layer_name": "Conv2D", "filters": 3, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"layer_name": "BatchNormalization"},
        {"layer_name": "MaxPooling2D", "pool_size": 2},
        {"layer_name": "Conv2D", "filters": 4, "kernel_size": 1},
        {"layer_name": "Dropout", "rate": 0.5},
        {"layer_name": "Flatten"},
        {"layer_name": "Dense", "units": 5, "activation": "tanh"},
        {"layer_name": "Dense", "units": 3},
    ],
    "input_shape": [6, 6, 2],
}


def random_weights(model, seed=0):
    """Small random weights; BatchNorm variances positive."""
    rng = np.random.default_rng(seed)
    return [(0.5 + rng.random(w.shape) if "variance" in v.path else rng.normal(0, 0.3, w.shape)).astype(np.float32)
            for w, v in zip(model.get_weights(), model.weights)]


@pytest.fixture
def model():
    m = build_model(CONFIG)
    m.set_weights(random_weights(m))
    return m


def tf_keras_model(config):
    """The competition's model_def_to_keras_sequential + build, in tf.keras 2.x."""
    import tf_keras

    layers = [getattr(tf_keras.layers, d["layer_name"])(**{k: v for k, v in d.items() if k != "layer_name"})
              for d in config["model_config"]]
    model = tf_keras.Sequential(layers)
    model.build([0] + config["input_shape"])
    return model


def layout(path):
    """Root attrs, and per group its weight_names and dataset shapes."""
    with h5py.File(path, "r") as f:
        out = {"layer_names": _load_attribute(f, "layer_names")}
        for name in out["layer_names"]:
            names = _load_attribute(f[name], "weight_names")
            out[name] = [(w, f[name][w].shape, f[name][w].dtype) for w in names]
        out["backend"] = _text(f.attrs["backend"])
    return out


def _text(value):
    return value.decode() if hasattr(value, "decode") else str(value)


def test_layout_is_what_tf_keras_writes(model, tmp_path):
    import tf_keras

    save_weights(tmp_path / "ours.hdf5", model)
    tf_keras.backend.clear_session()  # layer names restart at conv2d, dense, ...
    reference = tf_keras_model(CONFIG)
    reference.save_weights(str(tmp_path / "tf_keras.h5"))
    ours, theirs = layout(tmp_path / "ours.hdf5"), layout(tmp_path / "tf_keras.h5")
    assert ours == theirs
    assert ours["layer_names"][:4] == ["conv2d", "batch_normalization", "max_pooling2d", "conv2d_1"]
    with h5py.File(tmp_path / "ours.hdf5", "r") as f:
        assert _text(f.attrs["keras_version"]) == "2.4.0" and list(f["dropout"].attrs["weight_names"]) == []


def test_keras3_load_weights_restores_exactly(model, tmp_path):
    path = save_weights(tmp_path / "weights.hdf5", model)
    other = build_model(CONFIG)
    other.load_weights(str(path))
    for a, b in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    flat = [array for _, weights in read_weights(path) for _, array in weights]
    for a, b in zip(flat, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_tf_keras_loads_our_file_with_the_same_predictions(model, tmp_path):
    path = save_weights(tmp_path / "weights.hdf5", model)
    legacy = tf_keras_model(CONFIG)
    legacy.load_weights(str(path))
    for a, b in zip(legacy.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(1).normal(size=(7, 6, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(legacy.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_values_override_and_mismatch(model, tmp_path):
    initial = random_weights(model, seed=5)
    save_weights(tmp_path / "init.hdf5", model, values=initial)
    other = build_model(CONFIG)
    other.load_weights(str(tmp_path / "init.hdf5"))
    for a, b in zip(other.get_weights(), initial):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="weight arrays"):
        save_weights(tmp_path / "x.hdf5", model, values=initial[:-1])
    with pytest.raises(ValueError, match="shape"):
        save_weights(tmp_path / "x.hdf5", model, values=[w.T for w in initial])


def test_official_sample_weights_round_trip(toy_path, tmp_path):
    from pgdl_measures.tasks.model_config import read_config

    folder = toy_path / "model_0"
    model = build_model(read_config(folder / "config.json"))
    model.load_weights(str(folder / "weights.hdf5"))
    theirs = [a for _, weights in read_weights(folder / "weights.hdf5") for _, a in weights]
    save_weights(tmp_path / "w.hdf5", model)
    ours = [a for _, weights in read_weights(tmp_path / "w.hdf5") for _, a in weights]
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


def test_long_attributes_are_chunked_as_keras_does(tmp_path):
    from keras.src.legacy.saving.legacy_h5_format import load_attributes_from_hdf5_group

    names = [f"layer_with_a_long_name_{i:05d}".encode() for i in range(3000)]  # ~100 KB
    with h5py.File(tmp_path / "a.h5", "w") as f:
        _save_attribute(f, "layer_names", names)
        assert "layer_names" not in f.attrs and "layer_names1" in f.attrs
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert _load_attribute(f, "layer_names") == [n.decode() for n in names]
        assert load_attributes_from_hdf5_group(f, "layer_names") == [n.decode() for n in names]


def test_names():
    assert tf_keras_layer_name("Conv2D") == "conv2d"
    assert tf_keras_layer_name("MaxPooling2D") == "max_pooling2d"
    assert tf_keras_layer_name("GlobalAveragePooling2D") == "global_average_pooling2d"
    assert tf_keras_layer_name("BatchNormalization") == "batch_normalization"
    model = build_model(CONFIG)
    assert [name for name, _, _ in layer_weight_layout(model)][-2:] == ["dense", "dense_1"]
