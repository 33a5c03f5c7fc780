# VC-dimension baseline for the PGDL competition.
#
# For piecewise-linear networks the VC dimension is O(W * L * log W) (Bartlett et al., 2019,
# "Nearly-tight VC-dimension and pseudodimension bounds for piecewise linear neural networks"),
# W the number of parameters and L the number of layers with parameters.
import numpy as np
import tensorflow as tf


def complexity(model, dataset):
  num_params = 0
  depth = 0
  for layer in model.layers:
    if isinstance(layer, (tf.keras.layers.Dense, tf.keras.layers.Conv2D)):
      depth += 1
      num_params += sum(int(np.prod(w.shape)) for w in layer.get_weights())
  return num_params * depth * np.log(num_params)
