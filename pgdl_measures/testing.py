"""The measure contract suite, shipped for plugin authors (needs pytest).

Every measure, built-in or plugin, proves it keeps the contract of
:class:`~pgdl_measures.measures.base.Measure` by subclassing :class:`MeasureContract` in a
test module; pytest collects its ``test_*`` methods::

    from pgdl_measures.testing import MeasureContract
    from my_package.my_measure import MyMeasure

    class TestMyMeasure(MeasureContract):
        measure_class = MyMeasure

Override :meth:`MeasureContract.make_measure` to test non-default parameters. The suite checks:

* metadata: a snake_case ``name``, ``direction`` +1 or -1, ``backends`` a non-empty subset of
  ``("tensorflow", "jax")``, a one-line ``summary``, a ``reference``, boolean needs;
* the constructor: keyword parameters only (no ``*args``/``**kwargs``), each with a default,
  stored under its own name, JSON-recordable, and rebuilding the measure from
  :attr:`~pgdl_measures.measures.base.Measure.params` gives the same parameters;
* a finite float on a tiny dense model and a tiny convolutional model (with batch
  normalization), the same value twice under the same seed, and the model's weights left as
  they were;
* declared needs: a measure that needs initial weights (training data) fails with
  :class:`~pgdl_measures.measures.base.MeasureError` without them (on a missing or empty
  dataset); one that does not declare a need computes without it; a measure that
  ``needs_images`` refuses the dense model (feature vectors) with a ``MeasureError`` naming
  image inputs, and its other checks run on the convolutional model;
* backends: the checks that run the measure use the current process's Keras backend
  (``KERAS_BACKEND``) and are skipped when the measure does not declare it; there, calling
  the measure must fail with ``MeasureError``. Run the suite once per backend.

The tiny models (:func:`tiny_trained_model`) are built with Keras and small random
:class:`~pgdl_measures.tasks.data.ArrayDataset` data, and wrapped in a
:class:`~pgdl_measures.tasks.TrainedModel` whose initial weights come from a second, fresh
initialisation, so trained and initial weights differ.
"""

from __future__ import annotations

import inspect
import json
import math
import re
from typing import ClassVar

import numpy as np
import pytest

from pgdl_measures.measures.base import BACKENDS, Measure, MeasureError
from pgdl_measures.tasks.data import ArrayDataset
from pgdl_measures.tasks.trained import TrainedModel

__all__ = ["MeasureContract", "tiny_trained_model", "MODEL_KINDS", "NUM_CLASSES"]

#: The tiny architectures the suite runs every measure on.
MODEL_KINDS = ("dense", "conv")
#: Classes of the tiny models' problems.
NUM_CLASSES = 3
_INPUT_SHAPES = {"dense": (6,), "conv": (8, 8, 3)}
_NUM_EXAMPLES = 48
_SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def _build(kind: str):
    import keras

    if kind == "dense":
        layers = [keras.layers.Dense(8, activation="relu"), keras.layers.Dense(NUM_CLASSES)]
    elif kind == "conv":
        layers = [keras.layers.Conv2D(4, 3, padding="same"), keras.layers.BatchNormalization(),
                  keras.layers.ReLU(), keras.layers.MaxPooling2D(2), keras.layers.Conv2D(4, 3, activation="relu"),
                  keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(NUM_CLASSES)]
    else:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {MODEL_KINDS}")
    return keras.Sequential([keras.Input(shape=_INPUT_SHAPES[kind])] + layers, name=f"tiny_{kind}")


