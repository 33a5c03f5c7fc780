"""Train one zoo model with Keras 3 ``model.fit`` (backend-neutral) and measure its accuracy.

Weight decay is applied by the optimizer (decoupled, Keras 3's ``weight_decay`` argument of
SGD/Adam: after each step every weight is multiplied by ``1 - learning_rate * weight_decay``),
not as a ``kernel_regularizer`` in config.json, so configs stay plain layer arguments that the
competition's loader builds; the value is recorded as a hyper-parameter only.

Seeds: :func:`train_model` calls ``keras.utils.set_random_seed(seed)`` before building the
model, so initial weights, dropout masks and the order of mini-batches are fixed by the seed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pgdl_measures.zoo.architectures import HParam, int_at_least, number_in, one_of

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


def make_optimizer(hp: Mapping[str, Any]):
    """The Keras 3 optimizer of a model's hyper-parameters (see :data:`TRAINING_HPARAMS`)."""
    import keras

    decay = float(hp["weight_decay"]) or None
    if hp["optimizer"] == "adam":
        return keras.optimizers.Adam(learning_rate=hp["learning_rate"], weight_decay=decay)
    return keras.optimizers.SGD(learning_rate=hp["learning_rate"], momentum=hp["momentum"],
                                weight_decay=decay)


def accuracy(model, x: np.ndarray, y: np.ndarray, *, batch_size: int = 512) -> float:
    """Fraction of examples whose largest logit is the label (inference mode: no dropout).

    Calls the model eagerly batch by batch: ``model.predict`` would trace a new function for
    each dataset size, and TensorFlow warns about the retracing.
    """
    import keras

    predicted = [np.argmax(keras.ops.convert_to_numpy(model(x[i:i + batch_size], training=False)), axis=-1)
                 for i in range(0, len(x), batch_size)]
    return float(np.mean(np.concatenate(predicted) == np.asarray(y).reshape(-1)))


def _stop_at_loss(threshold: float):
    """A Keras callback that stops training once an epoch's mean loss is below `threshold`."""
    import keras

    class StopAtLoss(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if logs and logs.get("loss", float("inf")) < threshold:
                self.model.stop_training = True

    return StopAtLoss()


@dataclass
class TrainResult:
    """A trained model with its initial weights and metrics.

    Attributes:
        model: the trained Keras 3 model.
        initial_weights: ``model.get_weights()`` before training.
        metrics: ``train_acc`` (on the whole training split) and ``test_acc`` (held-out split).
        history: the final training loss and the seconds spent.
    """

    model: Any
    initial_weights: list[np.ndarray]
    metrics: dict[str, float]
    history: dict[str, float] = field(default_factory=dict)


def train_model(config: Mapping[str, Any], hp: Mapping[str, Any], x_train: np.ndarray,
                y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *,
                seed: int) -> TrainResult:
    """Build `config` (a config.json dict), train it, and measure train and test accuracy.

    Args:
        config: ``{"model_config": [...], "input_shape": [...]}``.
        hp: the training hyper-parameters of :data:`TRAINING_HPARAMS` (others are ignored).
        x_train, y_train: what the model trains on (integer labels).
        x_test, y_test: the held-out split.
        seed: passed to ``keras.utils.set_random_seed`` before the model is built.

    Returns:
        The trained model, its initial weights and ``{"train_acc", "test_acc"}``.
    """
    import keras

    from pgdl_measures.model_config import build_model

    keras.utils.set_random_seed(int(seed))
    model = build_model(dict(config))
    initial = [np.array(w) for w in model.get_weights()]
    model.compile(optimizer=make_optimizer(hp),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    start = time.perf_counter()
    callbacks = [_stop_at_loss(float(hp["stop_loss"]))] if hp.get("stop_loss") else []
    fit = model.fit(x_train, y_train, batch_size=int(hp["batch_size"]), epochs=int(hp["epochs"]),
                    shuffle=True, verbose=0, callbacks=callbacks)
    seconds = time.perf_counter() - start
    metrics = {"train_acc": accuracy(model, x_train, y_train), "test_acc": accuracy(model, x_test, y_test)}
    loss = float(fit.history["loss"][-1])
    history = {"final_loss": loss if math.isfinite(loss) else None,  # None: training diverged
               "epochs_run": len(fit.history["loss"]),
               "train_seconds": round(seconds, 3)}
    return TrainResult(model, initial, metrics, history)
