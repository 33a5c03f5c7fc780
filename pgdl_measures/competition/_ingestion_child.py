"""Child-process entry point of `pgdl run-submission`: models of one task through a submission.

Run as ``python -m pgdl_measures.competition._ingestion_child`` by
:mod:`pgdl_measures.competition.ingestion` (a :class:`~pgdl_measures._subprocess.FramedChild`;
the parent imports only :func:`as_float` and :data:`MARKER` from here). It does for each model it is
given what the competition's ingestion program (``ingestion.py``, ``data_manager.py`` and
``model_utils.py`` of the PGDL starting kit, TensorFlow 2.2) did inside its loop:

1. import TensorFlow; with legacy Keras 2 (``TF_USE_LEGACY_KERAS=1``, set by the parent) route
   ``tf.keras.optimizers.<Name>`` to ``tf.keras.optimizers.legacy.<Name>``: those are the
   optimizers TensorFlow 2.2 had, which honour ``lr=`` (the new ones accept it and ignore it),
   and give NumPy back the aliases NumPy 2 removed (``np.int``, ``np.float``, ``np.object``, ...;
   see :func:`provide_numpy_aliases`);
2. build the training data exactly as ``DataManager.load_training_data`` did: an *unbatched*
   ``tf.data.TFRecordDataset`` over the train shards -> ``tf.io.parse_single_example`` ->
   ``tf.io.parse_tensor`` (float32 inputs, int32 label), with the shards in natural sorted order
   (the competition's ``glob.glob`` order was whatever the file system gave);
3. put the submission folder first on ``sys.path`` and ``from complexity import complexity``;
4. for each model: write a marker line to stderr and send ``{"started": model_id}`` (the
   model's clock starts: the budget covers loading the model and ``complexity``, as in the
   competition, not the start-up); ``tf.keras.backend.clear_session()``; build the model as
   ``model_def_to_keras_sequential`` did (see :func:`build_competition_model`) and load
   ``weights_init.hdf5`` (kept as ``model.initial_weights``) then ``weights.hdf5``; call
   ``complexity(model, dataset)``, adding ``program_dir=<submission folder>`` when the function
   has such a parameter (the competition's later ingestion did the same);
5. send one answer per model, ``{"model_id", "value"}`` or ``{"model_id", "error", "stage"}``
   (traceback on stderr). A value ``float()`` cannot convert, NaN or infinite is an error naming
   the model. A failure before the first model (stage ``start-up``, ``data`` or ``import``) is
   reported once, then the child exits.

The request, the first frame the parent sends, is a dict with the keys ``submission_dir``,
``train_dir``, ``models`` (a list of ``[model_id, model_dir]``) and ``keras`` ("2" or "3").
"""

from __future__ import annotations

import inspect
import math
import os
import sys
import traceback

#: optimizers whose legacy (TensorFlow 2.2) class replaces the new one under legacy Keras 2
LEGACY_OPTIMIZERS = ("Adadelta", "Adagrad", "Adam", "Adamax", "Ftrl", "Nadam", "Optimizer",
                     "RMSprop", "SGD")


def patch_legacy_optimizers(tf) -> None:
    """Make ``tf.keras.optimizers.Adam`` (etc.) the legacy class, as in TensorFlow 2.2.

    Only under legacy Keras 2 (``tf_keras``); a no-op when ``tf.keras`` is Keras 3.
    """
    if tf.keras.__name__.startswith("keras."):  # Keras 3: `optimizers.legacy` raises
        return
    optimizers = tf.keras.optimizers
    legacy = getattr(optimizers, "legacy", None)
    if legacy is None:
        return
    for name in LEGACY_OPTIMIZERS:
        if hasattr(legacy, name):
            setattr(optimizers, name, getattr(legacy, name))


def _numpy_aliases(np) -> dict:
    """NumPy names 2020 code used that NumPy 2 no longer has, with what they meant then."""
    return {
        # the builtin-type aliases (deprecated in NumPy 1.20, removed in 1.24); np.bool and
        # np.long exist again in NumPy 2 (as np.bool_ and the C long) and are left as they are
        "int": int, "float": float, "complex": complex, "object": object, "str": str,
        "unicode": str,
        # scalar-type and constant aliases removed in NumPy 2.0
        "float_": np.float64, "complex_": np.complex128, "unicode_": np.str_,
        "string_": np.bytes_, "int0": np.intp, "uint0": np.uintp, "bool8": np.bool_,
        "object0": np.object_, "str0": np.str_, "bytes0": np.bytes_, "void0": np.void,
        "Inf": np.inf, "Infinity": np.inf, "infty": np.inf, "PINF": np.inf, "NINF": -np.inf,
        "NaN": np.nan, "PZERO": 0.0, "NZERO": -0.0,
        # functions removed in NumPy 2.0 (asscalar: 1.23) that have a plain replacement
        "product": np.prod, "cumproduct": np.cumprod, "sometrue": np.any, "alltrue": np.all,
        "round_": np.round, "asscalar": lambda a: a.item(),
    }