def tiny_trained_model(kind: str = "dense", *, seed: int = 0, with_initial_weights: bool = True,
                       with_train: bool = True, empty_train: bool = False) -> TrainedModel:
    """A tiny model with random weights, random data and different initial weights.

    The same `kind` and `seed` give the same model, data and initial weights. Building it
    resets Keras's global random seed (``keras.utils.set_random_seed``).

    Args:
        kind: ``"dense"`` (6 features -> 8 ReLU units -> 3 logits) or ``"conv"`` (8x8x3
            images -> conv, batch norm, ReLU, max-pool, conv, global pooling -> 3 logits).
        seed: the seed of weights and data.
        with_initial_weights: give the model initial weights (a fresh initialisation of the
            same architecture with another seed).
        with_train: give the model training data (48 random examples, labels in 0..2).
        empty_train: give it an empty training dataset instead.

    Returns:
        A :class:`~pgdl_measures.tasks.TrainedModel` with the same data as train and test.
    """
    import keras

    keras.utils.set_random_seed(seed + 1)
    initial = [np.array(w) for w in _build(kind).get_weights()]
    keras.utils.set_random_seed(seed)
    model = _build(kind)
    rng = np.random.default_rng(seed)
    # batch-norm statistics as training would leave them: not their initial 0 and 1
    for variable in model.non_trainable_weights:
        shape = tuple(variable.shape)
        variable.assign((rng.uniform(0.5, 1.5, shape) if "variance" in variable.path else rng.normal(0, 0.1, shape))
                        .astype(variable.dtype))
    x = rng.normal(size=(_NUM_EXAMPLES,) + _INPUT_SHAPES[kind]).astype(np.float32)
    y = rng.integers(0, NUM_CLASSES, size=_NUM_EXAMPLES)
    data = ArrayDataset(x, y)
    if empty_train:
        train = ArrayDataset(x[:0], y[:0])
    else:
        train = data if with_train else None
    return TrainedModel(model_id=f"model_{kind}", model=model,
                        initial_weights=initial if with_initial_weights else None,
                        train=train, test=data, task="contract")


