# Distance from initialisation: || w - w_0 ||_2 over all the weights of the model
# (Nagarajan & Kolter, 2019). Needs model.initial_weights, set by the ingestion program.
import numpy as np


def complexity(model, dataset):
  total = 0.0
  for w, w0 in zip(model.get_weights(), model.initial_weights):
    total += np.sum(np.square(w - w0))
  return np.sqrt(total)
