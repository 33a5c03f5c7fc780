"""What one trial trains and the objective values the searches minimise.

A *task* (a plain dict, sent to a Dask worker) asks for one training run: the spec, the
hyper-parameters, the epochs, the seed, the run's folder, and whether it is a search trial (on
the spec's fixed fraction of the training set, with a validation split) or a final run (the full
training set, test accuracy). A trainer turns it into a *result* dict: ``epochs_run``,
``diverged``, the final ``loss``, ``val_loss``, ``val_accuracy``, ``test_accuracy``,
``agn_sum`` (Eq. 5: the per-epoch AGN summed over the epochs run), the per-epoch ``history``
and ``seconds``.

Objectives (all minimised; :func:`objective_value`):

* ``val_loss``; ``val_accuracy`` as ``1 - validation accuracy``;
* ``agn_train_loss`` = ``alpha * AGN + training loss``, ``agn_val_loss`` =
  ``alpha * AGN + validation loss``, with **AGN normalised to the full schedule**:
  ``AGN = agn_sum * epochs / epochs_run`` (the mean per-epoch AGN times the full schedule's
  epochs). For a run of the full schedule this is Eq. 5's sum itself; for BOHB's shorter
  budgets (40 and 80 of 160 epochs) it scales the sum as if the run had lasted the full
  schedule, so values from different budgets compare and alpha means the same in every
  algorithm. (The AGN of a shorter run still differs in level: it is taken over the early, high
  learning-rate part of the schedule.)

With ``weighting="convex"`` (a spec's ``bohb.weighting``; the study weighs AGN in BOHB with
0.9, 0.5 and 0.1 against the loss and calls its AGN normalised), the AGN objectives are
``alpha * (agn_sum / epochs_run) + (1 - alpha) * loss``: AGN normalised to its mean per epoch,
so that its level does not grow with the budget, and a convex weight. The study's text does not
give its normalisation; this is our reading of it.

A trial that diverges (non-finite or exploding loss, or a trainer error) gets
:data:`DIVERGED_VALUE`: it is recorded (``diverged`` in the trial's attributes) and ranks last;
the search goes on.

Trainers: :func:`keras_trial` (:mod:`pgdl_measures.training`: the spec's model and data, SGD with
the study's piecewise schedule over the trial's epochs, the AGN tracker) and :func:`fake_trial`
(a deterministic function of the hyper-parameters that only counts epochs, for tests).
"""

from __future__ import annotations

import errno
import functools
import importlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pgdl_measures.errors import PGDLError

#: the value of a diverged trial (finite, so every sampler accepts it; it ranks last)
DIVERGED_VALUE = 1e10


def normalised_agn(result: Mapping[str, Any], epochs: int) -> float:
    """``agn_sum * epochs / epochs_run`` (see the module docstring); NaN without AGN."""
    agn, run = result.get("agn_sum"), result.get("epochs_run") or 0
    if agn is None or not run:
        return math.nan
    return float(agn) * float(epochs) / float(run)


def objective_value(objective: str, alpha: float | None, result: Mapping[str, Any], epochs: int,
                    weighting: str = "additive") -> float:
    """The value `objective` minimises for a trial's `result` (:data:`DIVERGED_VALUE` when it
    diverged or the value is not finite); `epochs` is the spec's full schedule."""
    if result.get("diverged"):
        return DIVERGED_VALUE
    if objective == "val_loss":
        value = result.get("val_loss")
    elif objective == "val_accuracy":
        acc = result.get("val_accuracy")
        value = None if acc is None else 1.0 - float(acc)
    elif objective in ("agn_train_loss", "agn_val_loss"):
        loss = result.get("loss" if objective == "agn_train_loss" else "val_loss")
        a = float(alpha or 0.0)
        if loss is None:
            value = None
        elif weighting == "convex":
            value = a * normalised_agn(result, 1) + (1.0 - a) * float(loss)
        else:
            value = a * normalised_agn(result, epochs) + float(loss)
    else:
        raise PGDLError(f"unknown objective {objective!r}")
    if value is None or not math.isfinite(float(value)):
        return DIVERGED_VALUE
    return float(value)


