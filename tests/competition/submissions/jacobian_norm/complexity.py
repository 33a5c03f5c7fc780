# Jacobian norm: mean over training examples of the Frobenius norm of d logits / d input,
# plus that of d logits / d (input of the last layer), found through the wrapped layers'
# `_last_seen_input` -- the way the competition's `get_jacobian` helper did it.
import numpy as np
import tensorflow as tf


def complexity(model, dataset):

  @tf.function()
  def jacobian_norms(inputs):
    with tf.GradientTape(persistent=True) as tape:
      out = model(inputs, tape=tape)
    jac_input = tape.batch_jacobian(out, inputs)
    jac_last = tape.batch_jacobian(out, model.layers[-1]._last_seen_input)
    flat = lambda j: tf.reshape(j, [tf.shape(j)[0], -1])
    return tf.norm(flat(jac_input), axis=1), tf.norm(flat(jac_last), axis=1)

  norms_input, norms_last = [], []
  for x, _ in dataset.batch(64):
    a, b = jacobian_norms(x)
    norms_input.append(a.numpy())
    norms_last.append(b.numpy())
  return np.mean(np.concatenate(norms_input)) + np.mean(np.concatenate(norms_last))
