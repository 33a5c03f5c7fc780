"""What a packaged submission runs: the competition's arguments turned into a TrainedModel.

The competition's ingestion program calls ``complexity(model, dataset)`` with a ``tf.keras``
Sequential model (legacy Keras 2 in 2020 and under ``pgdl run-submission``'s default, Keras 3
with ``--keras 3``; its layers may be subclasses of the ``tf.keras.layers`` classes, as the
competition's own ``wrapped_layer`` were), with ``initial_weights`` when the task has them, and
an *unbatched* ``tf.data`` dataset of ``(input, label)``. The toolkit's measures take a
:class:`~pgdl_measures.tasks.TrainedModel`: a Keras 3 model and a
:class:`~pgdl_measures.tasks.data.Dataset`. :func:`competition_trained_model` converts:

* the model is rebuilt in Keras 3, layer by layer: the Keras class of each layer (the first
  class of its MRO named in :data:`pgdl_measures.tasks.model_config.LAYER_NAMES`, the same allowlist
  ``config.json`` goes through), built ``from_config`` with its ``get_config()`` (minus its
  name; two Keras 2 spellings translated, see :data:`LEGACY_CONFIG_FIXES`), after
  ``keras.Input`` of the model's input shape, as :func:`pgdl_measures.tasks.model_config.build_model`
  builds a task's model; then each layer gets the weights of its counterpart;
* ``initial_weights`` (a flat list in the competition model's ``get_weights()`` order, which
  under Keras 2 lists all trainable arrays before the non-trainable ones) is matched to the
  layers through the model's variables, and given in the Keras 3 model's ``get_weights()``
  order, as :func:`pgdl_measures.tasks.load_trained_model` gives it;
* the dataset becomes a :class:`TFDataset`: batches in dataset order, streamed, ``x`` float32
  and ``y`` int32 labels like :class:`~pgdl_measures.tasks.data.ShardedDataset`'s.

So a measure computes on a packaged submission's model exactly what it computes on the same
model loaded by :meth:`pgdl_measures.tasks.Task.load_model`. This module is vendored into
every submission by :mod:`pgdl_measures.competition.package`: it needs TensorFlow (and the Keras 3 it
ships) only.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from pgdl_measures.errors import PGDLError
from pgdl_measures.tasks.data import Dataset
from pgdl_measures.tasks.model_config import LAYER_NAMES
from pgdl_measures.tasks.trained import TrainedModel

#: the model id a converted model gets (the competition does not tell ``complexity`` its id)
MODEL_ID = "model"
#: tf.data dataset -> its number of examples, counted once
_LENGTHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class TFDataset(Dataset):
    """A :class:`~pgdl_measures.tasks.data.Dataset` over an unbatched ``tf.data`` dataset of
    ``(input, label)`` pairs, read in order and streamed.

    Args:
        dataset: the ``tf.data.Dataset`` (the competition's, not batched).
    """

    def __init__(self, dataset):
        self.dataset = dataset
        self._len: int | None = None

    def __len__(self) -> int:
        """The number of examples: one pass over the data when tf.data does not know it, once
        per dataset object (the competition hands the same one to every model)."""
        if self._len is None:
            self._len = _LENGTHS.get(self.dataset)
        if self._len is None:
            import tensorflow as tf

            n = int(self.dataset.cardinality())
            if n < 0:  # unknown (a TFRecordDataset) or infinite: count
                n = int(self.dataset.reduce(tf.constant(0, tf.int64), lambda count, *_: count + 1))
            self._len = n
            try:
                _LENGTHS[self.dataset] = n
            except TypeError:  # not weakly referenceable: counted again next time
                pass
        return self._len

    def batches(self, batch_size, *, limit=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        data = self.dataset if limit is None else self.dataset.take(int(limit))
        for x, y in data.batch(int(batch_size)).as_numpy_iterator():
            yield np.asarray(x, np.float32), np.asarray(y).astype(np.int32).reshape(-1)

    def __repr__(self):
        return f"TFDataset({self.dataset.element_spec})"


def keras_class_name(layer) -> str:
    """The allowlisted Keras layer class `layer` is an instance of (``Conv2D``...).

    Raises:
        PGDLError: no class of its MRO is on the allowlist.
    """
    for cls in type(layer).__mro__:
        if cls.__name__ in LAYER_NAMES and cls.__module__.split(".")[0] in ("keras", "tf_keras"):
            return cls.__name__
    raise PGDLError(f"layer {layer.name!r} ({type(layer).__name__}) is not a subclass of a supported "
                    f"Keras layer; supported: {', '.join(LAYER_NAMES)}")


def _batch_norm_axis(config: dict) -> dict:
    axis = config.get("axis")
    if isinstance(axis, (list, tuple)) or type(axis).__name__ == "ListWrapper":
        axis = list(axis)
        if len(axis) != 1:
            raise PGDLError(f"BatchNormalization over several axes {axis} has no Keras 3 equivalent")
        config["axis"] = int(axis[0])
    return config


def _leaky_relu_slope(config: dict) -> dict:
    if "alpha" in config:
        config["negative_slope"] = config.pop("alpha")
    return config


#: Keras 2 config spellings Keras 3 does not take: BatchNormalization's ``axis`` is a list once
#: built (``[3]``), LeakyReLU's slope is ``alpha``.
LEGACY_CONFIG_FIXES: dict[str, Callable[[dict], dict]] = {
    "BatchNormalization": _batch_norm_axis,
    "LeakyReLU": _leaky_relu_slope,
}


def keras3_layer(layer):
    """A new Keras 3 layer of the same class and configuration as `layer` (Keras 2 or 3).

    Raises:
        PGDLError: the layer's class is not allowlisted, or Keras 3 rejects its configuration.
    """
    import keras

    name = keras_class_name(layer)
    config = dict(layer.get_config())
    config.pop("name", None)
    config = LEGACY_CONFIG_FIXES.get(name, lambda c: c)(config)
    try:
        return getattr(keras.layers, name).from_config(config)
    except (TypeError, ValueError) as exc:
        raise PGDLError(f"cannot rebuild layer {layer.name!r} as a Keras 3 {name}: {exc}") from None


def input_shape(model, dataset=None) -> tuple[int, ...]:
    """The shape of one input of `model` (without the batch axis); from the first element of
    `dataset` when the model does not say."""
    try:
        shape = tuple(model.inputs[0].shape)[1:]
    except (AttributeError, IndexError, TypeError, ValueError):
        shape = ()
    if shape and all(d is not None for d in shape):
        return tuple(int(d) for d in shape)
    if dataset is not None:
        for x, _ in dataset.take(1):
            return tuple(int(d) for d in x.shape)
    raise PGDLError(f"cannot tell the input shape of model {model.name!r}: build it or give the data")


def _layer_arrays(model, flat: list) -> list[list]:
    """`flat` (arrays in ``model.get_weights()`` order) split into each layer's arrays, in the
    order of ``layer.get_weights()``."""
    position = {id(v): i for i, v in enumerate(model.weights)}
    if len(position) != len(flat):
        raise PGDLError(f"initial_weights holds {len(flat)} arrays but the model has {len(position)} weights")
    return [[flat[position[id(v)]] for v in layer.weights] for layer in model.layers]


def keras3_model(model, dataset=None):
    """Rebuild the competition's `model` (tf.keras 2 or Keras 3 Sequential) as a Keras 3
    ``Sequential`` with the same layers and weights (see the module docstring).

    Raises:
        PGDLError: a layer that is not allowlisted or that Keras 3 cannot rebuild.
    """
    import keras

    shape = input_shape(model, dataset)
    layers = [keras3_layer(layer) for layer in model.layers]
    try:
        rebuilt = keras.Sequential([keras.Input(shape=shape)] + layers)
    except (TypeError, ValueError) as exc:
        raise PGDLError(f"the rebuilt layers do not fit together for input shape {shape}: {exc}") from None
    _set_layer_weights(rebuilt, [layer.get_weights() for layer in model.layers])
    return rebuilt


def _set_layer_weights(rebuilt, arrays: list[list]) -> None:
    for layer, values in zip(rebuilt.layers, arrays):
        try:
            layer.set_weights(values)
        except ValueError as exc:
            raise PGDLError(f"weights do not fit the rebuilt layer {layer.name!r}: {exc}") from None


def competition_trained_model(model, dataset, *, model_id: str = MODEL_ID) -> TrainedModel:
    """The :class:`~pgdl_measures.tasks.TrainedModel` a measure takes, from the arguments of
    the competition's ``complexity(model, dataset)``.

    Args:
        model: the competition's model (``tf.keras`` Sequential, Keras 2 or 3), with
            ``initial_weights`` when the task has them.
        dataset: the unbatched ``tf.data`` dataset of ``(input, label)`` training examples.
        model_id: the id the model gets (named in a measure's error messages).

    Returns:
        A TrainedModel with a Keras 3 model, its initial weights (or None) and the training data.

    Raises:
        PGDLError: the model cannot be rebuilt in Keras 3.
    """
    rebuilt = keras3_model(model, dataset)
    initial: list[np.ndarray] | None = None
    initial_flat: Any = getattr(model, "initial_weights", None)
    if initial_flat is not None:
        trained = [layer.get_weights() for layer in rebuilt.layers]
        _set_layer_weights(rebuilt, _layer_arrays(model, list(initial_flat)))
        initial = [np.array(w) for w in rebuilt.get_weights()]
        _set_layer_weights(rebuilt, trained)
    return TrainedModel(model_id, rebuilt, initial, TFDataset(dataset))