def provide_numpy_aliases() -> list[str]:
    """Give ``numpy`` back the names of NumPy 1.18 (TensorFlow 2.2's) that NumPy 2 removed.

    ``np.int``, ``np.float``, ``np.complex``, ``np.object``, ``np.str`` and ``np.unicode`` are
    the builtins again, ``np.float_`` is ``np.float64``, ``np.NaN`` is ``np.nan`` and so on
    (see :func:`_numpy_aliases`). Only names the installed NumPy lacks are set.

    Returns:
        The names set.
    """
    import numpy as np

    added = []
    for name, value in _numpy_aliases(np).items():
        if name not in vars(np):
            setattr(np, name, value)
            added.append(name)
    return added


def competition_dataset(tf, train_dir: str):
    """The training data as the competition's ``DataManager.load_training_data`` built it.

    Returns:
        An unbatched ``tf.data.Dataset`` of ``(inputs float32, label int32)``.
    """
    from pgdl_measures.tasks.tfrecords import list_shards

    shards = [os.fspath(p) for p in list_shards(train_dir)]

    def deserialize(serialized):
        record = tf.io.parse_single_example(serialized, features={
            "inputs": tf.io.FixedLenFeature([], tf.string),
            "output": tf.io.FixedLenFeature([], tf.string),
        })
        inputs = tf.io.parse_tensor(record["inputs"], out_type=tf.float32)
        output = tf.io.parse_tensor(record["output"], out_type=tf.int32)
        return inputs, output

    return tf.data.TFRecordDataset(shards).map(deserialize)


def build_competition_model(tf, config: dict, *, explicit_input: bool = False):
    """A ``tf.keras`` Sequential model that behaves like the competition's.

    As ``model_utils.model_def_to_keras_sequential`` did: every layer is a subclass of its
    ``tf.keras.layers`` class (named ``wrapped_layer``) whose ``__call__`` stores its input in
    ``self._last_seen_input``; the model's ``__call__`` takes a ``tape`` keyword and watches the
    input on that ``tf.GradientTape``; whole-number float arguments become ints; the model is
    built with ``model.build([0] + input_shape)``. Layer names must be on the allowlist of
    :mod:`pgdl_measures.tasks.model_config` (the competition looked up any attribute).

    One addition: an input of unknown rank (a batch of the competition's dataset, whose
    ``parse_tensor`` leaves the shape unknown, met inside ``model.predict``/``evaluate``) is
    given the model's input shape, which today's Keras needs to build the call graph.

    Args:
        tf: the ``tensorflow`` module (``tf.keras`` is tf_keras or Keras 3).
        config: the model's parsed ``config.json``.
        explicit_input: start the model with ``tf.keras.Input`` instead (used under Keras 3,
            where a model built with ``build()`` has no ``model.input``/``model.output``).
    """
    from pgdl_measures.errors import PGDLError
    from pgdl_measures.tasks.model_config import LAYER_NAMES, whole_floats_to_int

    input_shape = whole_floats_to_int(list(config["input_shape"]))
    batch_shape = [None] + input_shape

    class Sequential(tf.keras.Sequential):
        def __call__(self, x, tape=False, *args, **kwargs):
            if tape:
                tape.watch(x)
            if isinstance(x, tf.Tensor) and x.shape.rank is None:
                # a batch of the competition's dataset inside a tf.function (predict, evaluate):
                # parse_tensor left its shape unknown, which Keras 2.21 / 3 cannot build on
                x = tf.ensure_shape(x, batch_shape)
            return super().__call__(x, *args, **kwargs)

    def wrap_layer(layer_cls, **kwargs):
        class wrapped_layer(layer_cls):  # noqa: N801 - the competition's class name
            def __call__(self, x, *args, **kw):
                self._last_seen_input = x
                return super().__call__(x, *args, **kw)

        return wrapped_layer(**kwargs)

    layers = []
    for index, layer_def in enumerate(config["model_config"]):
        name = layer_def.get("layer_name")
        if name not in LAYER_NAMES:
            raise PGDLError(f"layer {index} has unknown layer_name {name!r}; supported layers: "
                            + ", ".join(LAYER_NAMES))
        kwargs = whole_floats_to_int({k: v for k, v in layer_def.items() if k != "layer_name"})
        layers.append(wrap_layer(getattr(tf.keras.layers, name), **kwargs))
    if explicit_input:
        model = Sequential([tf.keras.Input(shape=tuple(input_shape))] + layers)
    else:
        model = Sequential(layers)
        model.build([0] + input_shape)
    return model


