"""Computing one model's pending measures in a supervised child process, within its time budget.

:class:`Runner` keeps one worker child (:class:`pgdl_measures.evaluate.worker.WorkerProcess`)
alive across models and replaces it after a timeout or a crash; :func:`compute_model` computes a
model's measures on it and hands each result to a callback. The serial loop
(:mod:`~pgdl_measures.evaluate.compute`) and the Dask task (:mod:`~pgdl_measures.evaluate.cluster`)
both run models this way.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pgdl_measures.errors import PGDLError
from pgdl_measures.evaluate.store import Row
from scoring.rules import Status, TimeBudget


class Progress:
    """Progress callbacks of :func:`~pgdl_measures.evaluate.compute.compute_measures`; this base
    class ignores them."""

    def start(self, models: int, rows: int) -> None:
        """The work to do: `models` models, `rows` results."""

    def worker_starting(self) -> None:
        """A worker process is starting (it imports Keras: seconds; not counted in any budget)."""

    def model_started(self, task: str, model: str, measures: int, deadline: float | None) -> None:
        """A model's computations start; its budget ends at `deadline` (``time.monotonic()``; None
        when a cluster worker computed it: its results follow at once)."""

    def measure_started(self, measure: str) -> None:
        """A measure's computation starts."""

    def row_stored(self, row: Row) -> None:
        """A result has been stored."""

    def model_finished(self) -> None:
        """A model is done."""

    def close(self) -> None:
        """The computations ended (normally or not)."""

    def stage(self, text: str) -> None:
        """A later step starts (writing predictions, ranking, the report)."""


class Runner:
    """Keeps one worker alive across models; replaces it after a timeout or a crash."""

    def __init__(self, log_path: Path, backend: str, progress: Progress):
        self.log_path = log_path
        self.progress = progress
        self.backend = backend
        self.worker = None
        self.env = dict(os.environ, KERAS_BACKEND=backend)
        self.env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    def get(self):
        from pgdl_measures.evaluate.worker import WorkerDied, WorkerProcess

        if self.worker is not None and self.worker.alive:
            return self.worker
        self.discard()
        self.progress.worker_starting()
        try:
            worker = WorkerProcess(self.log_path, env=self.env)
        except WorkerDied as exc:
            raise PGDLError(f"the measure worker process could not start: {exc}") from None
        except OSError as exc:
            raise PGDLError(f"cannot start the measure worker process: {exc}", self.log_path) from None
        if worker.backend != self.backend:
            worker.close()
            raise PGDLError(f"the worker runs Keras on {worker.backend!r}, not {self.backend!r} as asked "
                            "(KERAS_BACKEND); is that backend installed?")
        self.worker = worker
        return worker

    def discard(self):
        if self.worker is not None:
            self.worker.kill()
            self.worker = None

    def close(self):
        if self.worker is not None:
            self.worker.close()
            self.worker = None


def compute_model(runner, task, model, pending, credit, time_budget, put, progress):
    """Compute `pending` measures on one model within its budget (see :func:`compute_measures`)."""
    from pgdl_measures.evaluate.worker import WorkerDied, WorkerTimeout

    worker = runner.get()  # a fresh worker's start-up does not count against the budget
    start = time.monotonic()
    deadline = TimeBudget(time_budget).deadline(start, credit)
    progress.model_started(task.name, model, len(pending), deadline)
    key = (task.name, str(task.input_dir), model)
    remaining = list(pending)
    while remaining:
        measure = remaining[0]
        if time.monotonic() >= deadline:
            for m in remaining:
                put(task, model, m, Status.EXCEEDED,
                    error=f"the time budget of {time_budget:g} s for {task.name}/{model} "
                          "was used up before this measure started")
            break
        try:
            if not worker.alive:
                restart = time.monotonic()
                worker = runner.get()
                deadline += time.monotonic() - restart
            if worker.model != key:
                answer = worker.load(task, model, deadline)
                if not answer["ok"]:
                    for m in remaining:
                        put(task, model, m, Status.ERROR, error=answer["error"], seconds=0.0)
                    break
            progress.measure_started(measure.name)
            began = time.monotonic()
            answer = worker.compute(measure, deadline)
        except WorkerTimeout:
            runner.discard()
            now = time.monotonic()
            in_flight = worker.model == key
            for i, m in enumerate(remaining):
                if i == 0 and in_flight:
                    put(task, model, m, Status.EXCEEDED, seconds=now - began,
                        error=f"exceeded the time budget of {time_budget:g} s for {task.name}/{model} "
                              f"(stopped after {now - began:.1f} s; the model had {now - start + credit:.1f} s "
                              "in all)")
                else:
                    put(task, model, m, Status.EXCEEDED, error=f"the time budget of {time_budget:g} s for "
                                                        f"{task.name}/{model} ran out "
                                                        + ("before this measure started" if in_flight
                                                           else "while the model was loading"))
            break
        except WorkerDied as exc:
            runner.discard()
            if worker.model != key:  # it died loading the model: the model is at fault
                for m in remaining:
                    put(task, model, m, Status.ERROR, error=f"loading {task.name}/{model} killed the worker: {exc}")
                break
            put(task, model, measure, Status.ERROR, error=f"computing it killed the worker: {exc}",
                seconds=time.monotonic() - began)
            remaining.pop(0)  # the next measure starts a fresh worker (its start-up is not counted)
            continue
        if answer["ok"]:
            put(task, model, measure, Status.OK, value=answer["value"], seconds=answer["seconds"])
        else:
            put(task, model, measure, Status.ERROR, error=answer["error"], seconds=answer["seconds"])
        remaining.pop(0)
    progress.model_finished()

