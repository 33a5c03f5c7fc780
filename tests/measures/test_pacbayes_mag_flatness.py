"""pacbayes_mag_flatness: the noise formula, the bisection, and flatness ordering on two models."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pgdl_measures.measures.pacbayes_mag_flatness import PacBayesMagFlatness, bisect_sigma, noise_std
from pgdl_measures.tasks.data import ArrayDataset
from pgdl_measures.tasks.trained import TrainedModel


def test_noise_std_is_magnitude_aware_with_a_floor():
    w = np.array([0.0, 1.0, -3.0])
    assert noise_std(w, 0.5, 1e-3).tolist() == pytest.approx([1e-3, math.sqrt(0.25 + 1e-6), math.sqrt(2.25 + 1e-6)])


def test_bisection_finds_the_threshold():
    assert bisect_sigma(lambda s: s <= 0.3, 1e-4, 2.0, 40) == pytest.approx(0.3, rel=1e-6)
    assert bisect_sigma(lambda s: True, 1e-4, 2.0, 5) == 2.0
    assert bisect_sigma(lambda s: False, 1e-4, 2.0, 5) == 1e-4


def _separable(scale: float):
    """A linear model on two well-separated blobs; `scale` multiplies its margin, not its decisions."""
    import keras

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 50)
    x = (np.where(y[:, None] == 0, [2.0, 0.0], [0.0, 2.0]) + rng.normal(0, 0.3, (100, 2))).astype(np.float32)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.set_weights([np.eye(2, dtype=np.float32) * scale, np.zeros(2, np.float32)])
    return TrainedModel("m", model, None, ArrayDataset(x, y), task="t")


def test_value_is_invariant_to_scaling_a_linear_model():
    """Magnitude-aware noise scales with the weights, so scaling a linear model's weights (same
    decisions) leaves sigma' unchanged (up to the eps floor)."""
    measure = PacBayesMagFlatness(eps=1e-9, mc_samples=3, rounds=8)
    small, large = measure(_separable(1.0)), measure(_separable(10.0))
    assert small == pytest.approx(large, rel=1e-6)
    assert 0.25 <= small < 1e8


def test_weights_restored_and_bad_parameters_refused():
    from pgdl_measures.errors import PGDLError

    trained = _separable(1.0)
    before = [w.copy() for w in trained.model.get_weights()]
    PacBayesMagFlatness(mc_samples=2, rounds=3)(trained)
    assert all(np.array_equal(a, b) for a, b in zip(before, trained.model.get_weights()))
    with pytest.raises(PGDLError, match="sigma_min"):
        PacBayesMagFlatness(sigma_min=3.0)
