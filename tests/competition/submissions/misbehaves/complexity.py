# Misbehaves in a different way on each architecture of the sample task, so that one child
# process (and its restarts) meets every failure a run must survive:
#   ReLU, 1 hidden layer of 64 or 128 (model_0): raises
#   tanh, 1 hidden layer (model_1): returns a string
#   ReLU, 2 hidden layers (model_2): never returns
#   tanh, 2 hidden layers (model_3): the process dies at once (as a crash of TensorFlow would)
#   ReLU, 3 hidden layers (model_10): returns NaN
#   tanh, 3 hidden layers (model_11): returns infinity
#   1 hidden layer of 256 (model_12): starts `setsid sleep 1000`, which leaves the child's
#     process group and would outlive the run, then returns the number of layers
import os
import subprocess
import time


def complexity(model, dataset):
  config = model.layers[0].get_config()
  depth, relu = len(model.layers), config['activation'] == 'relu'
  if config['units'] == 256:
    subprocess.Popen(['setsid', 'sleep', '1000'], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return float(depth)
  if depth == 2:
    if relu:
      raise ValueError('deliberate failure in complexity')
    return 'not a number'
  if depth == 3:
    if relu:
      while True:
        time.sleep(0.1)
    os._exit(3)
  return float('nan') if relu else float('inf')
