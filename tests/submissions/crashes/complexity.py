# Misbehaves on ReLU networks only: the process dies at once (as a crash of TensorFlow would).
# The other models get a value.
import os


def complexity(model, dataset):
  if model.layers[0].get_config()['activation'] == 'relu':
    os._exit(3)
  return 3.0
