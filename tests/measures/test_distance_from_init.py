"""distance_from_init: the pure function, analytic checks, and the official sample against h5py."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from pgdl_measures.measures.base import MeasureError
from pgdl_measures.measures.distance_from_init import DistanceFromInit, squared_distance
from pgdl_measures.tasks import find_tasks
from pgdl_measures.testing import tiny_trained_model


def hdf5_arrays(path) -> list[np.ndarray]:
    """Every weight array of a tf.keras 2.x HDF5 weights file, in its layer/weight order, read
    with h5py alone (no Keras): the independent reference."""
    arrays = []
    with h5py.File(path, "r") as f:
        for layer in f.attrs["layer_names"]:
            group = f[layer.decode()]
            for weight in group.attrs["weight_names"]:
                arrays.append(np.array(group[weight.decode()], dtype=np.float64))
    return arrays


def test_squared_distance_by_hand():
    weights = [np.array([1.0, 2.0]), np.array([[0.0, 1.0], [1.0, -3.0]])]
    initial = [np.array([0.0, 0.0]), np.array([[0.0, 0.0], [0.0, -1.0]])]
    assert squared_distance(weights, initial) == 1 + 4 + 1 + 1 + 4


def test_squared_distance_of_arrays_to_themselves_is_zero():
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=4)]
    assert squared_distance(weights, [w.copy() for w in weights]) == 0.0


def test_squared_distance_accumulates_in_float64():
    weights = [np.full(10, 1e-4, dtype=np.float32) + np.float32(1.0)]
    initial = [np.ones(10, dtype=np.float32)]
    expected = 10 * (float(weights[0][0]) - 1.0) ** 2
    assert squared_distance(weights, initial) == pytest.approx(expected, rel=1e-12)


def test_squared_distance_rejects_mismatched_lists():
    with pytest.raises(ValueError, match="2 weight arrays but the initial weights have 1"):
        squared_distance([np.zeros(2), np.zeros(3)], [np.zeros(2)])
    with pytest.raises(ValueError, match=r"weight array 1 has shape \(3,\) but its initial value has shape \(4,\)"):
        squared_distance([np.zeros(2), np.zeros(3)], [np.zeros(2), np.zeros(4)])


def test_distance_of_a_model_to_itself_is_zero():
    trained = tiny_trained_model("conv")
    trained.initial_weights = [np.array(w) for w in trained.model.get_weights()]
    assert DistanceFromInit()(trained) == 0.0


def test_counts_non_trainable_weights():
    """Batch-norm moving statistics count, as in model.get_weights() (the competition's choice)."""
    trained = tiny_trained_model("conv")
    weights = trained.model.get_weights()
    expected = sum(float(np.sum((np.float64(w) - np.float64(w0)) ** 2))
                   for w, w0 in zip(weights, trained.initial_weights))
    trainable_only = sum(float(np.sum((np.float64(v.numpy()) - np.float64(w0)) ** 2))
                         for v, w0 in zip(trained.model.weights, trained.initial_weights) if v.trainable)
    value = DistanceFromInit()(trained)
    assert value == pytest.approx(expected, rel=1e-12)
    assert value > trainable_only


def test_needs_initial_weights():
    trained = tiny_trained_model("dense", with_initial_weights=False)
    with pytest.raises(MeasureError, match="needs the initial weights"):
        DistanceFromInit()(trained)


def test_mismatched_initial_weights_is_a_measure_error():
    trained = tiny_trained_model("dense")
    trained.initial_weights = trained.initial_weights[:-1]
    with pytest.raises(MeasureError, match="distance_from_init.*initial weights have"):
        DistanceFromInit()(trained)


def test_official_sample_matches_hdf5_by_hand(toy_path):
    task = find_tasks(toy_path)[0]
    for model_id in task.model_ids():
        trained = task.load_model(model_id, with_data=False)
        folder = toy_path / model_id
        final, initial = hdf5_arrays(folder / "weights.hdf5"), hdf5_arrays(folder / "weights_init.hdf5")
        expected = sum(float(np.sum((w - w0) ** 2)) for w, w0 in zip(final, initial))
        assert expected > 0
        assert DistanceFromInit()(trained) == pytest.approx(expected, rel=1e-9), model_id
