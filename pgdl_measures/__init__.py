"""PGDL toolkit: read Predicting-Generalization-in-Deep-Learning tasks, compute complexity
measures on Keras 3 models (TensorFlow or JAX backend) and score them.

The public names, importable from here::

    from pgdl_measures import (Measure, MeasureError, get_measure, list_measures, find_tasks,
                               Task, TrainedModel, MeasureContract, PGDLError)

Importing this package is cheap: each name is imported from its module on first use, so Keras,
TensorFlow, pandas and pytest (for :class:`MeasureContract`) load only when needed.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

#: public name -> the module (under this package) that defines it
_EXPORTS = {
    "PGDLError": "errors",
    "Measure": "measures.base",
    "MeasureError": "measures.base",
    "get_measure": "registry",
    "list_measures": "registry",
    "available_measures": "registry",
    "find_tasks": "tasks.task",
    "Task": "tasks.task",
    "TrainedModel": "tasks.trained",
    "MeasureContract": "testing",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    # the module name is built at run time on purpose: `pgdl package` vendors what a measure
    # imports, and these names would otherwise pull every layer into a submission
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
