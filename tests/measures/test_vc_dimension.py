"""vc_dimension: the bound against hand computations, kernel counting, the input-size option."""

from __future__ import annotations

import math

import pytest

from pgdl_measures.measures.vc_dimension import (
    COMPETITION_SPATIAL_SIZE,
    VCDimension,
    kernel_shapes,
    spatial_size_of,
    vc_dimension_bound,
)
from pgdl_measures.tasks import TrainedModel, find_tasks
from pgdl_measures.testing import tiny_trained_model


def small_cnn(input_shape=(32, 32, 3)):
    import keras

    return keras.Sequential([
        keras.Input(shape=input_shape),
        keras.layers.Conv2D(16, 3, activation="relu"),      # kernel 3*3*3*16  = 432
        keras.layers.BatchNormalization(),                   # not a kernel
        keras.layers.Conv2D(32, 3, activation="relu"),      # kernel 3*3*16*32 = 4608
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10),                              # kernel 32*10     = 320
    ])


def test_bound_for_one_dense_layer_by_hand():
    # d = 1 kernel, P = 3 * 2 = 6 entries, s = 1024: 1 + 2 * 1 * 6 * ln(22 * 1 * 1024)
    assert vc_dimension_bound([(3, 2)]) == pytest.approx(1 + 12 * math.log(22528), rel=1e-15)


def test_bound_for_a_cnn_by_hand():
    shapes = [(3, 3, 3, 16), (3, 3, 16, 32), (32, 10)]
    # d = 3, P = 432 + 4608 + 320 = 5360, s = 1024
    expected = 3 + 2 * 3 * 5360 * math.log(22 * 3 * 1024)
    assert expected == pytest.approx(357_658.4298, rel=1e-9)
    assert vc_dimension_bound(shapes) == pytest.approx(expected, rel=1e-15)
    assert vc_dimension_bound(shapes, spatial_size=64) == pytest.approx(3 + 32160 * math.log(22 * 3 * 64), rel=1e-15)


def test_bound_rejects_degenerate_input():
    with pytest.raises(ValueError, match="no dense or convolutional kernel"):
        vc_dimension_bound([])
    with pytest.raises(ValueError, match="spatial_size must be at least 1"):
        vc_dimension_bound([(3, 2)], spatial_size=0)
    with pytest.raises(ValueError, match="no entries"):
        vc_dimension_bound([(0, 2)])


@pytest.mark.parametrize("shape, size", [((32, 32, 3), 1024), ((28, 28, 1), 784), ((3,), 1), ((100, 4), 100)])
def test_spatial_size_of(shape, size):
    assert spatial_size_of(shape) == size


def test_spatial_size_of_unknown_dimension():
    with pytest.raises(ValueError, match="unknown spatial dimension"):
        spatial_size_of((None, 32, 3))


def test_kernel_shapes_counts_conv_and_dense_kernels_only():
    assert kernel_shapes(small_cnn()) == [(3, 3, 3, 16), (3, 3, 16, 32), (32, 10)]


def test_measure_on_a_cnn_equals_the_hand_computation():
    trained = TrainedModel("model_1", small_cnn())
    assert VCDimension()(trained) == pytest.approx(3 + 32160 * math.log(22 * 3 * 1024), rel=1e-15)


def test_competition_size_is_used_whatever_the_input():
    small = TrainedModel("model_1", small_cnn(input_shape=(16, 16, 3)))
    assert COMPETITION_SPATIAL_SIZE == 32 * 32
    assert VCDimension()(small) == pytest.approx(3 + 32160 * math.log(22 * 3 * 1024), rel=1e-15)
    assert VCDimension(use_input_size=True)(small) == pytest.approx(3 + 32160 * math.log(22 * 3 * 256), rel=1e-15)


def test_value_depends_on_shapes_not_weights():
    a, b = tiny_trained_model("conv", seed=0), tiny_trained_model("conv", seed=5)
    assert VCDimension()(a) == VCDimension()(b)


def test_official_sample_by_hand(toy_path):
    task = find_tasks(toy_path)[0]
    trained = task.load_model("model_0", with_data=False)  # Dense(64) -> Dense(2) on 3 features
    # d = 2, P = 3*64 + 64*2 = 320
    assert VCDimension()(trained) == pytest.approx(2 + 2 * 2 * 320 * math.log(22 * 2 * 1024), rel=1e-15)
    assert VCDimension(use_input_size=True)(trained) == pytest.approx(2 + 1280 * math.log(44), rel=1e-15)
