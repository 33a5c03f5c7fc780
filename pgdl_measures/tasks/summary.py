"""Summaries of tasks for `pgdl task info`: models, architectures, grid, data, gaps."""

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
        x, _ = next(train.batches(1))
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


def render_task_summary(summary: dict[str, Any], console) -> None:
    """Print one task summary with rich."""
    from rich.table import Table

    console.rule(f"[bold]{summary['task']}")
    console.print(f"input: {summary['input_dir']}")
    console.print(f"reference: {summary['reference'] or 'absent (no model_configs.json)'}")
    models = summary["models"]
    p = models["parameters"]
    console.print(f"models: {models['count']} ({models['loaded']} loaded), classes: {models['num_classes']}, "
                  + (f"parameters {p['min']:.0f}..{p['max']:.0f}" if p else "no parameters"))
    if models["without_initial_weights"]:
        console.print(f"without weights_init.hdf5: {', '.join(models['without_initial_weights'])}")
    for model_id, err in models["errors"].items():
        console.print(f"[red]  {model_id}: {err}", markup=True, highlight=False)
    for sig, count in models["architectures"].items():
        console.print(f"  {count:4d} x {sig}", highlight=False)
    data = summary["data"]
    if "error" in data:
        console.print(f"[red]data: {data['error']}", highlight=False)
    else:
        console.print(f"data: train {data['train_examples']} examples in {data['train_shards']} shards, "
                      f"test {data.get('test_examples', 'absent')}, input shape {data['input_shape']}")
    grid = summary.get("grid")
    if grid is None:
        return
    if "error" in grid:
        console.print(f"[red]grid: {grid['error']}", highlight=False)
        return
    table = Table("hyper-parameter", "possible values", title=None)
    for name, values in grid["hparams"].items():
        table.add_row(name, ", ".join(map(str, values)))
    console.print(table)
    console.print(f"grid: {grid['models']} models over {grid['cells']} cells; complete: "
                  f"{'yes' if grid['complete'] else 'NO'}; unique: {'yes' if grid['unique'] else 'NO'}")
    for problem in grid["problems"]:
        console.print(f"[yellow]  {problem}", highlight=False)
    gaps = summary["gaps"]
    for key in ("gen_gap", "train_acc", "test_acc"):
        s = gaps[key]
        if s:
            console.print(f"{key}: mean {s['mean']:.4f}  std {s['std']:.4f}  min {s['min']:.4f}  max {s['max']:.4f}")
