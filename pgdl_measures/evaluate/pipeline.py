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

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgdl_measures import __version__
from pgdl_measures.errors import PGDLError
from pgdl_measures.evaluate.store import (
    ERROR,
    OK,
    STATUS_EXCEEDED,
    Key,
    ResultStore,
    Row,
    canonical_params,
    measure_key,
)
from pgdl_measures.measures.base import Measure
from pgdl_measures.tasks import Task, find_tasks, select_models
from scoring.files import atomic_write
from scoring.rules import COMPETITION_TIME_BUDGET, EXCEEDED, natural_key

#: Where results go when no output folder is given.
DEFAULT_OUT = Path("results")
#: The worker's log (its stdout and stderr), in the output folder.
WORKER_LOG = "worker.log"


# ----------------------------------------------------------------------------- arguments


def default_measure_names() -> list[str]:
    """The built-in measures that are available (importable), in registry order, less the
    opt-in ones (``registry.OPT_IN``: computed only when named, or with ``all``)."""
    from pgdl_measures.registry import BUILTINS, OPT_IN, available_measures

    found = available_measures()
    return [name for name in BUILTINS if name in found and name not in OPT_IN]


def all_measure_names() -> list[str]:
    """Every registered measure: the available built-ins (opt-in ones included), then plugins."""
    from pgdl_measures.registry import available_measures

    return list(available_measures())


def resolve_measures(names: Sequence[str] = (), params: dict[str, dict[str, Any]] | None = None) -> list[Measure]:
    """Measure instances from registry names and parameters (the default built-ins when `names` is
    empty; every registered measure for the name ``all``).

    Raises:
        PGDLError: an unknown measure (the message lists the available ones), an unknown
            parameter, or parameters for a measure that is not selected.
    """
    from pgdl_measures.registry import get_measure

    params = dict(params or {})
    from pgdl_measures.registry import ALL

    if ALL in names:
        names = [name for name in names if name != ALL] + all_measure_names()
    names = list(dict.fromkeys(names)) or default_measure_names()
    stray = [name for name in params if name not in names]
    if stray:
        raise PGDLError(f"--param names measure {', '.join(map(repr, stray))}, which is not among the "
                        f"measures to compute ({', '.join(names)})")
    return [get_measure(name, **params.get(name, {})) for name in names]


def _as_measure(item: str | Measure | type) -> Measure:
    from pgdl_measures.registry import get_measure

    if isinstance(item, str):
        measure = get_measure(item)
    elif isinstance(item, type) and issubclass(item, Measure):
        measure = item()
    elif isinstance(item, Measure):
        measure = item
    else:
        raise PGDLError(f"not a measure: {item!r} (give a registry name, a Measure class or instance)")
    cls = type(measure)
    if not measure.name:
        raise PGDLError(f"measure class {cls.__qualname__} has no name")
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        raise PGDLError(f"measure class {cls.__qualname__} must be importable by the worker process: "
                        "define it at the top level of a module, not in __main__ or inside a function")
    canonical_params(measure.params)  # recordable as JSON, or PGDLError
    return measure


def _as_tasks(items: Sequence[Task | str | os.PathLike]) -> list[Task]:
    tasks: list[Task] = []
    for item in items:
        tasks.extend([item] if isinstance(item, Task) else find_tasks(item))
    seen: dict[str, Task] = {}
    for task in tasks:
        if task.name in seen and seen[task.name].input_dir.resolve() != task.input_dir.resolve():
            raise PGDLError(f"two tasks are named {task.name!r} ({seen[task.name].input_dir} and {task.input_dir}); "
                            "results are stored by task name, so evaluate them into different output folders")
        seen.setdefault(task.name, task)
    return list(seen.values())


