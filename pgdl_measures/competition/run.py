"""Run a PGDL competition submission the way the competition's ingestion program did.

A *submission* (:mod:`~pgdl_measures.competition.submission`) is a folder, or a zip of one,
holding ``complexity.py`` that defines ``complexity(model, dataset)``. For each task under an
input folder and each of its models, :func:`run_submission` hands ``complexity`` the model and
the task's training data and writes ``<task>.predict``: a JSON object model id -> float, or
``"EXCEEDED"`` for a model over its time budget.

What the submission sees is what it saw in 2020 (see :mod:`pgdl_measures.competition._ingestion_child`):
a ``tf.keras`` Sequential whose ``__call__`` takes ``tape=`` and whose layers remember
``_last_seen_input``, with ``initial_weights`` when the task has ``weights_init.hdf5``, and an
unbatched ``tf.data`` dataset of ``(float32 inputs, int32 label)``. By default it runs on the
legacy Keras 2 implementation (``tf_keras``, selected with ``TF_USE_LEGACY_KERAS=1``), so the
Keras 2 idioms of 2020 code work; ``keras="3"`` runs it on Keras 3 instead (see
``sample_submission/README.md`` for which idioms work where).

Differences from the competition, all in the direction of robustness:

* every model runs in a child process (:mod:`~pgdl_measures.competition.ingestion`, working
  folder a fresh temporary folder), by default one per model, so one model cannot disturb the
  next;
* the time budget is enforced (the competition could not interrupt a model): a model over it
  is killed and recorded as ``"EXCEEDED"``; the rules, ``per-model`` by default and the
  competition's ``per-task``, are :class:`scoring.rules.TimeBudget`'s;
* when a model's child ends, everything it started is killed too, also processes that left its
  process group with ``setsid`` (see :mod:`pgdl_measures._subprocess` for how, and the limit);
* results are written as each model finishes (atomically, :mod:`~pgdl_measures.competition.files`),
  and a rerun skips the models the ``.predict`` file already holds;
* a value that is NaN or infinite is an error (the competition wrote a bare ``NaN``, which is not
  JSON);
* a crash is recorded, not fatal: the model is left out of ``<task>.predict`` and listed, with
  the error and the tail of its stderr, in ``<task>.errors.json`` next to it;
* shards are read in natural sorted order and model ids in natural order.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pgdl_measures.competition.files import LOCK_NAME, ModelContents, TaskFiles, output_lock
from pgdl_measures.competition.ingestion import (
    KERAS_MODES,
    IngestionChild,
    child_environment,
    emit_not_run,
    run_model,
    run_models,
)
from pgdl_measures.competition.outcomes import SETUP_STAGES, ModelOutcome, SubmissionRun, TaskOutcome
from pgdl_measures.competition.submission import (
    find_submission_root,
    prepared_submission,
    submission_digest,
    unpack_submission,
)
from pgdl_measures.errors import PGDLError
from pgdl_measures.tasks import Task, find_tasks, select_models
from scoring.files import check_writable
from scoring.rules import BUDGET_RULES, COMPETITION_TIME_BUDGET, EXCEEDED, TimeBudget

__all__ = [
    "BUDGET_RULES",
    "EXCEEDED",
    "KERAS_MODES",
    "LOCK_NAME",
    "IngestionChild",
    "ModelOutcome",
    "SubmissionRun",
    "TaskFiles",
    "TaskOutcome",
    "child_environment",
    "find_submission_root",
    "output_lock",
    "prepared_submission",
    "run_model",
    "run_models",
    "run_submission",
    "select_models",
    "submission_digest",
    "unpack_submission",
]


def run_submission(submission: str | os.PathLike, input_dir: str | os.PathLike,
                   output_dir: str | os.PathLike, *, time_budget: float = COMPETITION_TIME_BUDGET,
                   keras: str = "2", models: list[str] | None = None, jobs: int = 1,
                   reuse_process: bool = False, setup_timeout: float | None = None,
                   budget_rule: str = "per-model", restart: bool = False,
                   on_outcome: Callable[[str, ModelOutcome], None] | None = None,
                   on_wait: Callable[[Path], None] | None = None) -> SubmissionRun:
    """Run a submission on every task under `input_dir` and write ``<task>.predict`` files.

    For each task (sample layout, or ``input_data/<task>/`` of the public data) and each model,
    ``complexity(model, dataset)`` runs in a child process (see
    :func:`~pgdl_measures.competition.ingestion.run_models`): one
    process per model by default; with `reuse_process`, one per task and job, handling its
    models in turn as the competition's single process did (TensorFlow starts once; a model
    over budget or crashing costs a restart). Writes ``OUTPUT_DIR/<task>.predict`` (model id
    -> float or ``"EXCEEDED"``, failed models left out) and, while a model is failed,
    ``OUTPUT_DIR/<task>.errors.json`` (model id -> error, stage, stderr tail).

    Both files are rewritten atomically as each model finishes, so a failure or a kill of the
    run loses at most the models in flight. A rerun continues: models already in the task's
    ``.predict`` (a value or ``"EXCEEDED"``) are skipped and kept, failed ones run again;
    `restart` runs every selected model again and starts both files afresh. The files of
    another submission or Keras mode are never continued, and a kept value is keyed on its
    model's contents (its files and the task's data, :meth:`Task.model_digest`, as evaluate's
    results store): a task with the same name but other models or data runs them again (see
    :class:`~pgdl_measures.competition.files.TaskFiles`).

    One run at a time writes an output folder: a run holds an exclusive lock on
    ``OUTPUT_DIR/.pgdl-run-submission.lock`` (released when it ends, also when it is killed);
    a second run on the folder waits for it, then continues what it wrote.

    When the submission cannot even be imported (a syntax error, a missing module), the error
    is the same for every model: it is recorded for all of them after the first failure,
    without starting further children.

    Args:
        submission: a folder or zip holding ``complexity.py``.
        input_dir: the tasks (see :func:`pgdl_measures.tasks.find_tasks`).
        output_dir: where the files go (created if needed).
        time_budget: seconds per model (loading it and computing the measure).
        keras: ``"2"`` for legacy Keras 2 (tf_keras, the default) or ``"3"``.
        models: only these model ids (``model_0`` or ``0``), in every task that has them.
        jobs: how many children run at once.
        reuse_process: one child per task and job instead of one per model.
        setup_timeout: seconds for a child's start-up (default: the budget, at least
            :data:`~pgdl_measures.competition.ingestion.MIN_SETUP_SECONDS`).
        budget_rule: one of :data:`BUDGET_RULES` (see :class:`scoring.rules.TimeBudget`).
        restart: ignore what an earlier run wrote to `output_dir` instead of continuing it.
        on_outcome: called with ``(task name, outcome)`` as each model finishes.
        on_wait: called with `output_dir` when another run holds its lock, before waiting.

    Returns:
        A :class:`SubmissionRun` with every outcome.

    Raises:
        PGDLError: a missing or invalid submission, input folder or model id, an output
            folder that cannot be written (also when it happens mid-run: what was written
            stays), a ``.predict`` there that cannot be continued, or legacy Keras 2 requested
            without tf_keras installed.
    """
    if time_budget <= 0:
        raise PGDLError(f"the time budget must be positive, got {time_budget}")
    if jobs < 1:
        raise PGDLError(f"--jobs must be at least 1, got {jobs}")
    TimeBudget(time_budget, budget_rule)  # fail early on an unknown rule
    child_environment(keras)  # fail early on a bad mode or a missing tf_keras
    tasks = find_tasks(input_dir)
    selected = select_models(tasks, models)
    for task in tasks:
        if selected[task.name] and not (task.dataset_dir / "train").is_dir():
            raise PGDLError("dataset_1/train is missing: a submission needs the task's training "
                            "data", task.dataset_dir)
    output_dir = Path(output_dir)
    check_writable(output_dir, "the results folder")
    with prepared_submission(submission) as submission_dir, output_lock(output_dir, on_wait):
        identity = {"submission_sha256": submission_digest(submission_dir), "keras": keras,
                    "time_budget": time_budget, "budget_rule": budget_rule}
        files = {task.name: TaskFiles(task.name, output_dir, restart=restart, identity=identity,
                                      contents=ModelContents(task))
                 for task in tasks if selected[task.name]}
        runner = _Runner(SubmissionRun(submission_dir, keras), on_outcome, time_budget,
                         budget_rule, jobs if reuse_process else None)
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for task in tasks:
                if selected[task.name]:
                    child = IngestionChild.create(submission_dir, task.dataset_dir / "train",
                                                  keras=keras, time_budget=time_budget,
                                                  setup_timeout=setup_timeout)
                    runner.run_task(pool, task, selected[task.name], files[task.name], child)
    return runner.run


class _Runner:
    """The state one run's threads share: its outcomes, the first set-up failure (the same for
    every model after it), and the event that stops the run early (an unwritable output, Ctrl-C).
    """

    def __init__(self, run: SubmissionRun, on_outcome: Callable[[str, ModelOutcome], None] | None,
                 time_budget: float, budget_rule: str, chunks: int | None):
        self.run = run
        self.on_outcome = on_outcome
        self.time_budget, self.budget_rule = time_budget, budget_rule
        self.chunks = chunks  # children per task, each taking its share in turn (None: per model)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.setup_failure: ModelOutcome | None = None

    def run_task(self, pool: ThreadPoolExecutor, task: Task, selected: list[str], files: TaskFiles,
                 child: IngestionChild) -> None:
        """Run the models of `task` that `files` do not hold yet, under one budget."""
        ids = [m for m in selected if m not in files.done()]
        outcome = TaskOutcome(task.name, predict_path=files.predict_path,
                              skipped=[m for m in selected if m not in ids],
                              other_contents=list(files.other_contents))
        self.run.tasks.append(outcome)
        if not ids:
            return
        budget = TimeBudget(self.time_budget, self.budget_rule, len(ids))
        chunks = self.chunks
        parts = [ids[i::chunks] for i in range(min(chunks, len(ids)))] if chunks else [[m] for m in ids]
        futures = [pool.submit(self._run_chunk, task, part, files, child, budget, outcome)
                   for part in parts]
        try:
            for future in futures:
                future.result()
        except BaseException:
            self.stop.set()
            pool.shutdown(cancel_futures=True)
            raise
        outcome.outcomes = {m: outcome.outcomes[m] for m in ids}
        outcome.errors_path = files.errors_path_if_any()

    def _run_chunk(self, task: Task, ids: list[str], files: TaskFiles, child: IngestionChild,
                   budget: TimeBudget, task_outcome: TaskOutcome) -> None:
        def emit(outcome: ModelOutcome) -> None:
            with self.lock:
                if outcome.stage in SETUP_STAGES and self.setup_failure is None:
                    self.setup_failure = outcome
                task_outcome.outcomes[outcome.model_id] = outcome
                try:
                    files.record(outcome)
                except PGDLError:
                    self.stop.set()
                    raise
                if self.on_outcome is not None:
                    self.on_outcome(task.name, outcome)

        if self.stop.is_set():
            return
        models = [(m, task.input_dir / m) for m in ids]
        with self.lock:
            failed = self.setup_failure
        if failed is not None:
            emit_not_run(failed, models, emit)
            return
        run_models(child, models, budget, on_outcome=emit, cancel=self.stop)
