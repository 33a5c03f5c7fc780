"""The Keras layers the training models add to Keras's own (:mod:`pgdl_measures.training.models`)."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="pgdl_measures")
class ZeroPadShortcut(keras.layers.Layer):
    """Option-A shortcut of the CIFAR ResNets: subsample by `stride` and zero-pad the channels
    to `filters` (no parameters).

    Args:
        filters: the channels of the output.
        stride: the subsampling step of both spatial axes.
    """

    def __init__(self, filters: int, stride: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.stride = int(stride)

    def call(self, x):
        x = x[:, ::self.stride, ::self.stride, :]
        extra = self.filters - x.shape[-1]
        before = extra // 2
        return keras.ops.pad(x, [[0, 0], [0, 0], [0, 0], [before, extra - before]])

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        size = (lambda d: None if d is None else -(-d // self.stride))
        return (b, size(h), size(w), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "stride": self.stride}
