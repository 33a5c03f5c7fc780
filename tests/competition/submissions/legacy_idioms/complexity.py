# A 2020 submission in the Keras 2 style: backend functions on the symbolic graph, shape
# attributes that Keras 3 removed, a throw-away Adam step, HDF5 checkpoints in the working folder.
#
# Measure: mean squared norm of the penultimate representation, per unit, after checking the
# model survives a save/restore round trip.
import numpy as np
import tensorflow as tf
from tensorflow.keras import backend as K
from tensorflow.keras import optimizers


def complexity(model, dataset):
  width = model.layers[-1].input_shape[-1]
  num_params = sum(np.prod(v.get_shape().as_list()) for v in model.trainable_variables)
  assert num_params == model.count_params(), (num_params, model.count_params())

  opt = optimizers.Adam(lr=0.01)
  assert abs(K.get_value(opt.lr) - 0.01) < 1e-7, 'lr= was ignored'

  model.save_weights('checkpoint.h5')
  penultimate = K.function([model.input], [model.layers[-2].output])

  # one Adam step on a batch, then restore the trained weights from the checkpoint
  x, y = next(iter(dataset.batch(32)))
  with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(
        y, model(x), from_logits=True))
  opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                          model.trainable_variables))
  model.load_weights('checkpoint.h5')

  total, count = 0.0, 0
  for x, _ in dataset.batch(50):
    h = penultimate([x.numpy()])[0]
    total += np.sum(np.square(h))
    count += h.shape[0]
  return total / count / width
