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

import os
from pathlib import Path
from typing import Any

from pgdl_measures.errors import PGDLError
from scoring.files import read_json

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


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a model's config.json.

    Returns:
        ``{"model_config": [layer dicts], "input_shape": [ints]}``.

    Raises:
        PGDLError: the file is missing, not JSON, or lacks ``model_config``/``input_shape``.
    """
    path = Path(path)
    config = read_json(path, "config.json")
    if not isinstance(config, dict) or not isinstance(config.get("model_config"), list):
        raise PGDLError('expected an object with a "model_config" list of layers', path)
    if not isinstance(config.get("input_shape"), list) or not config["input_shape"]:
        raise PGDLError('expected an "input_shape" list, e.g. [32, 32, 3]', path)
    return config


def build_model(config: dict[str, Any], source: str | os.PathLike | None = None):
    """Build a Keras 3 ``Sequential`` model from a competition config.

    Args:
        config: the parsed config.json (see :func:`read_config`).
        source: the file the config came from, named in errors.

    Returns:
        A built ``keras.Sequential`` with input shape ``[None] + input_shape``.

    Raises:
        PGDLError: a layer without ``layer_name``, a name outside the allowlist, or keyword
            arguments the layer rejects.
    """
    import keras

    classes = _layer_classes()
    input_shape = whole_floats_to_int(config["input_shape"])
    layers = []
    for index, layer_def in enumerate(config["model_config"]):
        if not isinstance(layer_def, dict) or "layer_name" not in layer_def:
            raise PGDLError(f"layer {index} of model_config has no \"layer_name\"", source)
        name = layer_def["layer_name"]
        if name not in classes:
            raise PGDLError(
                f"layer {index} has unknown layer_name {name!r}; supported layers: "
                + ", ".join(LAYER_NAMES),
                source,
            )
        kwargs = whole_floats_to_int({k: v for k, v in layer_def.items() if k != "layer_name"})
        try:
            layers.append(classes[name](**kwargs))
        except (TypeError, ValueError) as exc:
            raise PGDLError(f"layer {index} ({name}) has invalid arguments {kwargs}: {exc}", source) from None
    try:
        model = keras.Sequential([keras.Input(shape=tuple(input_shape))] + layers)
    except (TypeError, ValueError) as exc:
        raise PGDLError(f"the layers do not fit together for input shape {input_shape}: {exc}", source) from None
    return model
