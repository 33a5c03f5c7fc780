"""The Keras callbacks of :func:`~pgdl_measures.training.fit.train`, and the run's state on disk.

Per epoch they add ``test_loss``/``test_accuracy`` (:class:`TestMetrics`), ``seconds`` and
``learning_rate`` (:class:`EpochClock`) to the logs, stop a diverging run (:class:`Divergence`)
or one whose loss is low enough (:class:`StopAtLoss`), and, with an output folder, append the
logs to ``history.csv`` (:class:`HistoryCSV`) and write the checkpoint a killed run resumes
from (:class:`AtomicBackup`, :class:`SeedStateBackup`). Every file of the run's state is
written whole or not at all (:func:`write_state`), so a kill or a full disk leaves the previous
version.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np

from pgdl_measures.errors import PGDLError
from pgdl_measures.training.config import epoch_learning_rate
from pgdl_measures.training.trackers import sync_weights
from scoring.files import atomic_write

#: the logs shown in the progress line
_SHOWN = ("loss", "accuracy", "val_accuracy", "test_accuracy", "agn", "online_agn", "gn")

#: the temporary name the checkpoint's weights are written under before they replace it
_PARTIAL_WEIGHTS = ".partial.weights.h5"


def write_state(path: Path, data: bytes | str) -> None:
    """Write one file of a run's state atomically; a failure is one PGDLError naming it.

    Raises:
        PGDLError: the file cannot be written (a full disk); the previous version stays.
    """
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise PGDLError(f"cannot write the training state: {exc.strerror or exc}; the previous "
                        "version is kept, free space and run again to continue", path) from None


class SetEpoch(keras.callbacks.Callback):
    """Tells :class:`~pgdl_measures.training.feeding.EpochBatches` the epoch that starts
    (before its batches are drawn)."""

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
    """Stops the run after the first epoch whose training loss is below `threshold`."""

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
        sync_weights(self.model)
        arrays = {f"s{i}": np.asarray(keras.ops.convert_to_numpy(v.value)) for i, v in enumerate(self._states())}
        buffer = io.BytesIO()
        np.savez(buffer, epoch=epoch + 1, **arrays)
        write_state(self.path, buffer.getvalue())


class _WholeRows(io.StringIO):
    """A file for ``csv`` to write to whose every flush appends what was written to `path`
    in one atomic rewrite (:func:`write_state`)."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self.before = path.read_text() if path.is_file() else ""

    def flush(self):
        super().flush()
        if self.getvalue():
            write_state(self.path, self.before + self.getvalue())


class HistoryCSV(keras.callbacks.CSVLogger):
    """``keras.callbacks.CSVLogger(path, append=True)``: one row per epoch, ``epoch`` and the
    logs' keys, sorted.

    Two differences, both kept on purpose: the columns are the first epoch's keys (CSVLogger adds
    a ``val_*`` column, always ``NA``, for every key of a run without a validation split, which
    would turn into NaN ``val_loss`` values in the history and the search's results); and each
    row is added whole, the file being rewritten atomically (:func:`write_state`), so a kill or a
    full disk never leaves part of a row for the resumed run to append to, and a failed write is
    one PGDLError naming the file.
    """

    def __init__(self, path: Path):
        super().__init__(str(path), append=True)
        self.path = Path(path)

    def on_train_begin(self, logs=None):
        self.append_header = not (self.path.is_file() and self.path.stat().st_size)
        self.csv_file = _WholeRows(self.path)
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        if self.keys is None:
            self.keys = sorted(logs or {})
        super().on_epoch_end(epoch, logs)


def read_history(path: Path) -> dict[str, list[float]]:
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


class AtomicBackup(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose checkpoint is written whole or not at all.

    The weights go to a temporary file that then replaces ``latest.weights.h5``, and the epoch
    record is written atomically after it, so a kill or a full disk mid-write leaves the previous
    checkpoint (:func:`checkpoint_epoch` discards one that is damaged anyway). A write that fails
    is one :class:`PGDLError` naming the file.
    """

    def _save_model(self):
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


def checkpoint_epoch(backup: Path) -> int:
    """The epoch an :class:`AtomicBackup` folder resumes from; 0 when there is none.

    A checkpoint that cannot be read whole (its epoch record or any array of its weights file,
    e.g. one written by an older version onto a full disk) is removed, and the run starts over.
    """
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
