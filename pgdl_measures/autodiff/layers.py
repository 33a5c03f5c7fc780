"""The Keras layers the backend builds derived models from: a Dense layer's pre-activation
(:mod:`pgdl_measures.autodiff.model_graph`) and a model run in inference mode
(:mod:`pgdl_measures.autodiff.perturbed`)."""

from __future__ import annotations

import keras


class PreActivation(keras.layers.Layer):
    """``h @ W + b`` of a Dense layer, without its activation (shares W and b).

    Args:
        dense: the ``keras.layers.Dense`` whose weights are used.
    """

    def __init__(self, dense, **kwargs):
        super().__init__(name=f"{dense.name}_pre_activation", **kwargs)
        self.dense = dense

    def build(self, input_shape):
        self.built = True

    def call(self, x):
        z = keras.ops.matmul(x, self.dense.kernel)
        if self.dense.use_bias:
            z = keras.ops.add(z, self.dense.bias)
        return z

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.dense.units,)


class InferenceMode(keras.Model):
    """Runs the wrapped model with ``training=False`` (dropout off, batch-norm moving statistics
    used and not updated), also inside ``train_on_batch``.

    Args:
        inner: the wrapped Keras model.
    """

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.built = True

    def call(self, inputs, training=None):
        return self.inner(inputs, training=False)