def per_epoch_values(objective: str, alpha: float | None, result: Mapping[str, Any], epochs: int,
                     weighting: str = "additive") -> list[float]:
    """The objective after each epoch (AGN summed so far and normalised as above), for Optuna's
    intermediate values."""
    history = result.get("history") or {}
    agn_key = "online_agn" if "online_agn" in history else "agn"
    out = []
    for e in range(len(history.get("loss", []))):
        partial = {k: (v[e] if e < len(v) else None) for k, v in history.items() if k != agn_key}
        agn = history.get(agn_key)
        if agn:
            partial["agn_sum"] = float(sum(agn[:e + 1]))
        partial["epochs_run"] = e + 1
        out.append(objective_value(objective, alpha, partial, epochs, weighting))
    return out


# ------------------------------------------------------------------------------------ trainers

def trainer_for(name: str, source: str | None = None) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The trainer function of a spec's ``trainer`` (``keras``, ``fake`` or ``module:function``).

    Raises:
        PGDLError: a trainer that cannot be imported (naming the spec `source`).
    """
    if name == "keras":
        return keras_trial
    if name == "fake":
        return fake_trial
    module, _, attr = name.partition(":")
    try:
        function = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise PGDLError(("" if source is None else f"{source}: ") + f"trainer: cannot import {name!r}: {exc}") \
            from None
    if not callable(function):
        raise PGDLError(("" if source is None else f"{source}: ") + f"trainer: {name!r} is not a function")
    return function


#: errors of writing a trial's folder that stop the search (a full disk is not a divergence)
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """What a Dask worker runs: the task's trainer; an exception from the training itself is
    returned as a diverged result with its message (the search goes on), so that only a lost
    worker makes Dask retry. A spec error (PGDLError: a model that does not fit its data) comes
    back as ``spec_error`` and a failed write (a full disk) as ``write_error``: the driver stops
    with their one line (raised here, Dask would log each try as "Compute Failed" and retry)."""
    start = time.perf_counter()
    try:
        result = trainer_for(task["spec"]["trainer"])(task)
    except PGDLError as exc:
        return {"spec_error": str(exc), "worker_pid": os.getpid()}
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        return {"write_error": f"{exc.strerror or exc}{where}", "worker_pid": os.getpid()}
    except (ArithmeticError, ValueError, RuntimeError, MemoryError) as exc:
        result = {"diverged": True, "error": f"{type(exc).__name__}: {exc}", "epochs_run": 0}
    result.setdefault("seconds", time.perf_counter() - start)
    result["worker_pid"] = os.getpid()
    return result


@functools.lru_cache(maxsize=4)
def _data(data_json: str, final: bool):
    from pgdl_measures.training import datasets

    data = json.loads(data_json)
    splits = datasets.load_dataset(data["dataset"], **(data.get("options") or {}))
    if final:
        return datasets.prepare(splits, train_fraction=1.0, validation=0, seed=int(data.get("seed", 0)))
    return datasets.prepare(splits, train_fraction=float(data.get("train_fraction", 1.0)),
                            validation=data.get("validation", 0), seed=int(data.get("seed", 0)))


def train_config(task: Mapping[str, Any]):
    """The :class:`~pgdl_measures.training.config.TrainConfig` of a task: the study's piecewise
    schedule (divided by 10 at 50% and 75%) over the task's epochs, coupled weight decay."""
    from pgdl_measures.training.config import TrainConfig

    params = task["params"]
    return TrainConfig(epochs=int(task["epochs"]), batch_size=int(round(params["batch_size"])),
                       learning_rate=float(params["learning_rate"]), momentum=float(params["momentum"]),
                       weight_decay=float(params["weight_decay"]), seed=int(task["seed"]),
                       diverge_loss=float(task["spec"].get("diverge_loss", 1e4)))


