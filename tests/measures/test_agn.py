"""AGN: Goodfellow's identity against autodiff, the softmax variants, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from pgdl_measures import autodiff
from pgdl_measures.autodiff import model_graph
from pgdl_measures.errors import PGDLError
from pgdl_measures.measures.agn import AGN, agn_per_example, softmax
from pgdl_measures.measures.base import MeasureError
from pgdl_measures.tasks import TrainedModel
from pgdl_measures.tasks.data import ArrayDataset
from pgdl_measures.testing import tiny_trained_model


def _sequential(layers, shape, name="m"):
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input(shape)] + layers, name=name)


def _data(shape, n=30, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return ArrayDataset(rng.normal(size=(n,) + shape).astype(np.float32), rng.integers(0, classes, n))


def _autodiff_last_layer(model, data, n=None):
    """Mean over examples of the autodiff squared gradient norm of the final Dense's variables,
    one example at a time (the slow reference)."""
    dense = model_graph.final_dense(model).layer
    x, y = data.take(n)
    logits = model_graph.logits_model(model)
    return float(np.mean(autodiff.per_example_grad_sq_norms_loop(logits, x, y, variables=dense.trainable_variables)))


def test_agn_per_example_formula():
    """(||h||^2 + 1) ||softmax(z) - onehot(y)||^2, computed by hand for one example."""
    h = np.array([[1.0, 2.0]])
    z = np.array([[0.0, np.log(3.0)]])  # softmax = (1/4, 3/4)
    expected = (1 + 4 + 1) * ((0.25 - 1) ** 2 + 0.75 ** 2)
    np.testing.assert_allclose(agn_per_example(h, z, np.array([0])), [expected])
    np.testing.assert_allclose(agn_per_example(h, z, np.array([0]), use_bias=False), [expected * 5 / 6])
    np.testing.assert_allclose(softmax(np.array([[1000.0, 1000.0]])), [[0.5, 0.5]])  # stable


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_agn_equals_autodiff_gradient_of_last_layer(kind):
    """AGN equals the per-example autodiff gradient w.r.t. the last Dense's kernel and bias."""
    trained = tiny_trained_model(kind)
    value = AGN(batch_size=7)(trained)  # 48 examples: a padded last batch
    np.testing.assert_allclose(value, _autodiff_last_layer(trained.model, trained.train), rtol=1e-5)


def test_agn_equals_autodiff_on_a_vgg_like_conv_model():
    import keras

    L = keras.layers
    model = _sequential([L.Conv2D(4, 3, activation="relu"), L.MaxPooling2D(), L.Conv2D(6, 3, activation="relu"),
                         L.Flatten(), L.Dense(8, activation="relu"), L.Dense(5)], (10, 10, 3))
    data = _data((10, 10, 3), classes=5)
    trained = TrainedModel("model_vgg", model, train=data)
    np.testing.assert_allclose(AGN()(trained), _autodiff_last_layer(model, data), rtol=1e-5)


@pytest.mark.parametrize("family", ["nin", "allconv"])
def test_agn_equals_autodiff_on_a_global_average_pooled_head(family):
    """The NiN / all-conv head (linear 1x1 Conv2D, then GlobalAveragePooling2D) is a Dense on the
    pooled features: AGN equals the per-example autodiff gradient w.r.t. the 1x1 kernel and bias."""
    import keras

    from pgdl_measures.training.models import build

    keras.utils.set_random_seed(0)
    model = build(family, (8, 8, 1), 5, width=4, depth=2)
    head = model_graph.final_dense(model)
    assert head.pooled and isinstance(head.layer, keras.layers.Conv2D) and head.layer.kernel_size == (1, 1)
    data = _data((8, 8, 1), n=20, classes=5)
    value = AGN(batch_size=6)(TrainedModel("model_gap", model, train=data))
    np.testing.assert_allclose(value, _autodiff_last_layer(model, data), rtol=1e-5)


def test_gap_head_with_a_relu_1x1_conv_is_a_measure_error():
    import keras

    L = keras.layers
    model = _sequential([L.Conv2D(3, 1, activation="relu"), L.GlobalAveragePooling2D()], (6, 6, 1), name="relu_head")
    with pytest.raises(MeasureError, match=r"1x1 Conv2D .*activation 'relu'"):
        AGN()(TrainedModel("model_0", model, train=_data((6, 6, 1))))


