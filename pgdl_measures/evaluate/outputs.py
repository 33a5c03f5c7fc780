"""Reading the results: what is stored per task and measure, ``.predict`` files, reference checks,
the ranking and the status table."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pgdl_measures.errors import PGDLError
from pgdl_measures.evaluate.store import Key, ResultStore, Row, measure_key
from pgdl_measures.measures.base import Measure
from pgdl_measures.tasks import Task, select_models
from scoring.files import atomic_write
from scoring.rules import EXCEEDED, Status, natural_key


def collect_results(store: ResultStore, tasks: Sequence[Task], measures: Sequence[Measure], backend: str,
                    models: Sequence[str] | None = None) -> dict[tuple[str, str], dict[str, Row | None]]:
    """(task, measure) -> model -> its stored row (None when missing), for these parameters.

    The models of a task are those of `models` (all when None) and every other model of the task
    that has a stored row of one of `measures` for the task's current contents
    (:meth:`Task.model_digest`), in natural order: a run on a subset of the models, into a folder
    that holds more, reports everything stored, never less. Rows of other contents are ignored.
    """
    out: dict[tuple[str, str], dict[str, Row | None]] = {}
    selected = select_models(tasks, models)
    for task in tasks:
        digests = task.model_digests()
        rows = {row.key: row for row in store.rows(task=task.name, backend=backend)
                if digests.get(row.model) == row.contents}
        keys = {measure.name: measure_key(measure) for measure in measures}
        stored = {key.model for key in rows if keys.get(key.measure) == key.params}
        chosen = set(selected[task.name]) | stored
        for measure in measures:
            out[(task.name, measure.name)] = {
                model: rows.get(Key(task.name, model, measure.name, keys[measure.name], backend, digests[model]))
                for model in task.model_ids() if model in chosen}
    return out


def write_predictions(results: dict[tuple[str, str], dict[str, Row | None]], measures: Sequence[Measure],
                      out_dir: str | os.PathLike) -> tuple[dict[tuple[str, str], Path], list[str]]:
    """Write ``<out>/<measure>/<task>.predict`` for each measure and task with no error.

    Values are ``direction * value`` (larger predicts a larger gap, as the competition read
    them), ``"EXCEEDED"`` for models over the budget. See the module docstring for tasks with
    errors.

    Returns:
        ((measure, task) -> path written, notes on the predictions not written).

    Raises:
        PGDLError: the folder cannot be written.
    """
    out = Path(out_dir)
    direction = {m.name: m.direction for m in measures}
    written, notes = {}, []
    for (task, measure), by_model in results.items():
        path = out / measure / f"{task}.predict"
        failed = {m: r for m, r in by_model.items() if r is None or r.status == Status.ERROR}
        if failed:
            first_model, first = next(iter(failed.items()))
            why = "not computed" if first is None else (first.error or "error").splitlines()[0]
            notes.append(f"no {measure}/{task}.predict: {len(failed)} of {len(by_model)} models have no value "
                         f"(the competition needed every model); first, {first_model}: {why}")
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass
            continue
        prediction = {model: (EXCEEDED if row.status == Status.EXCEEDED else direction[measure] * row.value)
                      for model, row in sorted(by_model.items(), key=lambda kv: natural_key(kv[0]))}
        try:
            atomic_write(path, (json.dumps(prediction, indent=1) + "\n").encode("utf-8"))
        except OSError as exc:
            raise PGDLError(f"cannot write a prediction file: {exc}", path) from None
        written[(measure, task)] = path
    return written, notes


def check_references(tasks: Sequence[Task]) -> dict[str, dict[str, Any]]:
    """Read and check the reference (``model_configs.json``) of every task that has one.

    The same validation as ``pgdl score`` and ``pgdl task info``
    (:func:`scoring.predictions.load_reference`); :func:`evaluate` calls it before computing
    anything, so a malformed reference stops the run at once, not after hours of computing.

    Returns:
        Task name -> the reference as read (model id -> spec).

    Raises:
        PGDLError: naming the file and the problem.
    """
    from scoring.predictions import load_reference

    references = {}
    fix = "nothing was computed: fix the reference, or move it away to compute without ranking"
    for task in tasks:
        if task.has_reference:
            try:
                references[task.name], grid = load_reference(task.model_configs_path)
            except PGDLError as exc:
                raise PGDLError(f"{exc.problem}; {fix}", exc.path) from None
            problem = _unmatched_models(task, grid.model_ids)
            if problem:
                raise PGDLError(f"{problem}: `pgdl score` refuses a .predict file that does not cover "
                                f"exactly the models of model_configs.json; {fix}", task.model_configs_path)
    return references


def _unmatched_models(task: Task, reference_ids: Sequence[str]) -> str | None:
    """What differs between the models of a task's folder and of its reference, in words."""
    folders = task.model_ids()
    extra = [m for m in dict.fromkeys(reference_ids) if m not in set(folders)]
    missing = [m for m in folders if m not in set(reference_ids)]
    parts = []
    for ids, what in ((extra, f"with no model folder in {task.input_dir}"),
                      (missing, "missing although the task has their folders")):
        if ids:
            shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
            parts.append(f"{len(ids)} model(s) {what} ({shown})")
    return "; ".join(parts) or None


def rank_results(tasks: Sequence[Task], measures: Sequence[Measure],
                 results: dict[tuple[str, str], dict[str, Row | None]], *, n_resamples: int = 1000,
                 seed: int = 0, references: dict[str, dict[str, Any]] | None = None,
                 scheme: str = "halfsample", n_permutations: int = 1000):
    """Rank the measures on the tasks with reference data (see :func:`scoring.ranking.rank_measures`).

    Every stored value is used (a task where a measure failed on some models is ranked on the
    others, and marked so).

    Args:
        references: task name -> its reference, as :func:`check_references` gives (read here
            when None; a malformed one is then a note, its task not ranked).
    """
    from scoring.predictions import load_reference
    from scoring.ranking import TaskValues, rank_measures

    task_values, notes = [], []
    for task in tasks:
        specs = None
        if references is not None:
            specs = references.get(task.name)
        elif task.has_reference:
            try:
                specs = load_reference(task.model_configs_path)[0]
            except PGDLError as exc:
                notes.append(f"{task.name}: not ranked: {exc}")
        values = {m.name: {model: row.value for model, row in results[(task.name, m.name)].items()
                           if row is not None and row.status == Status.OK} for m in measures}
        n_models = len(results[(task.name, measures[0].name)]) if measures else 0
        task_values.append(TaskValues(task.name, specs, values, n_models))
    ranking = rank_measures(task_values, {m.name: m.direction for m in measures}, n_resamples=n_resamples, seed=seed,
                            scheme=scheme, n_permutations=n_permutations)
    ranking.notes[:0] = notes
    return ranking


def status_table(results: dict[tuple[str, str], dict[str, Row | None]]) -> tuple[list[str], list[list[str]]]:
    """(header, rows): per measure and task, ``ok/error/exceeded`` counts of the models."""
    tasks = list(dict.fromkeys(t for t, _ in results))
    measures = list(dict.fromkeys(m for _, m in results))
    rows = []
    for measure in measures:
        row = [measure]
        for task in tasks:
            counts = Counter("missing" if r is None else r.status for r in results[(task, measure)].values())
            row.append(" / ".join(f"{counts.get(s, 0)}" for s in (Status.OK, Status.ERROR, Status.EXCEEDED))
                       + (f" ({counts['missing']} missing)" if counts.get("missing") else ""))
        rows.append(row)
    return ["measure (ok / error / exceeded)"] + tasks, rows

