"""Training with Keras 3 ``model.fit`` (backend-neutral): the one way a model is trained here.

:func:`train` trains a model on a :class:`~pgdl_measures.training.datasets.TrainData` with a
:class:`TrainConfig`; the zoo's :func:`train_model` is a thin use of it.

Optimisation (the study's defaults, :class:`TrainConfig`): SGD with momentum 0.9, batch 128,
learning rate 0.1 divided by 10 at 50% and by 100 at 75% of 160 epochs (``schedule="piecewise"``,
in steps: the same as PyTorch's ``MultiStepLR`` stepped every epoch), cross-entropy on logits,
L2 weight decay 1e-4. Weight decay is ``decay="coupled"`` by default, as PyTorch's
``SGD(weight_decay=...)`` that the study used: ``wd * w`` is added to the gradient before the
momentum (:func:`coupled_sgd`), so it is scaled by the learning rate and carried by the
momentum, like an L2 term ``wd/2 ||w||^2`` in the loss (which is not included in the logged
loss). ``decay="decoupled"`` is Keras's own ``weight_decay``: after each step every weight is
multiplied by ``1 - lr * wd``, outside the momentum. Decay applies to every trainable variable
(kernels, biases, batch norm), as PyTorch's default.

Data order and resuming: with ``shuffle="seeded"`` (default) the training batches come from
:class:`EpochBatches`: epoch ``e``'s order and augmentation are drawn from
``numpy.random.default_rng([seed, e])``, so they do not depend on what ran before. With an
output folder, a Keras ``BackupAndRestore`` checkpoint (weights, optimizer state, epoch) is
written atomically after every epoch (a damaged one is discarded and the run starts over); a
killed run started again with the same arguments continues from the last finished epoch and
gives the same result as an uninterrupted run (the layers' random-seed states, which draw the
dropout masks, are saved with it in ``seed_states.npz``).
``shuffle="keras"`` hands the arrays to ``fit(shuffle=True)`` (the zoo's original path, kept
so its bundled task regenerates unchanged).

Per epoch: ``loss``/``accuracy``, ``val_loss``/``val_accuracy`` (when there is a validation
split), ``test_loss``/``test_accuracy``, the learning rate, the trackers' values (``agn``,
``online_agn``, ``gn``) and the epoch's seconds, to ``history.csv`` and TensorBoard logs
(``tensorboard/``, where TensorFlow is installed: Keras writes them with ``tf.summary``) in
the output folder, and a progress line with the time left. A loss that is
not finite or exceeds ``diverge_loss`` stops the run, recorded as diverged.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import json
import math
import os
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from pgdl_measures.errors import PGDLError
from pgdl_measures.training.datasets import TrainData, augment_batch
from pgdl_measures.training.families import HParam, int_at_least, number_in, one_of
from scoring.files import check_writable


@contextlib.contextmanager
def seeded(seed: int):
    """``keras.utils.set_random_seed(seed)`` for what runs inside, with Keras's default seeds
    (every initializer and Dropout layer built without a seed draws one) taken from a private
    ``random.Random(seed)`` instead of Python's global ``random``.

    Why: Keras draws those seeds from the global ``random`` module, which every thread of the
    process shares. In a Dask worker (``pgdl search``) the event loop thread draws from it too
    while a trial builds its model, so a trial's initial weights depended on timing (measured:
    the first model of a fresh worker got other weights than the same task run later or
    alone). ``random.Random(seed)`` gives the very sequence ``random.seed(seed)`` gives, so
    single-threaded results are unchanged. Where Keras no longer draws from
    ``keras.src.random.seed_generator.python_random``, this is ``set_random_seed`` alone.
    """
    keras = _keras()
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


def _keras():
    import keras

    return keras


@dataclass
class TrainConfig:
    """How a model is trained (the defaults are the study's).

    Attributes:
        epochs: passes over the training data.
        batch_size: examples per step.
        learning_rate: the initial learning rate.
        schedule: ``"piecewise"`` (divided by ``1/gamma`` at each fraction of ``milestones`` of
            the run) or ``"constant"``.
        milestones: fractions of the run where the learning rate drops.
        gamma: the factor of each drop.
        optimizer: ``"sgd"`` (with momentum) or ``"adam"``.
        momentum: SGD's momentum.
        weight_decay: L2 weight decay.
        decay: ``"coupled"`` (PyTorch's, the study's) or ``"decoupled"`` (Keras's).
        seed: ``keras.utils.set_random_seed`` before the model is used, and the data order.
        shuffle: ``"seeded"`` (:class:`EpochBatches`) or ``"keras"`` (``fit(shuffle=True)``).
        stop_loss: stop after the first epoch whose training loss is below this (0: never).
        diverge_loss: a training loss above this (or not finite) stops the run as diverged.
        steps_per_execution: Keras's ``steps_per_execution``.
        jit_compile: Keras's ``jit_compile`` (``"auto"``, True, False).
    """

    epochs: int = 160
    batch_size: int = 128
    learning_rate: float = 0.1
    schedule: str = "piecewise"
    milestones: tuple[float, ...] = (0.5, 0.75)
    gamma: float = 0.1
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    decay: str = "coupled"
    seed: int = 0
    shuffle: str = "seeded"
    stop_loss: float = 0.0
    diverge_loss: float = 1e4
    steps_per_execution: int = 1
    jit_compile: Any = "auto"

    def check(self) -> None:
        """Raises PGDLError on a value out of range."""
        problems = []
        if self.epochs < 1 or self.batch_size < 1 or self.steps_per_execution < 1:
            problems.append("epochs, batch_size and steps_per_execution must be positive")
        if not self.learning_rate > 0:
            problems.append(f"learning_rate must be positive, got {self.learning_rate}")
        for name, value, choices in (("schedule", self.schedule, ("piecewise", "constant")),
                                     ("optimizer", self.optimizer, ("sgd", "adam")),
                                     ("decay", self.decay, ("coupled", "decoupled")),
                                     ("shuffle", self.shuffle, ("seeded", "keras"))):
            if value not in choices:
                problems.append(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        if self.weight_decay < 0:
            problems.append("weight_decay must be >= 0")
        if problems:
            raise PGDLError("training config: " + "; ".join(problems))


def epoch_learning_rate(config: TrainConfig, epoch: int) -> float:
    """The learning rate of every step of (0-based) `epoch`: PyTorch's ``MultiStepLR`` with
    milestones ``round(m * epochs)`` for each fraction ``m`` of ``config.milestones``."""
    if config.schedule == "constant":
        return float(config.learning_rate)
    drops = sum(epoch >= int(round(m * config.epochs)) for m in config.milestones)
    return float(config.learning_rate) * config.gamma ** drops


def learning_rate(config: TrainConfig, steps_per_epoch: int):
    """The learning rate for Keras: a float, or a ``PiecewiseConstantDecay`` over the optimizer's
    step count whose value at every step of epoch ``e`` is :func:`epoch_learning_rate`."""
    if config.schedule == "constant" or not config.milestones:
        return float(config.learning_rate)
    keras = _keras()
    # Keras uses values[i] while step <= boundaries[i]; epoch e starts at step e * steps_per_epoch
    milestones = sorted(int(round(m * config.epochs)) for m in config.milestones)
    boundaries = [e * steps_per_epoch - 1 for e in milestones if e > 0]
    values = [float(config.learning_rate) * config.gamma ** i for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def coupled_sgd(learning_rate, *, momentum: float, weight_decay: float):
    """Keras SGD with PyTorch's coupled weight decay: ``g <- g + weight_decay * w`` before the
    momentum update (``v <- momentum v - lr g``; ``w <- w + v``, Keras's form of PyTorch's
    momentum: identical for a constant learning rate)."""
    keras = _keras()
    ops = keras.ops

    class CoupledSGD(keras.optimizers.SGD):
        def __init__(self, coupled_weight_decay: float = 0.0, **kwargs):
            super().__init__(**kwargs)
            self.coupled_weight_decay = float(coupled_weight_decay)

        def update_step(self, gradient, variable, learning_rate):
            if self.coupled_weight_decay:
                gradient = ops.add(ops.cast(gradient, variable.dtype),
                                   ops.multiply(ops.cast(self.coupled_weight_decay, variable.dtype), variable))
            return super().update_step(gradient, variable, learning_rate)

        def get_config(self):
            return {**super().get_config(), "coupled_weight_decay": self.coupled_weight_decay}

    return CoupledSGD(coupled_weight_decay=weight_decay, learning_rate=learning_rate, momentum=momentum)


def make_optimizer_for(config: TrainConfig, steps_per_epoch: int):
    """The optimizer of `config` (see the module docstring)."""
    keras = _keras()
    lr = learning_rate(config, steps_per_epoch)
    decoupled = float(config.weight_decay) if config.decay == "decoupled" and config.weight_decay else None
    if config.optimizer == "adam":
        if config.decay == "coupled" and config.weight_decay:
            raise PGDLError("coupled weight decay is offered for sgd only; use decay='decoupled' with adam")
        return keras.optimizers.Adam(learning_rate=lr, weight_decay=decoupled)
    if config.decay == "coupled" and config.weight_decay:
        return coupled_sgd(lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return keras.optimizers.SGD(learning_rate=lr, momentum=config.momentum, weight_decay=decoupled)


def _py_dataset_base():
    return _keras().utils.PyDataset


def epoch_batches(x: np.ndarray, y: np.ndarray, *, batch_size: int, seed: int, augment: str | None = None,
                  start_epoch: int = 0):
    """A ``keras.utils.PyDataset`` of training batches whose epoch ``e`` order and augmentation
    come from ``numpy.random.default_rng([seed, e])`` (see the module docstring)."""

    class EpochBatches(_py_dataset_base()):
        def __init__(self):
            super().__init__()
            self.epoch = int(start_epoch)  # set by the fit loop's on_epoch_begin (see train)
            self._orders: dict[int, np.ndarray] = {}

        def __len__(self):
            return math.ceil(len(y) / batch_size)

        def order(self, epoch: int) -> np.ndarray:
            if epoch not in self._orders:
                self._orders = {epoch: np.random.default_rng([int(seed), int(epoch)]).permutation(len(y))}
            return self._orders[epoch]

        def __getitem__(self, index):
            epoch = self.epoch
            idx = self.order(epoch)[index * batch_size:(index + 1) * batch_size]
            xb = x[idx]
            if augment is not None:
                xb = augment_batch(xb, augment, np.random.default_rng([int(seed), epoch, int(index), 1]))
            return xb, y[idx]

    return EpochBatches()


# ------------------------------------------------------------------------------------- callbacks

_SHOWN = ("loss", "accuracy", "val_accuracy", "test_accuracy", "agn", "online_agn", "gn")


def _callbacks():
    keras = _keras()

    class SetEpoch(keras.callbacks.Callback):
        """Tells :func:`epoch_batches` the epoch that starts (before its batches are drawn)."""

        def __init__(self, batches):
            super().__init__()
            self.batches = batches

        def on_epoch_begin(self, epoch, logs=None):
            self.batches.epoch = int(epoch)

    class TestMetrics(keras.callbacks.Callback):
        """``test_loss``/``test_accuracy`` on the held-out split after each epoch."""

        def __init__(self, x, y, batch_size):
            super().__init__()
            self.x, self.y, self.batch_size = x, y, batch_size

        def on_epoch_end(self, epoch, logs=None):
            if logs is None or not len(self.y):
                return
            from pgdl_measures.training.trackers import sync_weights

            sync_weights(self.model)
            out = self.model.evaluate(self.x, self.y, batch_size=self.batch_size, verbose=0, return_dict=True)
            logs["test_loss"] = float(out["loss"])
            logs["test_accuracy"] = float(out.get("accuracy", float("nan")))

    class Divergence(keras.callbacks.Callback):
        """Stops the run when the epoch's training loss is not finite or exceeds `limit`."""

        def __init__(self, limit):
            super().__init__()
            self.limit = limit
            self.diverged_epoch = None

        def on_epoch_end(self, epoch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and (not math.isfinite(loss) or loss > self.limit):
                self.diverged_epoch = epoch
                self.model.stop_training = True

    class StopAtLoss(keras.callbacks.Callback):
        def __init__(self, threshold):
            super().__init__()
            self.threshold = threshold

        def on_epoch_end(self, epoch, logs=None):
            if logs and logs.get("loss", float("inf")) < self.threshold:
                self.model.stop_training = True

    class EpochClock(keras.callbacks.Callback):
        """``seconds`` and ``learning_rate`` of each epoch, and a progress line with time left."""

        def __init__(self, config, stream):
            super().__init__()
            self.config, self.epochs, self.stream = config, config.epochs, stream
            self.durations = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self._start
            self.durations.append(seconds)
            if logs is not None:
                logs["seconds"] = seconds
                logs["learning_rate"] = epoch_learning_rate(self.config, epoch)
            if self.stream is not None:
                per = float(np.mean(self.durations))
                left = per * (self.epochs - epoch - 1)
                shown = " ".join(f"{k} {v:.4g}" for k, v in (logs or {}).items() if k in _SHOWN)
                print(f"epoch {epoch + 1}/{self.epochs} {shown} | {per:.2f} s/epoch, "
                      f"{int(left // 60)}:{int(left % 60):02d} left", file=self.stream, flush=True)

    class SeedStateBackup(keras.callbacks.Callback):
        """Keeps the layers' random-seed states (dropout masks) with the epoch checkpoint:
        ``BackupAndRestore`` saves ``model.weights``, which do not include them."""

        def __init__(self, path, start_epoch):
            super().__init__()
            self.path, self.start_epoch = path, start_epoch

        def _states(self):
            weights = {id(v) for v in self.model.weights}
            return [v for v in self.model.variables if id(v) not in weights and not v.trainable]

        def on_train_begin(self, logs=None):
            if self.start_epoch and self.path.is_file():
                with np.load(self.path) as saved:
                    if int(saved["epoch"]) == self.start_epoch:
                        for i, v in enumerate(self._states()):
                            v.assign(saved[f"s{i}"])

        def on_epoch_end(self, epoch, logs=None):
            from pgdl_measures.training.trackers import sync_weights

            sync_weights(self.model)
            arrays = {f"s{i}": np.asarray(_keras().ops.convert_to_numpy(v.value)) for i, v in enumerate(self._states())}
            buffer = io.BytesIO()
            np.savez(buffer, epoch=epoch + 1, **arrays)
            _write_state(self.path, buffer.getvalue())

    class HistoryCSV(keras.callbacks.Callback):
        """One row per epoch appended to `path` (``epoch`` and the logs' keys of the first row)."""

        def __init__(self, path):
            super().__init__()
            self.path = path

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            keys = None
            if self.path.is_file() and self.path.stat().st_size:
                with open(self.path, newline="") as f:
                    keys = next(csv.reader(f), None)
            new = keys is None
            keys = keys or ["epoch"] + sorted(logs)
            rows = io.StringIO()
            writer = csv.writer(rows)
            if new:
                writer.writerow(keys)
            writer.writerow([epoch] + [_cell(logs.get(k)) for k in keys[1:]])
            before = "" if new else self.path.read_text()
            _write_state(self.path, before + rows.getvalue())  # whole rows only, even on a full disk

    class AtomicBackup(keras.callbacks.BackupAndRestore):
        """``BackupAndRestore`` whose checkpoint is written whole or not at all.

        The weights go to a temporary file that then replaces ``latest.weights.h5``, and the
        epoch record is written atomically after it, so a kill or a full disk mid-write leaves
        the previous checkpoint (:func:`_backup_epoch` discards one that is damaged anyway). A
        write that fails is one :class:`PGDLError` naming the file.
        """

        def _save_model(self):
            from scoring.files import atomic_write

            weights = Path(self._weights_path)
            partial = weights.with_name(_PARTIAL_WEIGHTS)
            try:
                weights.parent.mkdir(parents=True, exist_ok=True)
                self.model.save_weights(filepath=str(partial), overwrite=True)
                os.replace(partial, weights)
                atomic_write(self._training_metadata_path,
                             json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen}))
            except (OSError, RuntimeError) as exc:  # h5py: RuntimeError when closing a file it could not write
                partial.unlink(missing_ok=True)
                raise PGDLError(f"cannot write the training checkpoint: {getattr(exc, 'strerror', None) or exc}; the "
                                "previous one is kept, free space and run again to continue",
                                weights) from None

    return SetEpoch, TestMetrics, Divergence, StopAtLoss, EpochClock, SeedStateBackup, HistoryCSV, AtomicBackup


def _cell(value) -> str:
    if value is None:
        return ""
    return repr(float(np.asarray(value)))


# ------------------------------------------------------------------------------------- training

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
        from pgdl_measures.training.trackers import summed

        out = {k: self.final(k) for k in ("loss", "accuracy", "val_loss", "val_accuracy", "test_loss",
                                          "test_accuracy", "agn", "online_agn", "gn") if k in self.history}
        for key in ("agn", "online_agn", "gn"):
            if key in self.history:
                out[f"{key}_sum"] = summed(self.history, key)
        out.update(epochs_run=self.epochs_run, diverged=self.diverged, diverged_epoch=self.diverged_epoch,
                   seconds=round(self.seconds, 3), resumed_from=self.resumed_from)
        return out



def _read_csv(path: Path) -> dict[str, list[float]]:
    """history.csv as key -> values, one row per epoch (a repeated epoch: its last row)."""
    rows: dict[int, dict[str, str]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            rows[int(row["epoch"])] = row
    keys = [k for k in (next(iter(rows.values())) if rows else {}) if k != "epoch"]
    out: dict[str, list[float]] = {}
    for key in keys:
        out[key] = [float(rows[e][key]) if rows[e].get(key) not in (None, "", "NA") else float("nan")
                    for e in sorted(rows)]
    return out


def _write_state(path: Path, data: bytes | str) -> None:
    """Write one file of a run's state atomically; a failure is one PGDLError naming it.

    Raises:
        PGDLError: the file cannot be written (a full disk); the previous version stays.
    """
    from scoring.files import atomic_write

    try:
        atomic_write(path, data)
    except OSError as exc:
        raise PGDLError(f"cannot write the training state: {exc.strerror or exc}; the previous "
                        "version is kept, free space and run again to continue", path) from None


#: the temporary name the checkpoint's weights are written under before they replace it
_PARTIAL_WEIGHTS = ".partial.weights.h5"


def _backup_epoch(backup: Path) -> int:
    """The epoch a checkpoint folder resumes from; 0 when there is none.

    A checkpoint that cannot be read whole (its epoch record or any array of its weights file,
    e.g. one written by an older version onto a full disk) is removed, and the run starts over.
    """
    import shutil

    meta = backup / "training_metadata.json"
    weights = backup / "latest.weights.h5"
    (backup / _PARTIAL_WEIGHTS).unlink(missing_ok=True)
    if not meta.is_file() and not weights.exists():
        return 0
    try:
        epoch = int(json.loads(meta.read_text())["epoch"])
        _read_whole_h5(weights)
    except Exception:  # noqa: BLE001 - h5py and json raise many types for a damaged file
        shutil.rmtree(backup, ignore_errors=True)
        return 0
    return epoch


def _read_whole_h5(path: Path) -> None:
    """Read every array of an HDF5 file (raises on a truncated or corrupt one)."""
    import h5py

    with h5py.File(path, "r") as f:
        def read(_name, item):
            if isinstance(item, h5py.Dataset):
                item[()]

        f.visititems(read)


def train(model, data: TrainData, config: TrainConfig | None = None, *, out_dir: str | os.PathLike | None = None,
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
    from pgdl_measures.backend import model_graph
    from pgdl_measures.training import trackers as tr

    keras = _keras()
    config = config or TrainConfig()
    config.check()
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        check_writable(out)
    backup = out / "backup" if out is not None else None
    start_epoch = _backup_epoch(backup) if backup is not None else 0
    if out is not None and start_epoch == 0 and (out / "history.csv").exists():
        (out / "history.csv").unlink()

    steps = math.ceil(len(data.y_train) / config.batch_size)
    logits = model_graph.logits_model(model)
    if online_agn:
        trained = tr.online_agn_head(model)
        loss = tr.head_loss()
        metrics = [tr.head_accuracy(), tr.OnlineAGNMetric(use_bias=trained.pgdl_use_bias)]
    else:
        trained = logits
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics = ["accuracy"]
    trained.compile(optimizer=make_optimizer_for(config, steps), loss=loss, metrics=metrics,
                    steps_per_execution=config.steps_per_execution, jit_compile=config.jit_compile)

    SetEpoch, TestMetrics, Divergence, StopAtLoss, EpochClock, SeedStateBackup, HistoryCSV, AtomicBackup = _callbacks()
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
        batches = epoch_batches(data.x_train, data.y_train, batch_size=config.batch_size, seed=config.seed,
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
        history = _read_csv(out / "history.csv")
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
        _write_state(out / "result.json", json.dumps({"data": data.summary(), "config": result.config,
                                                       "trackers": tr.describe([cb for _, cb in tracker_cbs]),
                                                       **result.summary()}, indent=1, default=str))
    return result


# ------------------------------------------------------------------------- the zoo's training

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
    """The :class:`TrainConfig` of a zoo model's hyper-parameters (:data:`TRAINING_HPARAMS`):
    constant learning rate, decoupled weight decay (Keras's), ``fit(shuffle=True)``, no
    divergence limit but a non-finite loss."""
    return TrainConfig(epochs=int(hp["epochs"]), batch_size=int(hp["batch_size"]),
                       learning_rate=float(hp["learning_rate"]), schedule="constant", optimizer=hp["optimizer"],
                       momentum=float(hp["momentum"]), weight_decay=float(hp["weight_decay"]), decay="decoupled",
                       seed=int(seed), shuffle="keras", stop_loss=float(hp.get("stop_loss") or 0.0),
                       diverge_loss=math.inf)


def accuracy(model, x: np.ndarray, y: np.ndarray, *, batch_size: int = 512) -> float:
    """Fraction of examples whose largest logit is the label (inference mode: no dropout).

    Calls the model eagerly batch by batch: ``model.predict`` would trace a new function for
    each dataset size, and TensorFlow warns about the retracing.
    """
    keras = _keras()
    predicted = [np.argmax(keras.ops.convert_to_numpy(model(x[i:i + batch_size], training=False)), axis=-1)
                 for i in range(0, len(x), batch_size)]
    return float(np.mean(np.concatenate(predicted) == np.asarray(y).reshape(-1)))


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
    """Build `config` (a config.json dict), train it with :func:`train`, measure train and test
    accuracy (what ``pgdl zoo`` runs for every model).

    Args:
        config: ``{"model_config": [...], "input_shape": [...]}``.
        hp: the training hyper-parameters of :data:`TRAINING_HPARAMS` (others are ignored).
        x_train, y_train: what the model trains on (integer labels).
        x_test, y_test: the held-out split.
        seed: the Keras seeds (:func:`seeded`) while the model is built and trained, and the data order.
    """
    from pgdl_measures.tasks.model_config import build_model

    with seeded(int(seed)):
        model = build_model(dict(config))
        initial = [np.array(w) for w in model.get_weights()]
        empty = np.zeros((0,) + x_train.shape[1:], np.float32)
        data = TrainData("zoo", x_train, y_train, empty, np.zeros(0, np.int64), empty, np.zeros(0, np.int64),
                         int(max(y_train.max(), y_test.max())) + 1)
        fit = train(model, data, zoo_config(hp, seed))
    metrics = {"train_acc": accuracy(model, x_train, y_train), "test_acc": accuracy(model, x_test, y_test)}
    loss = fit.final("loss")
    history = {"final_loss": loss if loss is not None and math.isfinite(loss) else None,  # None: diverged
               "epochs_run": fit.epochs_run,
               "train_seconds": round(fit.seconds, 3)}
    return TrainResult(model, initial, metrics, history)

