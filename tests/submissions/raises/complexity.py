# Misbehaves on ReLU networks only: raises. The other models get a value.
def complexity(model, dataset):
  if model.layers[0].get_config()['activation'] == 'relu':
    raise ValueError('deliberate failure in complexity')
  return 1.0
