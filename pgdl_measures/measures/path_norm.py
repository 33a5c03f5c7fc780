"""Path norm (Neyshabur et al. 2015; Jiang et al. 2019): the network with squared weights, on an
all-ones input, summed over its outputs."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from pgdl_measures.autodiff import model_graph
from pgdl_measures.errors import PGDLError
from pgdl_measures.measures.base import Measure


def _scaled(w: np.ndarray, out_axis: int = -1) -> tuple[np.ndarray, float]:
    """``(w / s, log s)`` with ``s`` the largest sum of ``w`` over all axes but the output axis:
    a layer with kernel ``w / s`` maps a non-negative input whose largest entry is ``m`` to one
    whose largest entry is at most ``m``, so nothing overflows in float32 however deep the
    network; the logs of the scales are added back at the end (each layer is linear in its
    kernel, without biases)."""
    w = np.asarray(w, np.float64)
    sums = np.moveaxis(w, out_axis, -1).reshape(-1, w.shape[out_axis]).sum(axis=0)
    s = float(sums.max()) if sums.size and sums.max() > 0 else 1.0
    return (w / s).astype(np.float32), math.log(s)


def squared_network(model):
    """The model's chain up to its logits with every kernel squared (and scaled), biases dropped,
    batch normalization folded into its squared per-channel scale ``(gamma / sqrt(var + eps))^2``,
    and activations dropped: the path norm is a function of the weights alone (the sum over
    paths of the products of their squared weights); for ReLU the activation is the identity on
    the non-negative values this network computes from a non-negative input anyway.

    Returns:
        ``(keras model, log_scale)``: ``path_norm = exp(log_scale) * sum(model(1))``.

    Raises:
        PGDLError: a layer with weights other than Dense, convolutions and batch normalization.
    """
    import keras

    parts = model_graph.logit_layers(model)
    spec = model.inputs[0]
    x = keras.Input(shape=tuple(spec.shape[1:]), dtype="float32")
    h = x
    log_scale = 0.0
    pending = []
    for layer in parts.source:
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)) \
                and not isinstance(layer, (keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)):
            config = dict(layer.get_config(), use_bias=False, activation="linear", name=f"{layer.name}_squared")
            for key in ("kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
                        "bias_constraint"):
                config.pop(key, None)
            new = type(layer).from_config(config)
            h = new(h)
            kernel, log_s = _scaled(np.square(np.asarray(layer.kernel.numpy() if hasattr(layer.kernel, "numpy")
                                                         else layer.kernel, np.float64)))
            pending.append((new, [kernel]))
            log_scale += log_s
        elif isinstance(layer, keras.layers.BatchNormalization):
            gamma = np.asarray(layer.gamma, np.float64) if layer.gamma is not None else 1.0
            variance = np.asarray(layer.moving_variance, np.float64)
            scale, log_s = _scaled(np.square(gamma / np.sqrt(variance + layer.epsilon)) * np.ones_like(variance))
            axis = layer.axis if isinstance(layer.axis, int) else layer.axis[0]
            shape = [1] * len(h.shape)
            shape[axis] = -1
            factor = scale.reshape(shape[1:])
            h = keras.layers.Lambda(lambda t, f=factor: t * f, name=f"{layer.name}_squared")(h)
            log_scale += log_s
        elif isinstance(layer, (keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU, keras.layers.Activation)):
            continue
        elif layer.weights:
            raise PGDLError(f"path norm: layer {layer.name!r} ({type(layer).__name__}) has weights, and only Dense, "
                            "convolution and batch-normalization layers are covered")
        else:  # pooling, flatten, dropout, reshape, padding: rebuilt as they are
            h = type(layer).from_config(dict(layer.get_config(), name=f"{layer.name}_squared"))(h)
    squared = keras.Model(x, h, name=f"{model.name}_squared_weights")
    for new, weights in pending:
        new.set_weights(weights)
    return squared, log_scale


def log_path_norm(model) -> float:
    """``log sum_k f_{w^2}(1)_k``: the log of the path norm (see :class:`LogPathNorm`)."""
    squared, log_scale = squared_network(model)
    ones = np.ones((1,) + tuple(squared.inputs[0].shape[1:]), np.float32)
    total = float(np.sum(np.asarray(squared(ones, training=False), np.float64)))
    if not total > 0 or not math.isfinite(total):
        raise PGDLError(f"the squared-weight network's output sums to {total}; the path norm needs a positive sum")
    return math.log(total) + log_scale


class LogPathNorm(Measure):
    """Log of the path norm: the sum over every input-output path of the product of its squared
    weights, computed as the network with squared weights on an all-ones input::

        path_norm = sum_k f_{w^2}(1)_k,   log_path_norm = log path_norm

    (Jiang et al.'s definition: ``f_{w^2}`` is the network with each weight squared). Biases
    are left out; batch normalization counts as its per-channel scale ``gamma / sqrt(var +
    eps)``; max pooling keeps its maximum, as evaluating ``f_{w^2}`` does. The log keeps deep
    networks finite (the network is evaluated layer-scaled, see :func:`squared_network`) and
    leaves rankings unchanged. Activations are left out (for a ReLU network the value is
    exactly ``f_{w^2}(1)``; for others, tanh included, it is the sum over paths of the products
    of squared weights, Neyshabur et al.'s path norm). Data-free; larger values predict a larger
    gap.

    References:
        B. Neyshabur, R. Salakhutdinov, N. Srebro. "Path-SGD: path-normalized optimization in
        deep neural networks", NeurIPS 2015. Y. Jiang et al., "Fantastic generalization
        measures and where to find them", ICLR 2020 (arXiv:1912.02178), Appendix C: path-norm.
    """

    name: ClassVar[str] = "log_path_norm"
    summary: ClassVar[str] = ("Jiang et al. 2019: log of the path norm, sum of f_{w^2}(1) (network with squared"
                              " weights on ones)")
    direction: ClassVar[int] = 1
    needs_train_data: ClassVar[bool] = False
    needs_initial_weights: ClassVar[bool] = False
    reference: ClassVar[str] = ("Jiang et al., 'Fantastic generalization measures and where to find them', ICLR 2020, "
                                "arXiv:1912.02178, path-norm sum_k f_{w^2}(1)_k; "
                                "Neyshabur et al., Path-SGD, NeurIPS 2015")

    def compute(self, trained) -> float:
        return log_path_norm(trained.model)