class MeasureContract:
    """The contract every measure keeps; subclass it in a test module and set `measure_class`.

    Attributes:
        measure_class: the :class:`~pgdl_measures.measures.base.Measure` subclass under test.
        seed: the seed of the tiny models and of the repeatability check.
        rel_tol: relative tolerance of "the same value twice under the same seed".
    """

    measure_class: ClassVar[type[Measure] | None] = None
    seed: ClassVar[int] = 0
    rel_tol: ClassVar[float] = 1e-6

    # -- hooks --------------------------------------------------------------------------
    def make_measure(self) -> Measure:
        """The measure under test; override to pass parameters."""
        if self.measure_class is None:
            raise TypeError(f"{type(self).__name__} must set measure_class (or override make_measure)")
        return self.measure_class()

    def make_trained(self, kind: str, **kwargs) -> TrainedModel:
        """The tiny model of `kind` the measure runs on (see :func:`tiny_trained_model`)."""
        return tiny_trained_model(kind, seed=self.seed, **kwargs)

    def _cls(self) -> type:
        return type(self.make_measure())

    @staticmethod
    def _kind_for(measure: Measure, kind: str = "dense") -> str:
        """The tiny model a check runs on: the conv model for a measure that needs images."""
        return "conv" if getattr(measure, "needs_images", False) else kind

    def _require_backend(self, measure: Measure) -> None:
        import keras

        backend = keras.backend.backend()
        if backend not in measure.backends:
            pytest.skip(f"{measure.name} does not declare the {backend} backend")

    # -- metadata -----------------------------------------------------------------------
    def test_is_measure_subclass(self):
        cls = self._cls()
        assert issubclass(cls, Measure), f"{cls.__name__} must subclass pgdl_measures.measures.Measure"
        assert cls.compute is not Measure.compute, f"{cls.__name__} must implement compute(trained)"

    def test_name_is_snake_case(self):
        name = self._cls().name
        assert isinstance(name, str) and _SNAKE_CASE.match(name), \
            f"name {name!r} must be a snake_case noun such as 'distance_from_init'"

    def test_direction(self):
        direction = self._cls().direction
        assert type(direction) is int and direction in (1, -1), \
            f"direction must be the int +1 (larger value, larger gap) or -1, got {direction!r}"

    def test_backends(self):
        backends = self._cls().backends
        assert isinstance(backends, (tuple, list)) and backends, "backends must be a non-empty tuple"
        assert set(backends) <= set(BACKENDS), f"backends {backends!r} must be a subset of {BACKENDS}"

    def test_summary_and_reference(self):
        cls = self._cls()
        for attr in ("summary", "reference"):
            value = getattr(cls, attr)
            assert isinstance(value, str) and value.strip(), f"{attr} must be a non-empty string"
        assert "\n" not in cls.summary, "summary must be one line (it is a row of `pgdl measures list`)"

    def test_needs_are_booleans(self):
        cls = self._cls()
        for attr in ("needs_train_data", "needs_initial_weights", "needs_images"):
            assert isinstance(getattr(cls, attr), bool), f"{attr} must be True or False"

    def test_constructor_takes_keyword_parameters_with_defaults(self):
        cls = self._cls()
        sig = inspect.signature(cls.__init__)
        for param in list(sig.parameters.values())[1:]:
            assert param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD), \
                f"{cls.__name__}.__init__ takes {param}: parameters must be explicit keywords (no *args/**kwargs)"
            assert param.kind is not param.POSITIONAL_ONLY, f"parameter {param.name} must be passable by keyword"
            assert param.default is not param.empty, f"parameter {param.name} needs a default"
        defaults = cls()
        for param in list(sig.parameters.values())[1:]:
            assert hasattr(defaults, param.name), \
                f"{cls.__name__}.__init__ must store parameter {param.name} as self.{param.name}"
            assert getattr(defaults, param.name) == param.default, \
                f"self.{param.name} is {getattr(defaults, param.name)!r} but the default is {param.default!r}"

    def test_parameters_are_recorded_and_repeatable(self):
        measure = self.make_measure()
        params = measure.params
        json.dumps(params)  # recorded with every result
        assert type(measure)(**params).params == params
        assert repr(measure).startswith(type(measure).__name__ + "(")

    # -- values -------------------------------------------------------------------------
    @pytest.mark.parametrize("kind", MODEL_KINDS)
    def test_value(self, kind):
        """A finite float, the model's weights left as they were, the same value again under the
        same seed (a measure that needs images refuses the dense model instead)."""
        import keras

        measure = self.make_measure()
        self._require_backend(measure)
        if getattr(measure, "needs_images", False) and kind != "conv":
            with pytest.raises(MeasureError, match="image"):
                measure(self.make_trained(kind))
            return
        trained = self.make_trained(kind)
        before = [np.array(w) for w in trained.model.get_weights()]
        keras.utils.set_random_seed(self.seed)
        first = measure(trained)
        assert type(first) is float and math.isfinite(first), f"the value must be a finite float, got {first!r}"
        after = trained.model.get_weights()
        assert len(after) == len(before)
        for index, (b, a) in enumerate(zip(before, after)):
            assert np.array_equal(a, b), f"weight array {index} changed: a measure must restore what it perturbs"
        keras.utils.set_random_seed(self.seed)
        second = measure(trained)
        assert second == pytest.approx(first, rel=self.rel_tol, abs=1e-12), \
            f"another value under the same seed: {first!r}, then {second!r}"

    # -- needs --------------------------------------------------------------------------
    def test_initial_weights_need(self):
        measure = self.make_measure()
        self._require_backend(measure)
        trained = self.make_trained(self._kind_for(measure), with_initial_weights=False)
        if measure.needs_initial_weights:
            with pytest.raises(MeasureError, match="initial weights"):
                measure(trained)
        else:
            assert math.isfinite(measure(trained)), "needs_initial_weights is False, so it must work without them"

    def test_train_data_need(self):
        measure = self.make_measure()
        self._require_backend(measure)
        if measure.needs_train_data:
            for kwargs in ({"with_train": False}, {"empty_train": True}):
                with pytest.raises(MeasureError, match="training data"):
                    measure(self.make_trained(self._kind_for(measure), **kwargs))
        else:
            assert math.isfinite(measure(self.make_trained(self._kind_for(measure), with_train=False))), \
                "needs_train_data is False, so it must work without training data"

    # -- backends -----------------------------------------------------------------------
    def test_undeclared_backend_is_refused(self):
        import keras

        measure = self.make_measure()
        backend = keras.backend.backend()
        if backend in measure.backends:
            pytest.skip(f"{measure.name} declares the {backend} backend")
        with pytest.raises(MeasureError, match="backend"):
            measure(self.make_trained("dense"))
