# Misbehaves on ReLU networks only: never returns. The other models get a value.
import time


def complexity(model, dataset):
  if model.layers[0].get_config()['activation'] == 'relu':
    while True:
      time.sleep(0.1)
  return 2.0
