"""The autodiff interface on the TensorFlow backend (see :mod:`pgdl_measures.autodiff`).

Each function is a ``tf.function`` with an input signature whose batch axis is ``None``, built
once per model and cached on it: every batch of that model reuses one traced graph, and the
graph reads the model's variables (not copies), so it sees the current weights.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from pgdl_measures.autodiff import _layerwise
from pgdl_measures.autodiff._common import cached, variable_indices


def _spec(shape, dtype=tf.float32) -> tf.TensorSpec:
    return tf.TensorSpec((None,) + tuple(shape), dtype)


_compiled = functools.partial(cached, backend="tensorflow")


@contextlib.contextmanager
def full_float32():
    """TensorFloat-32 off (true float32 matrix products and convolutions on GPUs that default to
    TF32; no effect on CPUs), restored on exit."""
    before = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        yield
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(before)


def _example_grad_sq_norm(model, variables):
    """``f((x, y)) -> ||grad l||^2`` for one example (``x`` without batch axis)."""

    def one(example):
        x, y = example
        with tf.GradientTape() as tape:
            logits = tf.cast(model(x[None], training=False), tf.float32)
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y[None], logits=logits)
        grads = tape.gradient(loss, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return tf.add_n([tf.reduce_sum(tf.square(g)) for g in grads])

    return one


def layerwise_sq_norms(model, plan, idx, x, y) -> np.ndarray:
    """One batched forward pass and one tape gradient of the summed loss w.r.t. every layer's
    output, then the per-example norms layer by layer (see :mod:`pgdl_measures.autodiff._layerwise`)."""

    def build():
        chosen = set(idx)

        @tf.function(input_signature=[_spec(x.shape[1:]), _spec((), tf.int32)])
        def sq_norms(x, y):
            trainable = [v.value for v in model.trainable_variables]
            frozen = [v.value for v in model.non_trainable_variables]
            outputs = {}
            with tf.GradientTape() as tape:
                def perturb(i, z):
                    tape.watch(z)
                    outputs[i] = z
                    return z

                logits, records = _layerwise.forward(plan.steps, trainable, frozen, x, perturb)
                loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
                    labels=y, logits=tf.cast(logits, tf.float32)))
            keys = sorted(outputs)
            grads = tape.gradient(loss, [outputs[k] for k in keys], unconnected_gradients=tf.UnconnectedGradients.ZERO)
            norms = _layerwise.sq_norms(plan.steps, records, dict(zip(keys, grads)), chosen)
            return _layerwise.nan_unless_finite(norms, trainable)

        return sq_norms

    fn = _compiled(model, ("grad_sq_layerwise", idx, x.shape[1:]), build)
    return fn(x, np.asarray(y, np.int32)).numpy().astype(np.float64)


def vmap_sq_norms(model, idx, x, y) -> np.ndarray:
    """The ``"vmap"`` method of :func:`pgdl_measures.autodiff.per_example_grad_sq_norms`:
    ``tf.vectorized_map`` of the single-example gradient, inside a ``tf.function``."""
    x = np.asarray(x, np.float32)

    def build():
        chosen = [model.trainable_variables[i] for i in idx]
        one = _example_grad_sq_norm(model, chosen)

        @tf.function(input_signature=[_spec(x.shape[1:]), _spec((), tf.int32)])
        def sq_norms(x, y):
            return tf.vectorized_map(one, (x, y), fallback_to_while_loop=True)

        return sq_norms

    fn = _compiled(model, ("grad_sq", idx, x.shape[1:]), build)
    return fn(x, np.asarray(y, np.int32)).numpy().astype(np.float64)


def per_example_grad_sq_norms_loop(model, x, y, *, variables: Sequence | None = None,
                                   compiled: bool = True) -> np.ndarray:
    """The reference: a ``tf.function`` of one example's gradient (an eager gradient tape when
    not `compiled`), called from a Python loop."""
    idx = variable_indices(model, variables)
    x = np.asarray(x, np.float32)

    def build():
        chosen = [model.trainable_variables[i] for i in idx]
        one = _example_grad_sq_norm(model, chosen)

        def sq_norm(x, y):
            return one((x, y))

        if not compiled:
            return sq_norm
        return tf.function(sq_norm, input_signature=[tf.TensorSpec(x.shape[1:], tf.float32), tf.TensorSpec((), tf.int32)])

    fn = _compiled(model, ("grad_sq_loop", idx, x.shape[1:], compiled), build)
    y = np.asarray(y, np.int32)
    return np.array([float(fn(tf.constant(x[i]), tf.constant(y[i]))) for i in range(len(x))], dtype=np.float64)


def input_jacobian_sq_sums(model, inputs) -> np.ndarray:
    """See :func:`pgdl_measures.autodiff.input_jacobian_sq_sums`: ``GradientTape.jacobian`` (pfor
    over the ``C`` classes) of the batch-summed output, inside a ``tf.function``."""
    inputs = [np.asarray(u, np.float32) for u in inputs]
    shapes = tuple(u.shape[1:] for u in inputs)

    def build():
        @tf.function(input_signature=[[_spec(s) for s in shapes]])
        def sq_sums(inputs):
            with tf.GradientTape(persistent=True) as tape:
                for u in inputs:
                    tape.watch(u)
                out = model(inputs if len(inputs) > 1 else inputs[0], training=False)
                # Example b of the output depends on example b of the inputs only, so the
                # gradient of the batch sum of class c is every example's row c of its Jacobian.
                summed = tf.reduce_sum(tf.cast(out, tf.float32), axis=0)
            jacobians = tape.jacobian(summed, inputs, experimental_use_pfor=True,
                                      unconnected_gradients=tf.UnconnectedGradients.ZERO)
            per_input = []
            for jac in jacobians:  # [C, batch, ...]
                flat = tf.reshape(tf.square(jac), (tf.shape(jac)[0], tf.shape(jac)[1], -1))
                per_input.append(tf.reduce_sum(flat, axis=[0, 2]))
            return tf.stack(per_input, axis=1)

        return sq_sums

    fn = _compiled(model, ("input_jacobian", shapes), build)
    return fn(inputs).numpy().astype(np.float64)
