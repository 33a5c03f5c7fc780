"""Turn a competition `config.json` (a layer list) into a Keras 3 Sequential model.

The competition's loader (``model_def_to_keras_sequential`` in the PGDL starting kit) looked
each ``layer_name`` up as an attribute of ``tf.keras.layers``, passed the remaining keys as
keyword arguments after turning whole-number floats into ints, and built the model with input
shape ``[None] + input_shape``. We do the same, except that a layer name must be on an explicit
allowlist (:data:`LAYERS`): a layer is never looked up by an arbitrary string.

The zoo writes configs with :func:`layer_spec`, so a task it generates is read back by the same
code, and by the competition's own loader.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from pgdl_measures.errors import PGDLError
from pgdl_measures.params import is_int
from scoring.files import read_json
from scoring.values import short_repr

#: layer_name in config.json -> attribute of keras.layers. Only these names are accepted.
LAYER_NAMES = (
    "Conv2D",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Dense",
    "Dropout",
    "BatchNormalization",
    "Flatten",
    "Activation",
    "ReLU",
    "Softmax",
    "ZeroPadding2D",
    "MaxPool2D",
    "AvgPool2D",
    "Conv1D",
    "MaxPooling1D",
    "GlobalAveragePooling1D",
    "LeakyReLU",
    "Reshape",
)


def _layer_classes() -> dict[str, type]:
    import keras

    return {name: getattr(keras.layers, name) for name in LAYER_NAMES}


def whole_floats_to_int(value: Any) -> Any:
    """Return `value` with every float that is a whole number turned into an int.

    The competition's loader did this for the keyword arguments of each layer (JSON written by
    Python often holds ``64.0`` for a number of units). Lists and dicts are converted
    recursively (``kernel_size: [3.0, 3.0]``).
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [whole_floats_to_int(v) for v in value]
    if isinstance(value, tuple):
        return tuple(whole_floats_to_int(v) for v in value)
    if isinstance(value, dict):
        return {k: whole_floats_to_int(v) for k, v in value.items()}
    return value


def layer_spec(layer_name: str, **kwargs: Any) -> dict[str, Any]:
    """One entry of a config.json ``model_config`` list: ``{"layer_name": ..., **kwargs}``."""
    if layer_name not in LAYER_NAMES:
        raise ValueError(f"layer {layer_name!r} is not in the allowlist {LAYER_NAMES}")
    return {"layer_name": layer_name, **kwargs}


