"""Training: Keras 3 models, datasets, ``fit`` with the study's schedule, gradient-norm trackers,
and the study's measurement experiments.

* :mod:`~pgdl_measures.training.models`: MLP, LeNet-5, CIFAR ResNets, DenseNet-BC, PGDL VGG/NiN
  (:mod:`~pgdl_measures.training.layers`: the layers they add to Keras's);
* :mod:`~pgdl_measures.training.families`: the PGDL families as competition layer lists (the zoo's);
* :mod:`~pgdl_measures.training.datasets`: offline digits and MNIST digits, MNIST/Fashion-MNIST/
  CIFAR/SVHN readers, normalisation, augmentation, subset and validation split;
* :mod:`~pgdl_measures.training.config`: :class:`~pgdl_measures.training.config.TrainConfig`
  and its learning-rate schedule; :mod:`~pgdl_measures.training.optimizers`: the Keras
  optimizer (SGD with coupled or decoupled weight decay, Adam);
* :mod:`~pgdl_measures.training.feeding`: seeded, resumable training batches;
* :mod:`~pgdl_measures.training.callbacks`: test metrics, divergence, progress, history CSV and
  the atomic checkpoint;
* :mod:`~pgdl_measures.training.fit`: :func:`~pgdl_measures.training.fit.train` (the driver:
  resumable, divergence, CSV/TensorBoard);
* :mod:`~pgdl_measures.training.trackers`: exact AGN, online AGN and GN as Keras callbacks;
* :mod:`~pgdl_measures.training.experiments`: ``gn-vs-agn``, ``timing``, ``fit-regimes``.

Nothing here imports TensorFlow or JAX directly: autodiff goes through
:mod:`pgdl_measures.autodiff`. Importing this package imports no Keras: the names below are
imported from their modules on first use (PEP 562), and the modules that define Keras
subclasses (``optimizers``, ``feeding``, ``callbacks``, ``fit``, ``trackers``, ``layers``)
are imported only by each other and on first use.
"""

from __future__ import annotations

from typing import Any

#: public name -> the module (under this package) that defines it
_EXPORTS = {
    "TrainConfig": "config",
    "Splits": "datasets",
    "load_dataset": "datasets",
    "prepare": "datasets",
    "build": "models",
    "train": "fit",
    "seeded": "fit",
    "accuracy": "fit",
    "FitResult": "fit",
    "EpochBatches": "feeding",
    "CoupledSGD": "optimizers",
    "ExactAGN": "trackers",
    "GradientNormTracker": "trackers",
    "OnlineAGNMetric": "trackers",
    "ZeroPadShortcut": "layers",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