def keras_trial(task: dict[str, Any]) -> dict[str, Any]:
    """Train the spec's model with the task's hyper-parameters through
    :func:`pgdl_measures.training.fit.train` (resumable in the task's folder: a worker killed
    mid-trial is retried and continues from the last finished epoch)."""
    import keras

    from pgdl_measures.training import models
    from pgdl_measures.training.fit import seeded, train

    spec = task["spec"]
    data = _data(json.dumps(spec["data"], sort_keys=True), bool(task.get("final")))
    keras.backend.clear_session()
    agn = task.get("agn")
    with seeded(int(task["seed"])):  # not the global `random`, which the worker's event loop shares
        try:
            model = models.build(spec["model"]["name"], data.input_shape, data.num_classes,
                                 **(spec["model"].get("options") or {}))
        except ValueError as exc:  # the spec's model does not fit its data: a spec error, not a divergence
            raise PGDLError(f"model {spec['model']['name']!r} cannot be built for {data.name} "
                            f"{data.input_shape}: {exc}") from None
        fit = train(model, data, train_config(task), out_dir=task.get("out_dir"),
                    online_agn=agn == "online", exact_agn=agn == "exact")
    summary = fit.summary()
    key = "online_agn" if agn == "online" else "agn"
    result = {k: summary.get(k) for k in ("loss", "accuracy", "val_loss", "val_accuracy", "test_loss",
                                          "test_accuracy")}
    result.update(epochs_run=fit.epochs_run, diverged=fit.diverged, seconds=fit.seconds,
                  agn_sum=summary.get(f"{key}_sum") if agn else None,
                  history={k: [float(v) for v in vals] for k, vals in fit.history.items()})
    return result


def fake_trial(task: dict[str, Any]) -> dict[str, Any]:
    """A stand-in trainer for tests: no Keras, a smooth function of the hyper-parameters that
    improves with epochs; it diverges when the learning rate exceeds 0.3.

    Environment (read on the worker): ``PGDL_SEARCH_FAKE_SLEEP`` seconds per trial;
    ``PGDL_SEARCH_FAKE_KILL`` a marker file: the first trial to run while it is absent creates
    it and kills its own worker process (SIGKILL) halfway through. Each run appends a line to
    ``runs.log`` in the task's folder.
    """
    params, epochs = task["params"], int(task["epochs"])
    out = Path(task["out_dir"]) if task.get("out_dir") else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "runs.log", "a") as f:
            f.write(f"{os.getpid()} {epochs}\n")
    sleep = float(os.environ.get("PGDL_SEARCH_FAKE_SLEEP", "0"))
    marker = os.environ.get("PGDL_SEARCH_FAKE_KILL")
    if sleep:
        time.sleep(sleep / 2)
    if marker and not task.get("final"):
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.write(fd, f"{task.get('trial')}\n".encode())
            os.close(fd)
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
    if sleep:
        time.sleep(sleep / 2)
    lr, mom = float(params["learning_rate"]), float(params["momentum"])
    wd, bs = float(params["weight_decay"]), float(params["batch_size"])
    diverged = lr > 0.3
    base = (math.log10(lr) + 2.0) ** 2 / 4 + (mom - 0.8) ** 2 + (math.log10(wd) + 3.5) ** 2 / 16 \
        + (math.log10(bs) - 2.0) ** 2 / 4
    history = {"loss": [], "val_loss": [], "val_accuracy": [], "agn": []}
    for e in range(epochs):
        progress = (e + 1) / 160
        history["loss"].append(base * 0.5 + 1.0 / (1.0 + 10 * progress))
        history["val_loss"].append(base + 0.5 / (1.0 + 10 * progress) + 0.1 * mom)
        history["val_accuracy"].append(max(0.0, 1.0 - history["val_loss"][-1] / 4))
        history["agn"].append(lr * (1.0 + mom) / (1.0 + wd * 100))
    if diverged:
        history = {k: v[:1] for k, v in history.items()}
        history["loss"] = [math.nan]
    result = {k: v[-1] for k, v in history.items() if k != "agn"}
    result.update(epochs_run=len(history["loss"]), diverged=diverged, agn_sum=float(sum(history["agn"])),
                  test_accuracy=result["val_accuracy"], history=history)
    return result
