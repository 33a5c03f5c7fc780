"""Computing what the store lacks: the plan (which measures of which models are missing) and
:func:`compute_measures`, one model after another here or spread over a Dask cluster."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pgdl_measures import __version__
from pgdl_measures.errors import PGDLError
from pgdl_measures.evaluate.inputs import _as_measure, _as_tasks, current_backend
from pgdl_measures.evaluate.runner import Progress, Runner, compute_model
from pgdl_measures.evaluate.store import Key, ResultStore, Row, measure_key
from pgdl_measures.measures.base import Measure
from pgdl_measures.tasks import Task, select_models
from scoring.rules import COMPETITION_TIME_BUDGET, Status

#: The worker's log (its stdout and stderr), in the output folder.
WORKER_LOG = "worker.log"


@dataclass
class ComputeStats:
    """What :func:`compute_measures` did: rows computed in this run by status, rows already there,
    notes (stored rows not reused because they belong to other contents of the task), and on a
    cluster the timings of each model's task (:func:`~pgdl_measures.evaluate.cluster.compute_on_cluster`)."""

    computed: Counter = field(default_factory=Counter)
    reused: int = 0
    notes: list[str] = field(default_factory=list)
    dispatch: list[dict] = field(default_factory=list)

    @property
    def total_computed(self) -> int:
        return sum(self.computed.values())


def _plan(tasks, measures, store, backend, selected, retry_errors, contents):
    """Per (task, model): the measures to compute and the seconds already spent on the others.

    A stored row counts only when its ``contents`` is the model's current digest (`contents`:
    (task, model) -> :meth:`Task.model_digest`); rows of the same key but other contents are
    counted in the notes returned.

    Returns:
        (jobs, reused, notes).
    """
    jobs, reused, notes = [], 0, []
    for task in tasks:
        existing = {row.key: row for row in store.rows(task=task.name, backend=backend)}
        by_content: dict[tuple, set[str]] = {}
        for key in existing:
            by_content.setdefault((key.model, key.measure, key.params), set()).add(key.contents)
        other = legacy = 0
        for model in selected[task.name]:
            digest = contents[(task.name, model)]
            pending, credit = [], 0.0
            for measure in measures:
                params = measure_key(measure)
                row = existing.get(Key(task.name, model, measure.name, params, backend, digest))
                if row is None:
                    stale = by_content.get((model, measure.name, params), set()) - {digest}
                    legacy += "" in stale
                    other += bool(stale - {""})
                if row is None or (retry_errors and row.status != Status.OK):
                    pending.append(measure)
                else:
                    reused += 1
                    credit += row.seconds
            if pending:
                jobs.append((task, model, pending, credit))
        if other:
            notes.append(f"{task.name}: {other} stored results were computed on other contents of a task named "
                         f"{task.name!r} (other model files or data): not reused, computed again")
        if legacy:
            notes.append(f"{task.name}: {legacy} stored results come from an older results store that did not "
                         "record what the task contained: not reused, computed again")
    return jobs, reused, notes


def compute_measures(tasks: Sequence[Task | str | os.PathLike], measures: Sequence[str | Measure | type],
                     store: ResultStore, *, time_budget: float = COMPETITION_TIME_BUDGET,
                     models: Sequence[str] | None = None, retry_errors: bool = False,
                     progress: Progress | None = None, log_path: str | os.PathLike | None = None,
                     backend: str | None = None, engine=None, ship_data: bool | None = None) -> ComputeStats:
    """Compute every measure on every model of every task into `store`, skipping stored results.

    The budget of a model (`time_budget` seconds, minus the seconds of its results already
    stored) covers loading it and computing its measures, in order; starting a worker is not
    counted. Past it, the measure in flight and the ones after it are stored as ``exceeded``.

    Args:
        tasks: tasks, or paths to find them in (:func:`pgdl_measures.tasks.find_tasks`).
        measures: registry names, Measure classes or instances (classes must be importable).
        store: where results go, one commit per row.
        time_budget: seconds per model across its measures.
        models: only these model ids (all by default).
        retry_errors: compute again results stored as errors or exceeded.
        progress: progress callbacks (none by default).
        log_path: the worker's log file (``worker.log`` beside the store by default).
        backend: the Keras backend (:func:`current_backend` by default); part of each result's key.
        engine: a started :class:`pgdl_measures.engine.Engine`: one Dask task per model, run by its
            workers (:mod:`~pgdl_measures.evaluate.cluster`); None computes here, one model after
            another.
        ship_data: on an engine, send each task's files to the workers and read only those (None:
            send them when a worker cannot read a task's folder).

    Returns:
        :class:`ComputeStats`.

    Raises:
        PGDLError: bad arguments, or the worker cannot start (results stored so far remain).
    """
    if not time_budget > 0:
        raise PGDLError(f"the time budget must be positive, got {time_budget}")
    tasks = _as_tasks(tasks)
    measures = [_as_measure(m) for m in measures]
    names = [m.name for m in measures]
    if len(set(names)) != len(names):
        dup = sorted(n for n, c in Counter(names).items() if c > 1)
        raise PGDLError(f"measure {', '.join(dup)} given twice: one run computes one parameter set per measure")
    selected = select_models(tasks, models)
    backend = backend or current_backend()
    progress = progress or Progress()
    contents = {(task.name, model): digest for task in tasks
                for model, digest in task.model_digests(selected[task.name]).items()}
    jobs, reused, notes = _plan(tasks, measures, store, backend, selected, retry_errors, contents)
    stats = ComputeStats(reused=reused, notes=notes)

    def put(task, model, measure, status, *, value=None, error=None, seconds=0.0):
        row = Row(task.name, model, measure.name, measure_key(measure), backend, status,
                  value=value, error=error, seconds=float(seconds), version=__version__,
                  contents=contents[(task.name, model)])
        store.put(row)
        stats.computed[status] += 1
        progress.row_stored(row)

    log = Path(log_path) if log_path else store.path.parent / WORKER_LOG
    progress.start(len(jobs), sum(len(p) for _, _, p, _ in jobs))
    try:
        if engine is not None:
            from pgdl_measures.evaluate.cluster import compute_on_cluster

            stats.dispatch = compute_on_cluster(engine, jobs, put, progress, time_budget=time_budget,
                                                backend=backend, log_dir=log.parent, ship_data=ship_data)
        else:
            _compute_serially(jobs, put, progress, time_budget, Runner(log, backend, progress))
    finally:
        progress.close()
    return stats


def _compute_serially(jobs, put, progress, time_budget, runner):
    """One model after another in one worker child (replaced when it dies or runs out of time)."""
    try:
        for task, model, pending, credit in jobs:
            compute_model(runner, task, model, pending, credit, time_budget, put, progress)
        runner.close()
    finally:
        runner.discard()
