"""fit: the optimizer's weight decay and schedule, resuming a killed run, divergence, outputs, bad input."""

from __future__ import annotations

import contextlib
import json
import math

import numpy as np
import pytest

from pgdl_measures.errors import PGDLError
from pgdl_measures.training.fit import TrainConfig, epoch_learning_rate, learning_rate, make_optimizer_for, train


def _two_steps(config, w0, g):
    import keras

    v = keras.Variable(w0.copy())
    opt = make_optimizer_for(config, steps_per_epoch=10)
    for _ in range(2):
        opt.apply_gradients([(keras.ops.convert_to_tensor(g), v)])
    return np.asarray(v.numpy() if hasattr(v, "numpy") else keras.ops.convert_to_numpy(v))


def test_coupled_decay_is_pytorch_sgd_weight_decay_and_decoupled_is_keras():
    w0 = np.array([1.0, -2.0, 0.5], np.float32)
    g = np.array([0.3, 0.1, -0.2], np.float32)
    lr, mu, wd = 0.1, 0.9, 0.05
    base = dict(learning_rate=lr, momentum=mu, weight_decay=wd, schedule="constant")
    # PyTorch SGD: d = g + wd w; buf = mu buf + d; w -= lr buf
    w, buf = w0.astype(np.float64), np.zeros(3)
    for _ in range(2):
        buf = mu * buf + g + wd * w
        w = w - lr * buf
    np.testing.assert_allclose(_two_steps(TrainConfig(decay="coupled", **base), w0, g), w, rtol=1e-6)
    # Keras decoupled: w -= lr wd w; then m = mu m - lr g; w += m
    w, m = w0.astype(np.float64), np.zeros(3)
    for _ in range(2):
        w = w - lr * wd * w
        m = mu * m - lr * g
        w = w + m
    np.testing.assert_allclose(_two_steps(TrainConfig(decay="decoupled", **base), w0, g), w, rtol=1e-6)


def test_piecewise_schedule_is_the_studys():
    import keras

    config = TrainConfig(epochs=160)
    assert [epoch_learning_rate(config, e) for e in (0, 79, 80, 119, 120, 159)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    schedule = learning_rate(TrainConfig(epochs=8), steps_per_epoch=10)
    for step in (0, 39, 40, 59, 60, 79):
        got = float(keras.ops.convert_to_numpy(schedule(step)))
        assert got == pytest.approx(epoch_learning_rate(TrainConfig(epochs=8), step // 10))


def test_run_writes_csv_tensorboard_result_and_progress(small_data, small_mlp, tmp_path, capsys):
    import sys

    model = small_mlp(small_data)
    result = train(model, small_data, TrainConfig(epochs=2, batch_size=50), out_dir=tmp_path, progress=sys.stderr)
    header = (tmp_path / "history.csv").read_text().splitlines()[0].split(",")
    for key in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy",
                "learning_rate", "seconds"):
        assert key in header
    assert list((tmp_path / "tensorboard").rglob("events.out.tfevents*"))
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["epochs_run"] == 2 and saved["diverged"] is False and saved["config"]["decay"] == "coupled"
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("epoch ")]
    assert lines[0].startswith("epoch 1/2 ") and lines[-1].endswith("0:00 left")
    assert result.final("test_accuracy") is not None


def test_a_killed_run_restarted_continues_and_gives_the_same_result(small_data, small_mlp, tmp_path):
    import keras

    config = TrainConfig(epochs=3, batch_size=40, learning_rate=0.05, milestones=(0.5,))
    whole = small_mlp(small_data, dropout=0.2)
    full = train(whole, small_data, config, out_dir=tmp_path / "whole")

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise KeyboardInterrupt  # after epoch 1's checkpoint, like a kill

    killed = small_mlp(small_data, dropout=0.2)
    with pytest.raises(KeyboardInterrupt):
        train(killed, small_data, config, out_dir=tmp_path / "cut", callbacks=[Kill()])
    again = small_mlp(small_data, dropout=0.2)  # a new process builds the model again
    resumed = train(again, small_data, config, out_dir=tmp_path / "cut")
    assert resumed.resumed_from == 1 and resumed.epochs_run == 3
    for a, b in zip(whole.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(full.history["loss"], resumed.history["loss"], rtol=1e-5)


def test_a_diverging_run_is_stopped_and_recorded(small_data, small_mlp, tmp_path):
    model = small_mlp(small_data)
    result = train(model, small_data, TrainConfig(epochs=6, batch_size=20, learning_rate=100.0, weight_decay=0.0,
                                                  schedule="constant", diverge_loss=50.0), out_dir=tmp_path)
    assert result.diverged and result.epochs_run < 6 and result.diverged_epoch == result.epochs_run - 1
    last = result.history["loss"][-1]
    assert not math.isfinite(last) or last > 50
    assert json.loads((tmp_path / "result.json").read_text())["diverged"] is True


def test_bad_output_folder_and_config_are_pgdl_errors(small_data, small_mlp, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(PGDLError, match="cannot write to the output folder"):
        train(small_mlp(small_data), small_data, TrainConfig(epochs=1), out_dir=tmp_path / "file" / "run")
    with pytest.raises(PGDLError, match="decay must be one of"):
        train(small_mlp(small_data), small_data, TrainConfig(epochs=1, decay="l2"))


def test_a_damaged_checkpoint_is_discarded_and_the_run_starts_over(small_data, small_mlp, tmp_path):
    """A ``latest.weights.h5`` cut short (as a full disk left it before checkpoints were written
    atomically) made every rerun fail with "bad object header version number"."""
    config = TrainConfig(epochs=2, batch_size=40)
    train(small_mlp(small_data), small_data, TrainConfig(epochs=1, batch_size=40), out_dir=tmp_path)
    weights = tmp_path / "backup" / "latest.weights.h5"
    whole = weights.read_bytes()
    weights.write_bytes(whole[: len(whole) // 2])
    again = train(small_mlp(small_data), small_data, config, out_dir=tmp_path)
    assert again.resumed_from == 0 and again.epochs_run == 2
    assert json.loads((tmp_path / "backup" / "training_metadata.json").read_text())["epoch"] == 2


def test_a_full_disk_leaves_no_damaged_checkpoint_and_a_rerun_trains(small_data, small_mlp, tmpfs):
    """On a small tmpfs left nearly full (room for the history and logs, not the weights), the
    checkpoint fails as one PGDLError naming it and leaves no part of a file behind: once space
    is freed, the rerun trains (it used to fail on the half-written ``latest.weights.h5`` with
    "bad object header version number")."""
    import os

    import keras

    disk = tmpfs.mount("4m")
    out = disk / "run"
    filler = disk / "filler"

    class FillDisk(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            stat = os.statvfs(disk)
            with open(filler, "wb") as f:  # as much as fits, less the room left
                with contextlib.suppress(OSError):
                    f.write(b"\0" * max(stat.f_bavail * stat.f_frsize - 48 * 1024, 0))

    config = TrainConfig(epochs=2, batch_size=40)
    with pytest.raises(PGDLError, match="cannot write the training checkpoint") as error:
        train(small_mlp(small_data, width=512), small_data, config, out_dir=out, callbacks=[FillDisk()])
    assert "latest.weights.h5" in str(error.value)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".partial")]
    filler.unlink()
    again = train(small_mlp(small_data, width=512), small_data, config, out_dir=out)
    assert again.resumed_from == 0 and again.epochs_run == 2
