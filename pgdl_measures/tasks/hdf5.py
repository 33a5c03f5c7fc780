"""Write (and read) model weights in the tf.keras 2.x HDF5 layout, which the competition used.

Keras 3's ``model.save_weights`` writes a new layout (``*.weights.h5``) that tf.keras 2.x cannot
read, so the zoo writes the legacy layout itself with h5py. It is the layout of
``tf.keras.Model.save_weights("w.h5")`` (``keras/saving/legacy/hdf5_format.py``,
``save_weights_to_hdf5_group``) and of the competition's ``weights.hdf5`` files::

    /                        attrs: layer_names = [b"conv2d", b"max_pooling2d", b"dense"],
                                    backend = "tensorflow", keras_version = "2.4.0"
    /conv2d                  attrs: weight_names = [b"conv2d/kernel:0", b"conv2d/bias:0"]
    /conv2d/conv2d/kernel:0  dataset, float32 [3, 3, 1, 8]
    /conv2d/conv2d/bias:0    dataset, float32 [8]
    /max_pooling2d           attrs: weight_names = [] (every layer has a group, even without weights)
    ...

Both tf.keras 2.x and Keras 3 (``keras/src/legacy/saving/legacy_h5_format.py``) load such a
file *by order*: the i-th layer group with a non-empty ``weight_names`` goes to the i-th layer of
the model that has weights, and its datasets are read in ``weight_names`` order. Layer names only
need to be unique; we give each layer the name a fresh tf.keras session would (``conv2d``,
``conv2d_1``, ``dense``...), so files do not depend on Keras's global name counters.

Names are stored as fixed-length byte strings, as in the competition's files (tf.keras 2.21
writes variable-length strings; both readers accept either). Attributes larger than HDF5's
64 KiB object-header limit are split into ``layer_names0``, ``layer_names1``... as tf.keras does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pgdl_measures.errors import PGDLError

#: The keras_version written to the root group: the tf.keras release whose layout we reproduce
#: (the competition's files carry it). Readers only treat the value "1" specially (Keras 1.x).
FORMAT_KERAS_VERSION = "2.4.0"
FORMAT_BACKEND = "tensorflow"
#: HDF5 cannot store attributes larger than this in an object header (tf.keras's constant).
HDF5_OBJECT_HEADER_LIMIT = 64512


def tf_keras_layer_name(class_name: str) -> str:
    """The base name tf.keras gives a layer class: ``Conv2D`` -> ``conv2d``, ``MaxPooling2D``
    -> ``max_pooling2d``, ``GlobalAveragePooling2D`` -> ``global_average_pooling2d``."""
    intermediate = re.sub("(.)([A-Z][a-z0-9]+)", r"\1_\2", class_name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", intermediate).lower()


def layer_weight_layout(model) -> list[tuple[str, list[str], list[tuple[int, ...]]]]:
    """``[(layer name, [weight names], [weight shapes])]`` for every layer of `model`, in order.

    Layer names are those of a fresh tf.keras session (``dense``, ``dense_1``...); weight names
    are ``"<layer>/<variable>:0"`` (``"dense/kernel:0"``). The weights of all layers, in order,
    are ``model.get_weights()``.
    """
    counts: dict[str, int] = {}
    layout = []
    for layer in model.layers:
        base = tf_keras_layer_name(type(layer).__name__)
        n = counts.get(base, 0)
        counts[base] = n + 1
        name = base if n == 0 else f"{base}_{n}"
        names = [f"{name}/{_variable_name(v)}:0" for v in layer.weights]
        shapes = [tuple(int(d) for d in v.shape) for v in layer.weights]
        layout.append((name, names, shapes))
    return layout


def _variable_name(variable) -> str:
    # Keras 3: variable.name is "kernel"; tf.keras 2.x: "dense/kernel:0".
    return variable.name.split("/")[-1].split(":")[0]


def _save_attribute(group, name: str, data: Sequence[bytes]) -> None:
    """Store a list of byte strings as `group.attrs[name]`, chunked as tf.keras does."""
    array = np.asarray(data) if len(data) else np.asarray([], dtype=np.float64)
    chunks = [array]
    n = 1
    while any(c.nbytes > HDF5_OBJECT_HEADER_LIMIT for c in chunks):
        n += 1
        chunks = np.array_split(array, n)
    if n == 1:
        group.attrs[name] = array
    else:
        for i, chunk in enumerate(chunks):
            group.attrs[f"{name}{i}"] = chunk


def _load_attribute(group, name: str) -> list[str]:
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, i = [], 0
        while f"{name}{i}" in group.attrs:
            values.extend(group.attrs[f"{name}{i}"])
            i += 1
    return [v.decode("utf8") if hasattr(v, "decode") else str(v) for v in values]


def save_weights(path: str | os.PathLike, model, *, values: Sequence[Any] | None = None) -> Path:
    """Write `model`'s weights to `path` in the tf.keras 2.x HDF5 layout.

    Args:
        path: the file to write (``weights.hdf5``); replaced if it exists.
        model: a built Keras 3 (or tf.keras) model; its layers give the names and shapes.
        values: weights to write instead of the model's current ones, in ``model.get_weights()``
            order (e.g. the weights at initialisation).

    Returns:
        The path written.

    Raises:
        ValueError: `values` does not match the model's weights in number or shapes.
    """
    import h5py

    path = Path(path)
    layout = layer_weight_layout(model)
    values = model.get_weights() if values is None else list(values)
    expected = [shape for _, _, shapes in layout for shape in shapes]
    if len(values) != len(expected):
        raise ValueError(f"got {len(values)} weight arrays, the model has {len(expected)}")
    arrays = [np.asarray(v) for v in values]
    for i, (array, shape) in enumerate(zip(arrays, expected)):
        if tuple(array.shape) != shape:
            raise ValueError(f"weight {i} has shape {array.shape}, the model expects {shape}")
    with h5py.File(path, "w") as f:
        _save_attribute(f, "layer_names", [name.encode("utf8") for name, _, _ in layout])
        f.attrs["backend"] = FORMAT_BACKEND.encode("utf8")
        f.attrs["keras_version"] = FORMAT_KERAS_VERSION.encode("utf8")
        position = 0
        for name, weight_names, _ in layout:
            group = f.create_group(name)
            _save_attribute(group, "weight_names", [w.encode("utf8") for w in weight_names])
            for weight_name in weight_names:
                array = arrays[position]
                position += 1
                dataset = group.create_dataset(weight_name, array.shape, dtype=array.dtype)
                if array.shape:
                    dataset[:] = array
                else:
                    dataset[()] = array
    return path


def read_weights(path: str | os.PathLike) -> list[tuple[str, list[tuple[str, np.ndarray]]]]:
    """Read a tf.keras 2.x HDF5 weights file: ``[(layer name, [(weight name, array)])]``.

    Layers without weights are included with an empty list. The arrays of all layers, in order,
    are what ``model.get_weights()`` returns after ``model.load_weights(path)``.

    Raises:
        PGDLError: the file is missing, not HDF5, or lacks the ``layer_names`` attribute.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise PGDLError("weights file is missing", path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise PGDLError(f"not a readable HDF5 file: {exc}", path) from None
    with f:
        group = f["model_weights"] if "model_weights" in f else f  # whole-model .h5 files
        names = _load_attribute(group, "layer_names")
        if not names:
            raise PGDLError("no layer_names attribute: not a tf.keras 2.x weights file", path)
        out = []
        for name in names:
            layer = group[name]
            out.append((name, [(w, np.asarray(layer[w])) for w in _load_attribute(layer, "weight_names")]))
    return out
