"""Summaries of tasks for `pgdl task info`: models, architectures, grid, data, gaps.

:func:`describe_tasks` gives the data (JSON-able dicts, what ``--json`` prints); the CLI
(:mod:`pgdl_measures.cli.task`) renders it for a terminal.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from pgdl_measures.errors import PGDLError
from pgdl_measures.tasks import Task, find_tasks, grid_report

#: The bundled mini task, relative to the project root.
MINI_TASK = Path("data") / "mini"


def resolve_default_task(path: str | os.PathLike | None) -> Path:
    """`path`, or the bundled mini task (``./data/mini``, else the one beside the package)."""
    if path is not None:
        return Path(path)
    for candidate in (Path.cwd() / MINI_TASK, Path(__file__).resolve().parents[1] / MINI_TASK):
        if candidate.is_dir():
            return candidate
    raise PGDLError("no task given and the bundled mini task was not found; pass a task folder", MINI_TASK)


def architecture_signature(model) -> str:
    """``Conv2D x4 > MaxPooling2D x2 > ...``: the layer types in order, runs collapsed."""
    names = [type(layer).__name__ for layer in model.layers]
    runs: list[list] = []
    for name in names:
        if runs and runs[-1][0] == name:
            runs[-1][1] += 1
        else:
            runs.append([name, 1])
    return " > ".join(f"{n} x{c}" if c > 1 else n for n, c in runs)


def _stats(values) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return {}
    return {"mean": float(arr.mean()), "std": float(arr.std()), "min": float(arr.min()), "max": float(arr.max())}


def _data_summary(task: Task) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        train = task.train
        first = next(train.batches(1), None)
        if first is None:
            raise PGDLError(f"the training data holds no example (its {len(train.files)} shard(s) "
                            "are empty)", task.dataset_dir / "train")
        x, _ = first
        out["input_shape"] = list(x.shape[1:])
        out["train_examples"] = len(train)
        out["train_shards"] = len(train.files)
        if task.test is not None:
            out["test_examples"] = len(task.test)
    except PGDLError as exc:
        out["error"] = str(exc)
    return out


def describe_task(task: Task) -> dict[str, Any]:
    """A JSON-able summary of one task; broken models are listed with their error."""
    summary: dict[str, Any] = {"task": task.name, "input_dir": str(task.input_dir),
                               "reference": str(task.model_configs_path) if task.has_reference else None}
    ids = task.model_ids()
    architectures: Counter = Counter()
    params, errors, no_init = [], {}, []
    num_classes = set()
    for model_id, trained in task.iter_models(ids, with_data=False):
        if isinstance(trained, PGDLError):
            errors[model_id] = str(trained)
            continue
        architectures[architecture_signature(trained.model)] += 1
        params.append(trained.model.count_params())
        num_classes.add(trained.num_classes)
        if trained.initial_weights is None:
            no_init.append(model_id)
    summary["models"] = {"count": len(ids), "loaded": len(ids) - len(errors), "errors": errors,
                         "without_initial_weights": no_init, "num_classes": sorted(num_classes),
                         "parameters": _stats(params), "architectures": dict(architectures.most_common())}
    summary["data"] = _data_summary(task)
    if task.has_reference:
        try:
            configs = task.model_configs(validate=False)
            report = grid_report(configs)
            problems = report.problems() + task.unmatched_ids(configs)
            summary["grid"] = {"hparams": {k: list(v) for k, v in report.hparams.items()}, "cells": report.size,
                               "models": len(configs), "complete": report.complete, "unique": report.unique,
                               "problems": problems}
            summary["gaps"] = {"gen_gap": _stats(configs["gen_gap"]), "train_acc": _stats(configs["train_acc"]),
                               "test_acc": _stats(configs["test_acc"])}
        except PGDLError as exc:
            summary["grid"] = {"error": str(exc)}
    return summary


def describe_tasks(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Summaries of every task under `path` (see :func:`pgdl_measures.tasks.find_tasks`)."""
    return [describe_task(task) for task in find_tasks(path)]
