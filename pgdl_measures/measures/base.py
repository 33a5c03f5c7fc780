"""The measure plugin contract.

A measure is a small class: metadata as class attributes, explicit keyword parameters in its
constructor (recorded with every result, so a run can be repeated exactly), and one
``compute(trained)`` method returning a float. The math lives in plain functions beside it.
Calling the measure (``measure(trained)``) checks what it needs first and that the value is a
finite float afterwards, so a measure never hands back a silent NaN; ``compute`` runs inside
:func:`pgdl_measures.autodiff.full_float32` (true float32 on GPUs that default to TensorFloat-32).
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pgdl_measures import autodiff
from pgdl_measures.errors import PGDLError
from pgdl_measures.params import Rule, check_params

BACKENDS = ("tensorflow", "jax")


class MeasureError(PGDLError):
    """A measure could not be computed on a model (what it needs is missing, it failed, or it
    gave a NaN or infinite value). The message names the measure and the model."""

    def __init__(self, measure: str, model: str, problem: str, path=None):
        self.measure, self.model = measure, model
        super().__init__(f"measure {measure!r} on {model}: {problem}", path)


def validate_params(rules: Mapping[str, Rule]) -> Callable[[Callable], Callable]:
    """Decorate a measure's ``__init__`` so its arguments are checked against `rules` first.

    Each rule is a :mod:`pgdl_measures.params` constraint (or None, or a list of them)::

        @validate_params({"max_examples": [POSITIVE_INT, None], "batch_size": POSITIVE_INT})
        def __init__(self, *, max_examples: int | None = None, batch_size: int = 256):

    The signature (and so ``--param`` parsing by type) is the decorated function's; the rules
    are recorded for :meth:`Measure.param_rules`.

    Raises:
        PGDLError: (when the measure is built) a value breaks its rule; the one-line message
            names the measure and the parameter.
        TypeError: (when decorating) a rule names no parameter of the function.
    """
    def decorate(init: Callable) -> Callable:
        signature = inspect.signature(init)
        unknown = sorted(set(rules) - set(signature.parameters))
        if unknown:
            raise TypeError(f"{init.__qualname__} has no parameter(s) {', '.join(unknown)} to validate")

        @functools.wraps(init)
        def checked(self, *args, **kwargs):
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            check_params(rules, bound.arguments, where=f"measure {self.name!r}")
            init(self, *args, **kwargs)

        checked.param_rules = dict(rules)
        return checked

    return decorate


class Measure:
    """Base class of complexity measures.

    Subclasses set the class attributes and implement :meth:`compute`. Their ``__init__``
    takes keyword-only parameters with defaults and stores each under the same attribute name
    (the contract suite checks this), so :attr:`params` can record them; it states what each
    accepts with :func:`validate_params`.

    Attributes:
        name: the measure's registry name (snake_case noun, e.g. ``"agn"``).
        summary: one line shown by ``pgdl measures list``.
        direction: +1 when a larger value predicts a larger generalization gap, -1 otherwise.
        needs_train_data: the measure reads the training data.
        needs_initial_weights: the measure needs the weights at initialisation.
        needs_images: the measure transforms images (flips, shifts), so it applies only to
            models taking inputs ``[height, width, channels]``; others are refused with a
            :class:`MeasureError` saying so.
        backends: the Keras backends it supports.
        reference: the paper and equation it implements.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    direction: ClassVar[int] = 1
    needs_train_data: ClassVar[bool] = True
    needs_initial_weights: ClassVar[bool] = False
    needs_images: ClassVar[bool] = False
    backends: ClassVar[tuple[str, ...]] = BACKENDS
    reference: ClassVar[str] = ""
    #: Raised when the computation changes with the same parameters, so that results stored by
    #: the earlier computation are not reused (see ``evaluate.store.measure_key``).
    revision: ClassVar[int] = 1

    def __init__(self):
        """A measure without parameters needs no ``__init__`` of its own (object's takes
        ``*args, **kwargs``, which :meth:`param_names` would report as parameters)."""

    @classmethod
    def param_names(cls) -> list[str]:
        """The constructor's keyword parameters, in declaration order."""
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self"]

    @classmethod
    def param_rules(cls) -> dict[str, Rule]:
        """The rule of each constructor parameter that has one (see :func:`validate_params`); a
        subclass's rule for a parameter replaces its base's."""
        rules: dict[str, Rule] = {}
        for klass in reversed(cls.__mro__):
            rules.update(getattr(vars(klass).get("__init__"), "param_rules", {}))
        return {name: rules[name] for name in cls.param_names() if name in rules}

    @property
    def params(self) -> dict[str, Any]:
        """The parameters this instance was built with (recorded with each result)."""
        return {name: getattr(self, name) for name in self.param_names()}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    def compute(self, trained) -> float:
        """Return the measure's value on one :class:`~pgdl_measures.tasks.TrainedModel`."""
        raise NotImplementedError

    def __call__(self, trained) -> float:
        """Check the measure's needs, compute it, and check the value is a finite float.

        Raises:
            MeasureError: a need is not met, the backend is not supported, the computation
                raised, or the value is NaN or infinite.
        """
        import keras

        label = getattr(trained, "label", "model")
        backend = keras.backend.backend()
        if backend not in self.backends:
            raise MeasureError(self.name, label, f"does not support the {backend} backend (supports {', '.join(self.backends)})")
        if self.needs_initial_weights and getattr(trained, "initial_weights", None) is None:
            raise MeasureError(self.name, label, "needs the initial weights (weights_init.hdf5), which this model lacks",
                               getattr(trained, "path", None))
        if self.needs_images:
            shape = tuple(trained.model.inputs[0].shape[1:])
            if len(shape) != 3:
                raise MeasureError(self.name, label, f"needs image inputs [height, width, channels]; this model "
                                   f"takes inputs of shape {shape}, so the measure does not apply to this task")
        if self.needs_train_data:
            data = getattr(trained, "train", None)
            if data is None or len(data) == 0:
                raise MeasureError(self.name, label, "needs training data, and the dataset is empty or missing")
        try:
            with autodiff.full_float32():
                value = self.compute(trained)
        except MeasureError:
            raise
        except PGDLError as exc:
            raise MeasureError(self.name, label, str(exc)) from exc
        except Exception as exc:  # a plugin's failure is reported, never a crash of the run
            raise MeasureError(self.name, label, f"{type(exc).__name__}: {exc}") from exc
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise MeasureError(self.name, label, f"returned {value!r}, not a float") from None
        if not math.isfinite(value):
            raise MeasureError(self.name, label, f"gave a non-finite value ({value})")
        return value
