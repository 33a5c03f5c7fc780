"""The main job: compute measures on every model of every task, store, rank, report.

:func:`evaluate` runs the whole job (what `pgdl evaluate` calls); its steps are usable alone:

1. :func:`compute_measures` computes each measure on each model in a child process
   (:mod:`pgdl_measures.evaluate.worker`) that loads a model once and computes its measures. Each model
   has a time budget (300 s by default, the competition's) across its measures: when it runs
   out, the worker is killed, the measure in flight and those left become ``exceeded``, and a
   fresh worker takes the next model. A failing model or measure is stored with its error and
   the run goes on. Every result is committed to the store (:mod:`pgdl_measures.evaluate.store`) as it
   is produced; a run started again computes only what is missing (errors and "exceeded"
   results count as done unless `retry_errors`). The time already spent on a model's stored
   results counts against its budget on a restart, so an interrupted run ends as an
   uninterrupted one would. A stored result is reused only for the same model *contents*: each
   row carries a digest of the model's files and the task's data
   (:meth:`pgdl_measures.tasks.Task.model_digest`), so a different task that has the same name
   never gets another's values (the run notes the rows it did not reuse). The reference
   (``model_configs.json``) is checked first (:func:`check_references`).
2. :func:`write_predictions` writes ``<out>/<measure>/<task>.predict`` in the competition's
   format: a JSON object model id -> value, or ``"EXCEEDED"`` for a model over the budget. The
   value is oriented like the competition's predictions (larger predicts a larger gap), i.e.
   multiplied by the measure's ``direction``. The competition needed a value for every model,
   so a measure that failed on any model of a task gets no ``.predict`` for that task (a stale
   one is removed) and the reason is reported; the store keeps the values of the others. The
   outputs cover every model with a stored result for the task as it is now (its contents, see
   above), not only the models of this run (:func:`collect_results`).
3. :func:`rank_results` ranks the measures on the tasks that have reference data with every
   ranker of :mod:`scoring.rankers`, and :func:`scoring.report.write_report` writes
   ``report.md``, ``report.html`` and ``ranking.json``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgdl_measures import __version__
from pgdl_measures.evaluate.compute import WORKER_LOG, ComputeStats, _plan, compute_measures
from pgdl_measures.evaluate.inputs import (
    DEFAULT_OUT,
    _as_measure,
    _as_tasks,
    all_measure_names,
    current_backend,
    default_measure_names,
    prepare_out_dir,
    resolve_measures,
)
from pgdl_measures.evaluate.outputs import (
    _unmatched_models,
    check_references,
    collect_results,
    rank_results,
    status_table,
    write_predictions,
)
from pgdl_measures.evaluate.runner import Progress
from pgdl_measures.evaluate.store import ResultStore, Row, canonical_params
from pgdl_measures.measures.base import Measure
from pgdl_measures.tasks import Task, select_models
from scoring.rules import COMPETITION_TIME_BUDGET, Status

__all__ = [
    "DEFAULT_OUT", "WORKER_LOG", "ComputeStats", "Evaluation", "Progress", "_as_measure", "_as_tasks", "_plan",
    "_unmatched_models", "all_measure_names", "check_references", "collect_results", "compute_measures",
    "current_backend", "default_measure_names", "evaluate", "prepare_out_dir", "rank_results", "resolve_measures",
    "select_models", "status_table", "write_predictions",
]


@dataclass
class Evaluation:
    """The outcome of :func:`evaluate`.

    Attributes:
        out_dir: the output folder.
        store_path: the results store.
        backend: the Keras backend used.
        tasks: the tasks evaluated.
        measures: the measures computed.
        stats: what was computed in this run.
        results: (task, measure) -> model -> stored row.
        predictions: (measure, task) -> the ``.predict`` written.
        notes: predictions not written and why; ranking notes.
        ranking: the :class:`scoring.ranking.Ranking`.
        report: paths of report.md and report.html.
    """

    out_dir: Path
    store_path: Path
    backend: str
    tasks: list[Task]
    measures: list[Measure]
    stats: ComputeStats
    results: dict[tuple[str, str], dict[str, Row | None]]
    predictions: dict[tuple[str, str], Path]
    notes: list[str]
    ranking: Any
    report: tuple[Path, Path]

    def failed_counts(self) -> dict[str, int]:
        """How many of the results are not values, by status (``error``, ``exceeded``); empty
        when every result is a value (what ``pgdl evaluate``'s exit status tells)."""
        counts = Counter(row.status for rows in self.results.values() for row in rows.values()
                         if row is not None and row.status != Status.OK)
        return dict(counts)

    def why_nothing_ranked(self) -> str | None:
        """Why no measure was ranked on any task, in one line (None when something was ranked).

        The real reason: no task has reference data; or, per task with a reference, no measure
        has a value (every result exceeded its budget or failed: counts given); or the
        rankers' own notes (e.g. values on too few models).
        """
        if self.ranking.ranked_tasks:
            return None
        with_reference = [task for task in self.tasks if task.has_reference]
        if not with_reference:
            return "no task with reference data (model_configs.json): nothing ranked"
        reasons = []
        for task in with_reference:
            rows = [row for measure in self.measures for row in self.results[(task.name, measure.name)].values()]
            counts = Counter("not computed" if row is None else row.status for row in rows)
            if not counts.get(Status.OK):
                shown = ", ".join(f"{n} {'exceeded the time budget' if status == Status.EXCEEDED else status}"
                                  for status, n in counts.items())
                reasons.append(f"{task.name}: no measure has a value on any model ({shown or 'no models'})")
        if not reasons:
            reasons = [note for note in self.ranking.notes if "not ranked" in note][:3] or \
                ["the rankers gave no score (see the notes)"]
        return "nothing ranked: " + "; ".join(reasons)


def evaluate(tasks: Sequence[Task | str | os.PathLike], measures: Sequence[str | Measure | type] = (),
             out_dir: str | os.PathLike = DEFAULT_OUT, *, time_budget: float = COMPETITION_TIME_BUDGET,
             models: Sequence[str] | None = None, retry_errors: bool = False, n_resamples: int = 1000,
             scheme: str = "halfsample", n_permutations: int = 1000, progress: Progress | None = None,
             workers: int | str | None = None, scheduler: str | None = None, max_tries: int = 3,
             connect_timeout: float = 10.0, ship_data: bool | None = None) -> Evaluation:
    """Compute, store, write predictions, rank and report (see the module docstring).

    Args:
        tasks: tasks or paths (each searched with :func:`pgdl_measures.tasks.find_tasks`).
        measures: registry names, Measure classes or instances; the available built-ins when empty.
        out_dir: the output folder (created; must be writable).
        time_budget: seconds per model across its measures.
        models: only these model ids.
        retry_errors: compute again results stored as errors or exceeded.
        n_resamples: resamples of the models behind each interval and paired comparison.
        scheme: how models are resampled: ``"halfsample"`` (half of them without replacement) or
            ``"bootstrap"`` (see :mod:`scoring.resampling`).
        n_permutations: permutations of the values behind each "better than unrelated" p-value.
        progress: progress callbacks (the CLI draws them: :mod:`pgdl_measures.cli._progress`).
        workers: compute on a local Dask cluster of this many worker processes (``"auto"``: one
            per GPU, else one per core); None with no `scheduler`: one model after another here.
        scheduler: compute on the Dask cluster of this scheduler (``tcp://host:8786``).
        max_tries: on a cluster, how many workers a model may kill before it is recorded as failed.
        connect_timeout: seconds to reach `scheduler`.
        ship_data: on a cluster, send the tasks' files to the workers (None: only when a worker
            cannot see a task's folder; see :mod:`~pgdl_measures.evaluate.cluster`).

    Returns:
        An :class:`Evaluation`.

    Raises:
        PGDLError: bad arguments, an output folder that cannot be written (named), a worker
            that cannot start, an unreachable scheduler. Results stored before the error remain.
    """
    tasks = _as_tasks(tasks)
    measures = [_as_measure(m) for m in (measures or default_measure_names())]
    references = check_references(tasks)  # before computing: a malformed reference stops the run now
    out = prepare_out_dir(out_dir)
    backend = current_backend()
    with ResultStore.in_folder(out) as store, _engine(workers, scheduler, max_tries, connect_timeout) as engine:
        stats = compute_measures(tasks, measures, store, time_budget=time_budget, models=models,
                                 retry_errors=retry_errors, progress=progress, backend=backend, engine=engine,
                                 ship_data=ship_data)
        results = collect_results(store, tasks, measures, backend, models)
        store_path = store.path
    progress = progress or Progress()
    predictions, notes = write_predictions(results, measures, out)
    notes[:0] = stats.notes
    progress.stage(f"ranking {len(measures)} measure(s) on {len(tasks)} task(s) with every ranker "
                   f"({n_resamples} {scheme} resamples and {n_permutations} permutations each)")
    ranking = rank_results(tasks, measures, results, n_resamples=n_resamples, references=references,
                           scheme=scheme, n_permutations=n_permutations)
    from scoring.report import write_report

    meta = {"title": "PGDL evaluation",
            "tasks": ", ".join(t.name for t in tasks),
            "measures": ", ".join(f"{m.name} {canonical_params(m.params)}" for m in measures),
            "models": "all" if not models else f"{', '.join(models)} computed in this run (the outputs cover "
                                               "every model stored for the tasks)",
            "backend": backend, "time budget per model": f"{time_budget:g} s",
            "toolkit version": __version__, "results store": store_path.name,
            "computed in this run": f"{stats.total_computed} results ({stats.reused} already stored)"}
    report = write_report(ranking, out, meta=meta, status=status_table(results), notes=notes)
    return Evaluation(out, store_path, backend, tasks, measures, stats, results, predictions, notes,
                      ranking, report)


@contextmanager
def _engine(workers, scheduler, max_tries, connect_timeout):
    """A started Dask engine when `workers` or `scheduler` asks for one, else None."""
    if workers is None and scheduler is None:
        yield None
        return
    from pgdl_measures.engine import Engine

    with Engine(scheduler, workers=workers, retries=0, max_tries=max_tries, connect_timeout=connect_timeout) as engine:
        yield engine
