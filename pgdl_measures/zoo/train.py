"""The zoo's training: its training hyper-parameters (:data:`TRAINING_HPARAMS`), their
:class:`~pgdl_measures.training.config.TrainConfig` (:func:`zoo_config`), and
:func:`train_model`, what ``pgdl zoo`` runs for every model of a grid through the project's
one training path, :func:`pgdl_measures.training.fit.train`.

Importing this module imports no Keras (the spec is validated against :data:`TRAINING_HPARAMS`
without it); :func:`train_model` does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pgdl_measures.training.config import TrainConfig
from pgdl_measures.training.datasets import Splits
from pgdl_measures.training.families import HParam, int_at_least, number_in, one_of

TRAINING_HPARAMS = (
    HParam("optimizer", "sgd", one_of("sgd", "adam"), "sgd (with momentum) or adam"),
    HParam("learning_rate", 0.01, number_in(0.0, 10.0, low_open=True), "step size"),
    HParam("momentum", 0.9, number_in(0.0, 1.0), "momentum of sgd (ignored by adam)"),
    HParam("weight_decay", 0.0, number_in(0.0, 1.0), "decoupled weight decay of the optimizer"),
    HParam("batch_size", 32, int_at_least(1), "examples per step"),
    HParam("epochs", 10, int_at_least(1), "passes over the training data (at most, see stop_loss)"),
    HParam("stop_loss", 0.0, number_in(0.0, 100.0), "stop after the first epoch whose mean training "
           "loss is below this (Jiang et al. 2019 stopped at 0.01); 0 trains for all epochs"),
)


def zoo_config(hp: Mapping[str, Any], seed: int) -> TrainConfig:
    """The :class:`~pgdl_measures.training.config.TrainConfig` of a zoo model's hyper-parameters
    (:data:`TRAINING_HPARAMS`): constant learning rate, decoupled weight decay (Keras's),
    ``fit(shuffle=True)``, no divergence limit but a non-finite loss."""
    return TrainConfig(epochs=int(hp["epochs"]), batch_size=int(hp["batch_size"]),
                       learning_rate=float(hp["learning_rate"]), schedule="constant", optimizer=hp["optimizer"],
                       momentum=float(hp["momentum"]), weight_decay=float(hp["weight_decay"]), decay="decoupled",
                       seed=int(seed), shuffle="keras", stop_loss=float(hp.get("stop_loss") or 0.0),
                       diverge_loss=math.inf)


@dataclass
class TrainResult:
    """A trained zoo model with its initial weights and metrics.

    Attributes:
        model: the trained Keras 3 model.
        initial_weights: ``model.get_weights()`` before training.
        metrics: ``train_acc`` (on the whole training split) and ``test_acc`` (held-out split).
        history: the final training loss (None: diverged), the epochs run and the seconds spent.
    """

    model: Any
    initial_weights: list[np.ndarray]
    metrics: dict[str, float]
    history: dict[str, float] = field(default_factory=dict)


def train_model(config: Mapping[str, Any], hp: Mapping[str, Any], x_train: np.ndarray, y_train: np.ndarray,
                x_test: np.ndarray, y_test: np.ndarray, *, seed: int) -> TrainResult:
    """Build `config` (a config.json dict), train it with :func:`~pgdl_measures.training.fit.train`,
    measure train and test accuracy (what ``pgdl zoo`` runs for every model).

    Args:
        config: ``{"model_config": [...], "input_shape": [...]}``.
        hp: the training hyper-parameters of :data:`TRAINING_HPARAMS` (others are ignored).
        x_train, y_train: what the model trains on (integer labels).
        x_test, y_test: the held-out split.
        seed: the Keras seeds (:func:`~pgdl_measures.training.fit.seeded`) while the model is
            built and trained, and the data order.
    """
    from pgdl_measures.tasks.model_config import build_model
    from pgdl_measures.training.fit import accuracy, seeded, train

    with seeded(int(seed)):
        model = build_model(dict(config))
        initial = [np.array(w) for w in model.get_weights()]
        data = Splits("zoo", x_train, y_train, x_test, y_test, int(max(y_train.max(), y_test.max())) + 1)
        fit = train(model, data, zoo_config(hp, seed))
    metrics = {"train_acc": accuracy(model, x_train, y_train), "test_acc": accuracy(model, x_test, y_test)}
    loss = fit.final("loss")
    history = {"final_loss": loss if loss is not None and math.isfinite(loss) else None,  # None: diverged
               "epochs_run": fit.epochs_run,
               "train_seconds": round(fit.seconds, 3),
               # a diverged model can keep a finite loss (pooling drops NaN activations)
               "finite_weights": all(bool(np.isfinite(w).all()) for w in model.get_weights())}
    return TrainResult(model, initial, metrics, history)