def load_competition_model(tf, model_dir: str, *, explicit_input: bool = False):
    """Build a model folder and load its weights as ``DataManager.load_model`` did."""
    from pgdl_measures.tasks.model_config import read_config

    config = read_config(os.path.join(model_dir, "config.json"))
    model = build_competition_model(tf, config, explicit_input=explicit_input)
    init_path = os.path.join(model_dir, "weights_init.hdf5")
    if os.path.exists(init_path):
        _load_weights(model, init_path)
        model.initial_weights = model.get_weights()
    _load_weights(model, os.path.join(model_dir, "weights.hdf5"))
    return model


def _load_weights(model, path: str) -> None:
    """``model.load_weights(path)``; a file that cannot be read is one PGDLError naming it."""
    from pgdl_measures.errors import PGDLError

    if not os.path.isfile(path):
        raise PGDLError("the model's weights file is missing", path)
    try:
        model.load_weights(path)
    except Exception as exc:  # noqa: BLE001 - h5py and Keras raise many types for a bad file
        message = " ".join(str(exc).split())
        message = message if len(message) <= 300 else message[:297] + "..."
        raise PGDLError(f"cannot load these weights into the model of config.json "
                        f"({type(exc).__name__}: {message})", path) from None


def complexity_kwargs(function, program_dir: str) -> dict:
    """``{"program_dir": ...}`` when `function` declares that parameter, else ``{}``."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return {}
    param = parameters.get("program_dir")
    if param is not None and param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
        return {"program_dir": program_dir}
    return {}


def as_float(value, model_id: str) -> float:
    """``float(value)`` as the ingestion program did, refusing NaN and infinity.

    The competition wrote a NaN as a bare ``NaN`` into the ``.predict`` file, which is not JSON
    and which its scorer could not rank; here such a model fails, named, instead.

    Raises:
        TypeError: naming the model, when ``float()`` cannot convert the value.
        ValueError: naming the model, when the value is NaN or infinite.
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise TypeError(f"{model_id}: complexity returned {type(value).__name__} {shown}; it must "
                        f"return a float (a Python, NumPy or scalar tensor value)") from None
    if not math.isfinite(number):
        raise ValueError(f"{model_id}: complexity returned {number}; a .predict file holds finite "
                         f"numbers only (JSON has no NaN or infinity)")
    return number


#: the line written to stderr before each model (the parent splits stderr at these lines)
MARKER = "[pgdl run-submission] model "


def _error(exc: BaseException) -> str:
    """The error's line; its traceback goes to stderr, except for a PGDLError (a fault of an
    input file, which its message names): that is the one line."""
    from pgdl_measures.errors import PGDLError

    if isinstance(exc, PGDLError):
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
    else:
        traceback.print_exc()
    sys.stderr.flush()
    return f"{type(exc).__name__}: {exc}".strip()


def main() -> int:
    from pgdl_measures._subprocess import ParentChannel, exit_with_parent

    channel = ParentChannel()
    exit_with_parent()  # a parent killed outright takes this child and what it started along
    request = channel.receive()
    models = request["models"]
    stage = "start-up"
    try:
        import tensorflow as tf

        tf.compat.v1.enable_v2_behavior()
        keras3 = request["keras"] == "3"
        if not keras3:
            patch_legacy_optimizers(tf)
            provide_numpy_aliases()
        stage = "data"
        dataset = competition_dataset(tf, request["train_dir"])
        stage = "import"
        submission_dir = request["submission_dir"]
        sys.path.insert(0, submission_dir)
        from complexity import complexity

        kwargs = complexity_kwargs(complexity, submission_dir)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt included
        channel.send({"model_id": models[0][0], "error": _error(exc), "stage": stage})
        return 1
    failed = 0
    for model_id, model_dir in models:
        print(f"\n{MARKER}{model_id}", file=sys.stderr, flush=True)
        channel.send({"started": model_id})
        stage = "load_model"
        try:
            tf.keras.backend.clear_session()
            model = load_competition_model(tf, model_dir, explicit_input=keras3)
            stage = "complexity"
            value = as_float(complexity(model, dataset, **kwargs), model_id)
        except BaseException as exc:  # record and go on to the next model
            failed += 1
            channel.send({"model_id": model_id, "error": _error(exc), "stage": stage})
            continue
        finally:
            model = None
        channel.send({"model_id": model_id, "value": value})
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
