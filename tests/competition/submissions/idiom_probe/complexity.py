# Test instrument (not a measure): try each Keras 2 / TensorFlow 2.2 idiom that 2020
# submissions used on the competition's model and dataset, and write which work to the JSON
# file named by $PGDL_IDIOM_REPORT ({idiom: "ok" or "ErrorType: message"}).
# Returns the number of idioms that worked.
import json
import os

import numpy as np
import tensorflow as tf
from tensorflow.keras import backend as K


def _checks(model, dataset):
  x, y = next(iter(dataset.batch(8)))

  def tape_keyword():
    with tf.GradientTape() as tape:
      out = model(x, tape=tape)
    assert tape.gradient(out, x) is not None, 'the input was not watched'

  def last_seen_input():
    model(x)
    seen = model.layers[-1]._last_seen_input
    assert seen.shape[0] == x.shape[0], seen.shape

  def backend_function():
    f = K.function([model.input], [model.layers[-2].output])
    assert f([x.numpy()])[0].shape[0] == x.shape[0]

  def adam_lr():
    opt = tf.keras.optimizers.Adam(lr=0.01)
    assert abs(float(K.get_value(opt.learning_rate)) - 0.01) < 1e-7, 'lr= was ignored'

  def save_weights_h5():
    model.save_weights('probe.h5')
    model.load_weights('probe.h5')

  def compile_evaluate():
    model.compile(loss='sparse_categorical_crossentropy', optimizer='sgd')
    model.evaluate(dataset.batch(50), verbose=0)

  def gradients_symbolic():
    K.gradients(model.output, model.input)

  def numpy_aliases():  # the builtin aliases NumPy 1.24 / 2.0 removed
    assert np.zeros(2, dtype=np.float).dtype == np.float64
    assert np.int(2.5) == 2 and np.array([1], dtype=np.object).dtype == object
    assert np.array([1.0], dtype=np.float_).dtype == np.float64 and np.isnan(np.NaN)
    assert bool(np.bool(1)) and np.complex(1) == 1 and np.str(1) == '1'

  return {
      'model(x, tape=tape)': tape_keyword,
      'layer._last_seen_input': last_seen_input,
      'model.initial_weights': lambda: len(model.initial_weights) == len(model.get_weights()) or 1 / 0,
      'isinstance(layer, tf.keras.layers.Dense)': lambda: isinstance(model.layers[0], tf.keras.layers.Dense) or 1 / 0,
      'model.get_layer(index=i)': lambda: model.get_layer(index=0),
      'model.input': lambda: model.input,
      'model.output': lambda: model.output,
      'layer.output': lambda: model.layers[0].output,
      'tf.keras.backend.function': backend_function,
      'layer.input_shape': lambda: model.layers[-1].input_shape,
      'layer.output_shape': lambda: model.layers[-1].output_shape,
      'v.get_shape()': lambda: model.trainable_variables[0].get_shape(),
      'K.get_value / K.eval on a weight': lambda: (K.get_value(model.layers[0].kernel), K.eval(model.layers[0].kernel)),
      'optimizers.Adam(lr=...)': adam_lr,
      "model.save_weights('x.h5')": save_weights_h5,
      'model.predict(dataset.batch(n))': lambda: model.predict(dataset.batch(50), verbose=0),
      'model.compile + evaluate': compile_evaluate,
      'tf.keras.models.clone_model': lambda: tf.keras.models.clone_model(model),
      'K.gradients (symbolic)': gradients_symbolic,
      'np.int, np.float, np.object, np.float_, np.NaN': numpy_aliases,
  }


def complexity(model, dataset):
  report = {}
  for name, check in _checks(model, dataset).items():
    try:
      check()
      report[name] = 'ok'
    except Exception as e:  # record and go on
      report[name] = '%s: %s' % (type(e).__name__, str(e).splitlines()[0][:160] if str(e) else '')
  with open(os.environ['PGDL_IDIOM_REPORT'], 'w') as f:
    json.dump(report, f, indent=2)
  return float(sum(v == 'ok' for v in report.values()))