def test_agn_without_bias():
    import keras

    model = _sequential([keras.layers.Dense(6, activation="tanh"), keras.layers.Dense(3, use_bias=False)], (4,))
    data = _data((4,))
    assert not model_graph.final_dense(model).use_bias
    np.testing.assert_allclose(AGN()(TrainedModel("model_0", model, train=data)),
                               _autodiff_last_layer(model, data), rtol=1e-5)


def _with_head(head: str):
    import keras

    L = keras.layers
    body = [L.Dense(6, activation="relu")]
    if head == "logits":
        layers = body + [L.Dense(3)]
    elif head == "softmax_dense":
        layers = body + [L.Dense(3, activation="softmax")]
    elif head == "softmax_layer":
        layers = body + [L.Dense(3), L.Softmax()]
    else:
        layers = body + [L.Dense(3), L.Activation("softmax")]
    return _sequential(layers, (4,), name=head)


@pytest.mark.parametrize("head", ["softmax_dense", "softmax_layer", "softmax_activation"])
def test_agn_reads_a_softmax_output_as_logits_then_softmax(head):
    """A model whose output is a softmax gives the AGN of its logits twin (same weights)."""
    data = _data((4,))
    reference = _with_head("logits")
    model = _with_head(head)
    model.set_weights(reference.get_weights())
    value = AGN()(TrainedModel("model_0", model, train=data))
    np.testing.assert_allclose(value, AGN()(TrainedModel("model_1", reference, train=data)), rtol=1e-6)
    np.testing.assert_allclose(value, _autodiff_last_layer(model, data), rtol=1e-5)


def test_max_examples_uses_the_first_examples():
    trained = tiny_trained_model("dense")
    x, y = trained.train.take(10)
    first = TrainedModel("model_0", trained.model, train=ArrayDataset(x, y))
    np.testing.assert_allclose(AGN(max_examples=10, batch_size=4)(trained), AGN()(first), rtol=1e-6)


def test_model_without_final_dense_is_a_measure_error():
    import keras

    L = keras.layers
    model = _sequential([L.Conv2D(3, 3), L.GlobalAveragePooling2D()], (6, 6, 1), name="no_dense")
    trained = TrainedModel("model_7", model, train=_data((6, 6, 1)), task="toy")
    with pytest.raises(MeasureError, match=r"measure 'agn' on toy/model_7: .*no final Dense layer"):
        AGN()(trained)


def test_final_dense_with_another_activation_is_a_measure_error():
    import keras

    model = _sequential([keras.layers.Dense(3, activation="relu")], (4,))
    with pytest.raises(MeasureError, match=r"'agn' on model_0: .*activation 'relu'"):
        AGN()(TrainedModel("model_0", model, train=_data((4,))))


def test_empty_dataset_is_a_measure_error():
    trained = tiny_trained_model("dense", empty_train=True)
    with pytest.raises(MeasureError, match=r"measure 'agn' on contract/model_dense: .*empty"):
        AGN()(trained)


def test_label_outside_the_outputs_is_a_measure_error():
    trained = tiny_trained_model("dense")
    x, _ = trained.train.take(5)
    bad = TrainedModel("model_0", trained.model, train=ArrayDataset(x, np.array([0, 1, 2, 3, 0])))
    with pytest.raises(MeasureError, match="label 3 is outside"):
        AGN()(bad)


def test_nan_weights_are_a_measure_error():
    trained = tiny_trained_model("dense")
    kernel = trained.model.layers[-1].kernel
    kernel.assign(np.full(tuple(kernel.shape), np.nan, np.float32))
    with pytest.raises(MeasureError, match="non-finite"):
        AGN()(trained)


def test_agn_on_the_official_sample_task(toy_path):
    """On the sample task's model_0 (Dense 64 relu -> Dense 2 logits), AGN equals the autodiff
    gradient of its last layer over the same examples."""
    from pgdl_measures.tasks import find_tasks

    trained = find_tasks(toy_path)[0].load_model("model_0")
    value = AGN(max_examples=100)(trained)
    assert np.isfinite(value) and value > 0
    np.testing.assert_allclose(value, _autodiff_last_layer(trained.model, trained.train, 100), rtol=1e-5)


def test_bad_parameters_are_refused():
    with pytest.raises(PGDLError, match=r"measure 'agn': parameter batch_size must be a positive integer"):
        AGN(batch_size=0)
