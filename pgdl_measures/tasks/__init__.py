"""Reading a competition task: config.json to a Keras model, HDF5 weights, TFRecord shards,
model_configs.json, and downloading the competition's data.

Modules: :mod:`~pgdl_measures.tasks.task` (discovery, :class:`Task`, model_configs.json),
:mod:`~pgdl_measures.tasks.trained` (:class:`TrainedModel`, NumPy only),
:mod:`~pgdl_measures.tasks.model_config` (config.json -> Keras 3),
:mod:`~pgdl_measures.tasks.hdf5`, :mod:`~pgdl_measures.tasks.tfrecords`,
:mod:`~pgdl_measures.tasks.data` (datasets), :mod:`~pgdl_measures.tasks.summary`
(``pgdl task info``), :mod:`~pgdl_measures.tasks.download` (``pgdl data download``, over
:mod:`~pgdl_measures.tasks.archive`, the zip checks and extractor, and
:mod:`~pgdl_measures.tasks.transfer`, the resumable HTTP download).

The names below are imported on first use, so ``import pgdl_measures.tasks.trained`` (what a
packaged submission carries) imports neither pandas nor Keras.
"""

from __future__ import annotations

from typing import Any

_FROM_TASK = ("Task", "find_tasks", "select_models", "GridReport", "grid_report", "read_model_configs",
              "load_trained_model", "load_weights", "MODEL_CONFIGS", "natural_key", "normalize_model_id")

__all__ = ["TrainedModel", *_FROM_TASK]


def __getattr__(name: str) -> Any:
    if name == "TrainedModel":
        from pgdl_measures.tasks.trained import TrainedModel

        return TrainedModel
    if name in _FROM_TASK:
        from pgdl_measures.tasks import task

        return getattr(task, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
