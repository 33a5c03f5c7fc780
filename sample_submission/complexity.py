"""PGDL competition submission: the approximated gradient norm (AGN) of the last dense layer.

Self-contained (TensorFlow and NumPy only): it runs in the competition's ingestion program, where
the PGDL toolkit is not installed, and through ``pgdl run-submission``.

For a classifier whose last dense layer maps a representation ``h`` to logits
``z = W^T h + b``, the gradient of the cross-entropy loss with respect to ``(W, b)`` at one
example ``(x, y)`` is ``[h; 1] (softmax(z) - onehot(y))^T``, whose squared Frobenius norm is

    (||h||^2 + 1) * ||softmax(z) - onehot(y)||^2 .

AGN is its mean over the training examples:

    AGN = (1/n) * sum_i (||h_i||^2 + 1) * ||softmax(z_i) - onehot(y_i)||^2 .

``h`` is the input of the last ``Dense`` layer (computed by running the layers before it with
``training=False``) and ``z = h W + b`` is computed from its kernel and bias, so a last Dense
with a softmax (or any other) activation, or layers after it, still give the logits' gradient.

Larger values predict a larger generalization gap.
"""

import numpy as np
import tensorflow as tf

BATCH_SIZE = 256
#: at most this many training examples (all of them when None)
MAX_EXAMPLES = None


def _last_dense_index(model):
  for index in range(len(model.layers) - 1, -1, -1):
    if isinstance(model.layers[index], tf.keras.layers.Dense):
      return index
  raise ValueError('the model has no Dense layer')


def complexity(model, dataset):
  """AGN of `model` on `dataset` (an unbatched tf.data dataset of (input, label))."""
  last = _last_dense_index(model)
  dense = model.layers[last]
  kernel, bias = dense.kernel, dense.bias

  @tf.function
  def per_example(x, y):
    h = x
    for layer in model.layers[:last]:
      h = layer(h, training=False)
    h = tf.reshape(h, [tf.shape(h)[0], -1])
    z = tf.matmul(h, kernel)
    if bias is not None:
      z = z + bias
    residual = tf.nn.softmax(z) - tf.one_hot(tf.reshape(y, [-1]), tf.shape(z)[-1])
    return (tf.reduce_sum(tf.square(h), axis=1) + 1.0) * tf.reduce_sum(tf.square(residual), axis=1)

  if MAX_EXAMPLES is not None:
    dataset = dataset.take(MAX_EXAMPLES)
  total, count = 0.0, 0
  for x, y in dataset.batch(BATCH_SIZE):
    values = per_example(tf.cast(x, tf.float32), tf.cast(y, tf.int32)).numpy()
    total += float(np.sum(values, dtype=np.float64))
    count += values.shape[0]
  return total / count