def current_backend() -> str:
    """The Keras backend a worker will use: Keras's own choice, read without importing Keras.

    ``keras.backend.backend()`` if Keras is already imported, else ``KERAS_BACKEND``, else the
    ``backend`` of ``$KERAS_HOME/keras.json`` (``~/.keras/keras.json``), else tensorflow.
    """
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    try:
        return str(json.loads((home / "keras.json").read_text())["backend"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return "tensorflow"


def prepare_out_dir(out_dir: str | os.PathLike) -> Path:
    """Create the output folder and check it can be written.

    Raises:
        PGDLError: naming the folder, when it cannot be created or written.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise PGDLError(f"the output folder is not writable ({exc.strerror or exc}); choose another with --out",
                        out) from None
    return out


# ----------------------------------------------------------------------------- progress


class Progress:
    """Progress callbacks of :func:`compute_measures`; this base class ignores them."""

    def start(self, models: int, rows: int) -> None:
        """The work to do: `models` models, `rows` results."""

    def worker_starting(self) -> None:
        """A worker process is starting (it imports Keras: seconds; not counted in any budget)."""

    def model_started(self, task: str, model: str, measures: int, deadline: float) -> None:
        """A model's computations start; its budget ends at `deadline` (``time.monotonic()``)."""

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


# ----------------------------------------------------------------------------- computing


@dataclass
class ComputeStats:
    """What :func:`compute_measures` did: rows computed in this run by status, rows already there,
    and notes (stored rows not reused because they belong to other contents of the task)."""

    computed: Counter = field(default_factory=Counter)
    reused: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def total_computed(self) -> int:
        return sum(self.computed.values())


class _Runner:
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
                if row is None or (retry_errors and row.status != OK):
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
                     backend: str | None = None) -> ComputeStats:
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
    runner = _Runner(Path(log_path) if log_path else store.path.parent / WORKER_LOG, backend, progress)

    def put(task, model, measure, status, *, value=None, error=None, seconds=0.0):
        row = Row(task.name, model, measure.name, measure_key(measure), backend, status,
                  value=value, error=error, seconds=float(seconds), version=__version__,
                  contents=contents[(task.name, model)])
        store.put(row)
        stats.computed[status] += 1
        progress.row_stored(row)

    progress.start(len(jobs), sum(len(p) for _, _, p, _ in jobs))
    try:
        for task, model, pending, credit in jobs:
            _compute_model(runner, task, model, pending, credit, time_budget, put, progress)
        runner.close()
    finally:
        runner.discard()
        progress.close()
    return stats


def _compute_model(runner, task, model, pending, credit, time_budget, put, progress):
    """Compute `pending` measures on one model within its budget (see :func:`compute_measures`)."""
    from pgdl_measures.evaluate.worker import WorkerDied, WorkerTimeout

    worker = runner.get()  # a fresh worker's start-up does not count against the budget
    start = time.monotonic()
    deadline = start + time_budget - credit
    progress.model_started(task.name, model, len(pending), deadline)
    key = (task.name, str(task.input_dir), model)
    remaining = list(pending)
    while remaining:
        measure = remaining[0]
        if time.monotonic() >= deadline:
            for m in remaining:
                put(task, model, m, STATUS_EXCEEDED,
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
                        put(task, model, m, ERROR, error=answer["error"], seconds=0.0)
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
                    put(task, model, m, STATUS_EXCEEDED, seconds=now - began,
                        error=f"exceeded the time budget of {time_budget:g} s for {task.name}/{model} "
                              f"(stopped after {now - began:.1f} s; the model had {now - start + credit:.1f} s "
                              "in all)")
                else:
                    put(task, model, m, STATUS_EXCEEDED, error=f"the time budget of {time_budget:g} s for "
                                                        f"{task.name}/{model} ran out "
                                                        + ("before this measure started" if in_flight
                                                           else "while the model was loading"))
            break
        except WorkerDied as exc:
            runner.discard()
            if worker.model != key:  # it died loading the model: the model is at fault
                for m in remaining:
                    put(task, model, m, ERROR, error=f"loading {task.name}/{model} killed the worker: {exc}")
                break
            put(task, model, measure, ERROR, error=f"computing it killed the worker: {exc}",
                seconds=time.monotonic() - began)
            remaining.pop(0)  # the next measure starts a fresh worker (its start-up is not counted)
            continue
        if answer["ok"]:
            put(task, model, measure, OK, value=answer["value"], seconds=answer["seconds"])
        else:
            put(task, model, measure, ERROR, error=answer["error"], seconds=answer["seconds"])
        remaining.pop(0)
    progress.model_finished()


# ----------------------------------------------------------------------------- outputs


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
        failed = {m: r for m, r in by_model.items() if r is None or r.status == ERROR}
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
        prediction = {model: (EXCEEDED if row.status == STATUS_EXCEEDED else direction[measure] * row.value)
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
                           if row is not None and row.status == OK} for m in measures}
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
            row.append(" / ".join(f"{counts.get(s, 0)}" for s in (OK, ERROR, STATUS_EXCEEDED))
                       + (f" ({counts['missing']} missing)" if counts.get("missing") else ""))
        rows.append(row)
    return ["measure (ok / error / exceeded)"] + tasks, rows


# ----------------------------------------------------------------------------- the whole job


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
                         if row is not None and row.status != OK)
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
            if not counts.get(OK):
                shown = ", ".join(f"{n} {'exceeded the time budget' if status == STATUS_EXCEEDED else status}"
                                  for status, n in counts.items())
                reasons.append(f"{task.name}: no measure has a value on any model ({shown or 'no models'})")
        if not reasons:
            reasons = [note for note in self.ranking.notes if "not ranked" in note][:3] or \
                ["the rankers gave no score (see the notes)"]
        return "nothing ranked: " + "; ".join(reasons)


def evaluate(tasks: Sequence[Task | str | os.PathLike], measures: Sequence[str | Measure | type] = (),
             out_dir: str | os.PathLike = DEFAULT_OUT, *, time_budget: float = COMPETITION_TIME_BUDGET,
             models: Sequence[str] | None = None, retry_errors: bool = False, n_resamples: int = 1000,
             scheme: str = "halfsample", n_permutations: int = 1000,
             progress: Progress | None = None) -> Evaluation:
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

    Returns:
        An :class:`Evaluation`.

    Raises:
        PGDLError: bad arguments, an output folder that cannot be written (named), a worker
            that cannot start. Results stored before the error remain.
    """
    tasks = _as_tasks(tasks)
    measures = [_as_measure(m) for m in (measures or default_measure_names())]
    references = check_references(tasks)  # before computing: a malformed reference stops the run now
    out = prepare_out_dir(out_dir)
    backend = current_backend()
    with ResultStore.in_folder(out) as store:
        stats = compute_measures(tasks, measures, store, time_budget=time_budget, models=models,
                                 retry_errors=retry_errors, progress=progress, backend=backend)
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
