"""The trackers equal the measures on the same weights: exact AGN = `agn`; online AGN at (almost)
fixed weights = `agn`; GN over every example and iteration = iterations x `gradient_norm`."""

from __future__ import annotations

import numpy as np
import pytest

from pgdl_measures.errors import PGDLError
from pgdl_measures.measures.agn import AGN
from pgdl_measures.measures.gradient_norm import GradientNorm
from pgdl_measures.tasks.data import ArrayDataset
from pgdl_measures.tasks.trained import TrainedModel
from pgdl_measures.training.config import TrainConfig
from pgdl_measures.training.fit import train
from pgdl_measures.training.models import build


def _on_train(model, data):
    return TrainedModel("m", model, train=ArrayDataset(data.x_train, data.y_train))


def test_exact_agn_is_the_agn_measure_after_each_epoch(small_data, small_mlp):
    model = small_mlp(small_data)
    result = train(model, small_data, TrainConfig(epochs=2, batch_size=50), exact_agn=True)
    assert result.history["agn"][-1] == pytest.approx(AGN()(_on_train(model, small_data)), rel=1e-9)
    assert result.summary()["agn_sum"] == pytest.approx(sum(result.history["agn"]))


def test_online_agn_and_gn_at_fixed_weights_equal_the_measures(small_data, small_mlp):
    model = small_mlp(small_data)
    at_start = _on_train(model, small_data)
    agn, gn = AGN()(at_start), GradientNorm()(at_start)
    still = TrainConfig(epochs=1, batch_size=50, learning_rate=1e-9, momentum=0.0, weight_decay=0.0,
                        schedule="constant")
    result = train(model, small_data, still, online_agn=True, gn={})
    assert result.history["online_agn"][0] == pytest.approx(agn, rel=1e-4)
    steps = int(np.ceil(len(small_data.y_train) / 50))
    assert result.history["gn"][0] == pytest.approx(steps * gn, rel=1e-4)  # Eq. 4 over the epoch's iterations


def test_online_agn_trains_the_model_like_plain_training(small_data, small_mlp):
    config = TrainConfig(epochs=1, batch_size=50)
    plain, head = small_mlp(small_data), small_mlp(small_data)
    a = train(plain, small_data, config)
    b = train(head, small_data, config, online_agn=True)
    np.testing.assert_allclose(a.history["loss"], b.history["loss"], rtol=1e-4)
    np.testing.assert_allclose(a.history["accuracy"], b.history["accuracy"], rtol=1e-6)


def test_gn_subsample_scales_by_iterations(small_data, small_mlp):
    from pgdl_measures.training.trackers import GradientNormTracker

    model = small_mlp(small_data)
    result = train(model, small_data, TrainConfig(epochs=2, batch_size=50), gn={"examples": 30, "iterations": 2})
    assert len(result.history["gn"]) == 2 and all(v > 0 for v in result.history["gn"])
    tracker = GradientNormTracker(model, small_data.x_train, small_data.y_train, examples=30, iterations=2)
    assert "m = 30" in tracker.estimator() and "s = 2" in tracker.estimator()


def test_agn_trackers_on_a_pooled_head_equal_the_measure(small_data):
    """NiN's head (linear 1x1 Conv2D, then global average pooling) is a Dense on the pooled
    features: the exact and the online AGN trackers follow it as they follow a Dense."""
    import keras

    keras.utils.set_random_seed(0)
    nin = build("nin", small_data.input_shape, small_data.num_classes, width=4, depth=1)
    agn = AGN()(_on_train(nin, small_data))
    still = TrainConfig(epochs=1, batch_size=50, learning_rate=1e-9, momentum=0.0, weight_decay=0.0,
                        schedule="constant")
    result = train(nin, small_data, still, online_agn=True, exact_agn=True)
    assert result.history["online_agn"][0] == pytest.approx(agn, rel=1e-4)
    assert result.history["agn"][0] == pytest.approx(AGN()(_on_train(nin, small_data)), rel=1e-9)


def test_agn_trackers_need_a_final_linear_layer(small_data):
    import keras

    keras.utils.set_random_seed(0)
    L = keras.layers
    model = keras.Sequential([keras.Input(small_data.input_shape), L.Conv2D(small_data.num_classes, 3),
                              L.GlobalAveragePooling2D()])
    for option in ({"exact_agn": True}, {"online_agn": True}):
        with pytest.raises(PGDLError, match="Dense"):
            train(model, small_data, TrainConfig(epochs=1), **option)