#: The most weights a config may declare (8 GiB of float32): far beyond any competition model,
#: and checked before anything is allocated, so a config such as ``Dense(units=10**12)`` is
#: refused with a message instead of exhausting memory.
MAX_PARAMETERS = 2 ** 31


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a model's config.json.

    Returns:
        ``{"model_config": [layer dicts], "input_shape": [ints]}``.

    Raises:
        PGDLError: the file is missing, not JSON, lacks ``model_config``/``input_shape``, a
            layer is not an object with a string ``layer_name``, or ``input_shape`` is not a
            list of positive integers.
    """
    path = Path(path)
    config = read_json(path, "config.json")
    if not isinstance(config, dict) or not isinstance(config.get("model_config"), list):
        raise PGDLError('expected an object with a "model_config" list of layers', path)
    shape = config.get("input_shape")
    if not isinstance(shape, list) or not shape:
        raise PGDLError('expected an "input_shape" list, e.g. [32, 32, 3]', path)
    if not all(is_int(d) and d > 0 for d in whole_floats_to_int(shape)):
        raise PGDLError(f"input_shape must be a list of positive integers, e.g. [32, 32, 3]; "
                        f"got {short_repr(shape, 80)}", path)
    for index, layer_def in enumerate(config["model_config"]):
        if not isinstance(layer_def, dict) or not isinstance(layer_def.get("layer_name"), str):
            raise PGDLError(f"layer {index} of model_config must be an object with a string "
                            f'"layer_name", got {short_repr(layer_def, 80)}', path)
    return config


def _message(exc: BaseException, limit: int = 300) -> str:
    """An exception's message on one line, without terminal colour codes, clipped."""
    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _weight_count(layers: list, input_shape: tuple) -> int | None:
    """The number of weights `layers` will allocate on `input_shape`, without allocating them.

    Counted for the layers of :data:`LAYER_NAMES` that hold weights (Dense, Conv1D, Conv2D,
    BatchNormalization) from their arguments and the shapes ``compute_output_shape`` gives;
    None when a shape cannot be inferred (the build then reports what is wrong).
    """
    shape: Any = (None, *input_shape)
    total = 0
    try:
        for layer in layers:
            kind = type(layer).__name__
            if kind == "Dense":
                total += shape[-1] * layer.units + (layer.units if layer.use_bias else 0)
            elif kind in ("Conv1D", "Conv2D"):
                channels = shape[-1 if layer.data_format == "channels_last" else 1]
                total += (math.prod(layer.kernel_size) * (channels // layer.groups) * layer.filters
                          + (layer.filters if layer.use_bias else 0))
            elif kind == "BatchNormalization":
                total += 4 * shape[layer.axis]
            shape = layer.compute_output_shape(shape)
    except Exception:  # noqa: BLE001 - any inference failure: the real build reports it
        return None
    return total


def build_model(config: dict[str, Any], source: str | os.PathLike | None = None):
    """Build a Keras 3 ``Sequential`` model from a competition config.

    Args:
        config: the parsed config.json (see :func:`read_config`).
        source: the file the config came from, named in errors.

    Returns:
        A built ``keras.Sequential`` with input shape ``[None] + input_shape``.

    Raises:
        PGDLError: a layer without ``layer_name``, a name outside the allowlist, keyword
            arguments the layer rejects, more than :data:`MAX_PARAMETERS` weights, or any
            failure of Keras to build the model (out of memory included).
    """
    import keras

    classes = _layer_classes()
    input_shape = whole_floats_to_int(config["input_shape"])
    layers = []
    for index, layer_def in enumerate(config["model_config"]):
        if not isinstance(layer_def, dict) or not isinstance(layer_def.get("layer_name"), str):
            raise PGDLError(f"layer {index} of model_config has no string \"layer_name\"", source)
        name = layer_def["layer_name"]
        if name not in classes:
            raise PGDLError(
                f"layer {index} has unknown layer_name {short_repr(name, 80)}; supported layers: "
                + ", ".join(LAYER_NAMES),
                source,
            )
        kwargs = whole_floats_to_int({k: v for k, v in layer_def.items() if k != "layer_name"})
        try:
            layers.append(classes[name](**kwargs))
        except Exception as exc:  # noqa: BLE001 - Keras raises many types for bad arguments
            raise PGDLError(f"layer {index} ({name}) has invalid arguments {short_repr(kwargs, 80)}: "
                            f"{_message(exc)}", source) from None
    count = _weight_count(layers, tuple(input_shape))
    if count is not None and count > MAX_PARAMETERS:
        raise PGDLError(f"the layers declare about 10^{int(count.bit_length() * math.log10(2))} "
                        f"weights for input shape {short_repr(input_shape, 80)}, more than the "
                        f"{MAX_PARAMETERS:,} the toolkit allocates; check the layer sizes", source)
    try:
        model = keras.Sequential([keras.Input(shape=tuple(input_shape))] + layers)
    except (TypeError, ValueError) as exc:
        raise PGDLError(f"the layers do not fit together for input shape {short_repr(input_shape, 80)}: "
                        f"{_message(exc)}", source) from None
    except Exception as exc:  # noqa: BLE001 - out of memory (MemoryError, ResourceExhaustedError), ...
        raise PGDLError(f"cannot build the model for input shape {short_repr(input_shape, 80)}: "
                        f"{type(exc).__name__}: {_message(exc)}", source) from None
    return model
