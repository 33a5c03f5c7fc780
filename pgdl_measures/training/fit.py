"""Training with Keras 3 ``model.fit`` (backend-neutral): the one way a model is trained here.

:func:`train` trains a model on a :class:`~pgdl_measures.training.datasets.Splits` with a
:class:`~pgdl_measures.training.config.TrainConfig` (the optimisation is described in
:mod:`pgdl_measures.training.config`); the zoo's :func:`~pgdl_measures.zoo.train.train_model`
is a thin use of it.

Data order and resuming: with ``shuffle="seeded"`` (default) the training batches come from
:class:`~pgdl_measures.training.feeding.EpochBatches`: epoch ``e``'s order and augmentation are
drawn from ``numpy.random.default_rng([seed, e])``, so they do not depend on what ran before.
With an output folder, a Keras ``BackupAndRestore`` checkpoint (weights, optimizer state, epoch)
is written atomically after every epoch (a damaged one is discarded and the run starts over); a
killed run started again with the same arguments continues from the last finished epoch and
gives the same result as an uninterrupted run (the layers' random-seed states, which draw the
dropout masks, are saved with it in ``seed_states.npz``).
``shuffle="keras"`` hands the arrays to ``fit(shuffle=True)`` (the zoo's original path, kept
so its bundled task regenerates unchanged).

Per epoch: ``loss``/``accuracy``, ``val_loss``/``val_accuracy`` (when there is a validation
split), ``test_loss``/``test_accuracy``, the learning rate, the trackers' values (``agn``,
``online_agn``, ``gn``) and the epoch's seconds, to ``history.csv`` and TensorBoard logs
(``tensorboard/``, where TensorFlow is installed: Keras writes them with ``tf.summary``) in
the output folder, and a progress line with the time left (:mod:`pgdl_measures.training.callbacks`).
A loss that is not finite or exceeds ``diverge_loss`` stops the run, recorded as diverged.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import keras
import numpy as np

from pgdl_measures.autodiff import model_graph
from pgdl_measures.errors import PGDLError
from pgdl_measures.training import trackers as tr
from pgdl_measures.training.callbacks import (
    AtomicBackup,
    Divergence,
    EpochClock,
    HistoryCSV,
    SeedStateBackup,
    SetEpoch,
    StopAtLoss,
    TestMetrics,
    checkpoint_epoch,
    read_history,
    write_state,
)
from pgdl_measures.training.config import TrainConfig
from pgdl_measures.training.datasets import Splits
from pgdl_measures.training.feeding import EpochBatches
from pgdl_measures.training.optimizers import make_optimizer_for
from scoring.files import check_writable


@contextlib.contextmanager
def seeded(seed: int):
    """``keras.utils.set_random_seed(seed)`` for what runs inside, with Keras's default seeds
    (every initializer and Dropout layer built without a seed draws one) taken from a private
    ``random.Random(seed)`` instead of Python's global ``random``.

    Why: Keras draws those seeds from the global ``random`` module, which every thread of the
    process shares. In a Dask worker (``pgdl search``) the event loop thread draws from it too
    while a trial builds its model, which would make a trial's initial weights depend on
    timing. ``random.Random(seed)`` gives the very sequence ``random.seed(seed)`` gives, so
    single-threaded results are unchanged. Where Keras no longer draws from
    ``keras.src.random.seed_generator.python_random``, this is ``set_random_seed`` alone.
    """
    keras.utils.set_random_seed(int(seed))
    try:
        from keras.src.random import seed_generator
    except ImportError:  # pragma: no cover - a Keras without that module
        seed_generator = None
    saved = getattr(seed_generator, "python_random", None)
    if saved is not None:
        seed_generator.python_random = random.Random(int(seed))
    try:
        yield
    finally:
        if saved is not None:
            seed_generator.python_random = saved


@dataclass
class FitResult:
    """What :func:`train` did.

    Attributes:
        history: per-epoch values (key -> list over epochs, in epoch order, across restarts
            when there is an output folder).
        epochs_run: epochs finished (across restarts).
        diverged: whether the run stopped on a non-finite or exploding loss.
        diverged_epoch: the (0-based) epoch where it did.
        seconds: wall time of this call's ``fit``.
        tracker_seconds: seconds spent in each tracker during this call.
        resumed_from: the epoch a restart continued from (0 for a fresh run).
        config: the training config.
    """

    history: dict[str, list[float]]
    epochs_run: int
    diverged: bool
    diverged_epoch: int | None
    seconds: float
    tracker_seconds: dict[str, float] = field(default_factory=dict)
    resumed_from: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    def final(self, key: str) -> float | None:
        values = self.history.get(key)
        return None if not values else float(values[-1])

    def summary(self) -> dict[str, Any]:
        out = {k: self.final(k) for k in ("loss", "accuracy", "val_loss", "val_accuracy", "test_loss",
                                          "test_accuracy", "agn", "online_agn", "gn") if k in self.history}
        for key in ("agn", "online_agn", "gn"):
            if key in self.history:
                out[f"{key}_sum"] = tr.summed(self.history, key)
        out.update(epochs_run=self.epochs_run, diverged=self.diverged, diverged_epoch=self.diverged_epoch,
                   seconds=round(self.seconds, 3), resumed_from=self.resumed_from)
        return out


def train(model, data: Splits, config: TrainConfig | None = None, *, out_dir: str | os.PathLike | None = None,
          exact_agn: bool = False, online_agn: bool = False, gn: Mapping[str, Any] | None = None,
          callbacks: Sequence[Any] = (), progress: TextIO | None = None, agn_batch_size: int = 512) -> FitResult:
    """Train `model` (a Keras model outputting logits) on `data` with `config`.

    The caller sets the seed (``keras.utils.set_random_seed``) before building the model: it
    fixes the initial weights and the dropout masks; ``config.seed`` fixes the data order.

    Args:
        model: the Keras model (trained in place).
        data: training, validation and test arrays (:func:`~pgdl_measures.training.datasets.prepare`).
        config: the :class:`TrainConfig` (default: the study's).
        out_dir: where ``history.csv``, ``tensorboard/``, ``backup/`` and ``result.json`` go; a
            run started again with the same folder resumes (None: nothing written, no resume).
        exact_agn: track Eq. 5's AGN after every epoch (:class:`~pgdl_measures.training.trackers.ExactAGN`).
        online_agn: track online AGN from the training forward passes.
        gn: track Eq. 4's GN: ``{"examples": m, "iterations": s, "batch_size": b}`` (see
            :class:`~pgdl_measures.training.trackers.GradientNormTracker`); None: off.
        callbacks: more Keras callbacks, run after the built-in ones.
        progress: a stream for the per-epoch progress line (None: silent).
        agn_batch_size: examples per forward pass of the exact AGN.

    Returns:
        A :class:`FitResult`.

    Raises:
        PGDLError: an invalid config, an unwritable `out_dir`, or a model without a final Dense
            layer when an AGN tracker is asked for.
    """
    config = config or TrainConfig()
    config.check()
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        check_writable(out)
    backup = out / "backup" if out is not None else None
    start_epoch = checkpoint_epoch(backup) if backup is not None else 0
    if out is not None and start_epoch == 0 and (out / "history.csv").exists():
        (out / "history.csv").unlink()

    steps = math.ceil(len(data.y_train) / config.batch_size)
    logits = model_graph.logits_model(model)
    if online_agn:
        trained = tr.online_agn_head(model)
        loss = tr.head_loss()
        metrics = [tr.HeadAccuracy(), tr.OnlineAGNMetric(use_bias=trained.pgdl_use_bias)]
    else:
        trained = logits
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics = ["accuracy"]
    trained.compile(optimizer=make_optimizer_for(config, steps), loss=loss, metrics=metrics,
                    steps_per_execution=config.steps_per_execution, jit_compile=config.jit_compile)

    tracker_cbs = []
    if exact_agn:
        tracker_cbs.append(("agn", tr.ExactAGN(model, data.x_train, data.y_train, batch_size=agn_batch_size)))
    if gn is not None:
        tracker_cbs.append(("gn", tr.GradientNormTracker(model, data.x_train, data.y_train, seed=config.seed,
                                                         **dict(gn))))
    divergence = Divergence(config.diverge_loss)
    clock = EpochClock(config, progress)
    cbs: list[Any] = [cb for _, cb in tracker_cbs]
    if len(data.y_test):
        cbs.append(TestMetrics(data.x_test, data.y_test, max(config.batch_size, 256)))
    cbs.append(divergence)
    if config.stop_loss:
        cbs.append(StopAtLoss(float(config.stop_loss)))
    cbs.append(clock)
    if out is not None:
        if importlib.util.find_spec("tensorflow") is not None:  # Keras writes TensorBoard logs with tf.summary
            cbs.append(keras.callbacks.TensorBoard(str(out / "tensorboard"), write_graph=False, profile_batch=0))
        cbs += [HistoryCSV(out / "history.csv"),
                SeedStateBackup(out / "seed_states.npz", start_epoch),
                AtomicBackup(str(backup), delete_checkpoint=False)]
    cbs += list(callbacks)

    validation = (data.x_val, data.y_val) if len(data.y_val) else None
    start = time.perf_counter()
    if config.shuffle == "seeded":
        batches = EpochBatches(data.x_train, data.y_train, batch_size=config.batch_size, seed=config.seed,
                               augment=data.augment, start_epoch=start_epoch)
        fit = trained.fit(batches, epochs=config.epochs, validation_data=validation, verbose=0, shuffle=False,
                          callbacks=[SetEpoch(batches)] + cbs)
    else:
        if data.augment is not None:
            raise PGDLError("shuffle='keras' does not augment; use shuffle='seeded' for augmented data")
        fit = trained.fit(data.x_train, data.y_train, batch_size=config.batch_size, epochs=config.epochs,
                          shuffle=True, validation_data=validation, verbose=0, callbacks=cbs)
    seconds = time.perf_counter() - start
    tr.sync_weights(trained)

    if out is not None and (out / "history.csv").exists():
        history = read_history(out / "history.csv")
    else:
        history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    epochs_run = len(history.get("loss", []))
    diverged_epoch = divergence.diverged_epoch
    if diverged_epoch is None and history.get("loss") and not all(math.isfinite(v) for v in history["loss"]):
        diverged_epoch = next(i for i, v in enumerate(history["loss"]) if not math.isfinite(v))
    result = FitResult(history=history, epochs_run=epochs_run, diverged=diverged_epoch is not None,
                       diverged_epoch=diverged_epoch, seconds=seconds,
                       tracker_seconds={name: round(cb.seconds, 3) for name, cb in tracker_cbs},
                       resumed_from=start_epoch, config=asdict(config))
    if out is not None:
        write_state(out / "result.json", json.dumps({"data": data.summary(), "config": result.config,
                                                      "trackers": tr.describe([cb for _, cb in tracker_cbs]),
                                                      **result.summary()}, indent=1, default=str))
    return result


def accuracy(model, x: np.ndarray, y: np.ndarray, *, batch_size: int = 512) -> float:
    """Fraction of examples whose largest logit is the label (inference mode: no dropout).

    Calls the model eagerly batch by batch: ``model.predict`` would trace a new function for
    each dataset size, and TensorFlow warns about the retracing.
    """
    predicted = [np.argmax(keras.ops.convert_to_numpy(model(x[i:i + batch_size], training=False)), axis=-1)
                 for i in range(0, len(x), batch_size)]
    return float(np.mean(np.concatenate(predicted) == np.asarray(y).reshape(-1)))
