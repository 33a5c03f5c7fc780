"""gradient_norm: vectorized per-example gradients against a per-example loop, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from pgdl_measures import autodiff
from pgdl_measures.errors import PGDLError
from pgdl_measures.measures.agn import AGN
from pgdl_measures.measures.base import MeasureError
from pgdl_measures.measures.gradient_norm import GradientNorm, mean_grad_sq_norm
from pgdl_measures.tasks import TrainedModel
from pgdl_measures.tasks.data import ArrayDataset
from pgdl_measures.testing import tiny_trained_model


def _loop_reference(model, data, n=None):
    x, y = data.take(n)
    return float(np.mean(autodiff.per_example_grad_sq_norms_loop(model, x, y)))


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_gradient_norm_equals_the_per_example_loop(kind):
    trained = tiny_trained_model(kind)
    value = GradientNorm(batch_size=10)(trained)  # 48 examples: a padded last batch
    np.testing.assert_allclose(value, _loop_reference(trained.model, trained.train), rtol=1e-5)


def test_batch_size_does_not_change_the_value():
    trained = tiny_trained_model("conv")
    np.testing.assert_allclose(GradientNorm(batch_size=5)(trained), GradientNorm(batch_size=48)(trained), rtol=1e-5)


def test_max_examples_uses_the_first_examples():
    trained = tiny_trained_model("dense")
    np.testing.assert_allclose(GradientNorm(max_examples=9, batch_size=4)(trained),
                               _loop_reference(trained.model, trained.train, 9), rtol=1e-5)


def test_gradient_norm_bounds_agn():
    """The last layer's share of the gradient (AGN) is at most the whole gradient norm."""
    trained = tiny_trained_model("conv")
    assert AGN()(trained) <= GradientNorm()(trained) * (1 + 1e-6)


def test_a_softmax_output_is_read_as_logits():
    import keras

    L = keras.layers
    keras.utils.set_random_seed(0)
    logits = keras.Sequential([keras.Input((4,)), L.Dense(5, activation="relu"), L.Dense(3)])
    probs = keras.Sequential([keras.Input((4,)), L.Dense(5, activation="relu"), L.Dense(3), L.Softmax()])
    probs.set_weights(logits.get_weights())
    rng = np.random.default_rng(0)
    data = ArrayDataset(rng.normal(size=(20, 4)), rng.integers(0, 3, 20))
    np.testing.assert_allclose(mean_grad_sq_norm(probs, data, batch_size=8),
                               mean_grad_sq_norm(logits, data, batch_size=8), rtol=1e-6)


def test_empty_dataset_is_a_measure_error():
    with pytest.raises(MeasureError, match=r"measure 'gradient_norm' on contract/model_dense: .*empty"):
        GradientNorm()(tiny_trained_model("dense", empty_train=True))


def test_label_outside_the_outputs_is_a_measure_error():
    trained = tiny_trained_model("dense")
    x, _ = trained.train.take(3)
    bad = TrainedModel("model_0", trained.model, train=ArrayDataset(x, np.array([0, 7, 1])))
    with pytest.raises(MeasureError, match=r"'gradient_norm' on model_0: label 7 is outside \[0, 3\)"):
        GradientNorm()(bad)


def test_nan_weights_are_a_measure_error():
    trained = tiny_trained_model("dense")
    bias = trained.model.layers[0].bias
    bias.assign(np.full(tuple(bias.shape), np.nan, np.float32))
    with pytest.raises(MeasureError, match="non-finite"):
        GradientNorm()(trained)


def test_gradient_norm_on_the_official_sample_task(toy_path):
    from pgdl_measures.tasks import find_tasks

    trained = find_tasks(toy_path)[0].load_model("model_0")
    value = GradientNorm(max_examples=64)(trained)
    assert np.isfinite(value) and value > 0
    np.testing.assert_allclose(value, _loop_reference(trained.model, trained.train, 64), rtol=1e-5)


def test_bad_parameters_are_refused():
    with pytest.raises(PGDLError, match=r"measure 'gradient_norm': parameter max_examples must be a positive integer"):
        GradientNorm(max_examples=-3)
