"""Run a PGDL competition submission the way the competition's ingestion program did.

A *submission* is a folder, or a zip of one, holding ``complexity.py`` that defines
``complexity(model, dataset)`` (optionally a third parameter ``program_dir``, and any further
keyword parameters with defaults) and whatever helper files it reads. For each task under an
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

* every model runs in its own child process (``python -m pgdl_measures.competition._ingestion_child``,
  working folder a fresh temporary folder), so one model cannot disturb the next;
* the time budget is per model (default 300 s, the competition's ``max_time_per_model``) and is
  enforced: a model over budget is killed and recorded as ``"EXCEEDED"``, and the run goes on
  (the competition measured the budget of a whole task and gave up on the remaining models);
* a crash is recorded, not fatal: the model is left out of ``<task>.predict`` and listed, with
  the error and the tail of its stderr, in ``<task>.errors.json`` next to it;
* shards are read in natural sorted order and model ids in natural order.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pgdl_measures.errors import PGDLError
from pgdl_measures.tasks import Task, find_tasks, normalise_model_id

#: the competition's per-model time budget, in seconds (``max_time_per_model = 60 * 5``)
DEFAULT_TIME_BUDGET = 300.0
#: the competition's marker for a model that ran out of time
EXCEEDED = "EXCEEDED"
#: Keras implementations a submission can run on: legacy Keras 2 (tf_keras) or Keras 3
KERAS_MODES = ("2", "3")
#: seconds allowed, on top of the budget, for a child's start-up (importing TensorFlow, building
#: the dataset and importing the submission) before the model's clock starts
MIN_SETUP_SECONDS = 120.0
#: seconds a child may take to exit after its last model before it is killed
EXIT_GRACE_SECONDS = 10.0
#: failures before the first model, the same for every model of the run
SETUP_STAGES = ("start-up", "data", "import", "setup")
STDERR_TAIL_CHARS = 4000
STDERR_READ_BYTES = 1 << 20
_IGNORED_ENTRIES = ("__MACOSX",)


@dataclass
class ModelOutcome:
    """What one model gave: a value, ``"EXCEEDED"``, or an error.

    Attributes:
        model_id: ``model_<k>``.
        value: the float returned by ``complexity``, :data:`EXCEEDED`, or None after an error.
        error: ``"ExceptionType: message"`` when the model failed.
        stage: where it failed. Before the first model, the same for all of them:
            ``start-up`` (importing TensorFlow), ``data``, ``import`` (of the submission),
            ``setup`` (start-up over its time limit, or the child died); for one model:
            ``load_model``, ``complexity``, ``crash`` (the child died inside the model).
        stderr_tail: the end of what the child wrote to stderr for this model (the traceback)
            when it failed.
        seconds: time on the model's clock (loading it and ``complexity``), None when it
            never started.
    """

    model_id: str
    value: float | str | None = None
    error: str | None = None
    stage: str | None = None
    stderr_tail: str = ""
    seconds: float | None = None

    @property
    def traceback(self) -> str:
        """The last traceback in :attr:`stderr_tail` (all of it when there is none)."""
        start = self.stderr_tail.rfind("Traceback (most recent call last)")
        return self.stderr_tail[start:] if start >= 0 else self.stderr_tail

    @property
    def status(self) -> str:
        """``ok``, ``exceeded`` or ``error``."""
        if self.error is not None:
            return "error"
        return "exceeded" if self.value == EXCEEDED else "ok"


@dataclass
class TaskOutcome:
    """The outcomes of one task and the files written for it."""

    task: str
    outcomes: dict[str, ModelOutcome] = field(default_factory=dict)
    predict_path: Path | None = None
    errors_path: Path | None = None

    def predictions(self) -> dict[str, float | str]:
        """What goes into ``<task>.predict``: model id -> float or ``"EXCEEDED"`` (no errors)."""
        return {m: o.value for m, o in self.outcomes.items() if o.error is None}

    def errors(self) -> dict[str, dict]:
        """What goes into ``<task>.errors.json``: model id -> error, stage, stderr tail."""
        return {m: {"error": o.error, "stage": o.stage, "stderr_tail": o.stderr_tail}
                for m, o in self.outcomes.items() if o.error is not None}


@dataclass
class SubmissionRun:
    """The result of :func:`run_submission`."""

    submission: Path
    keras: str
    tasks: list[TaskOutcome] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """How many models failed with an error."""
        return sum(o.error is not None for t in self.tasks for o in t.outcomes.values())


# ------------------------------------------------------------------------------ the submission


def find_submission_root(folder: str | os.PathLike) -> Path:
    """The folder holding ``complexity.py``: `folder` itself or its single sub-folder.

    A zip made by compressing the files (top level) or the folder holding them (one level down)
    both work; ``__MACOSX`` and hidden entries are ignored.

    Raises:
        PGDLError: no ``complexity.py`` at either place.
    """
    folder = Path(folder)
    if (folder / "complexity.py").is_file():
        return folder
    subfolders = [p for p in folder.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and p.name not in _IGNORED_ENTRIES]
    if len(subfolders) == 1 and (subfolders[0] / "complexity.py").is_file():
        return subfolders[0]
    raise PGDLError("no complexity.py here (nor in a single sub-folder); a submission holds "
                    "complexity.py defining complexity(model, dataset)", folder)


def unpack_submission(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Safely unpack a submission zip into `dest` and return the folder with ``complexity.py``.

    Every entry is checked before anything is written: absolute paths, ``..`` components,
    symbolic links and other special files are refused
    (:func:`pgdl_measures.tasks.download.check_archive`).

    Raises:
        PGDLError: an unsafe or corrupt archive, or no ``complexity.py`` in it.
    """
    from pgdl_measures.tasks.download import check_archive

    archive, dest = Path(archive), Path(dest)
    entries = check_archive(archive)
    try:
        with zipfile.ZipFile(archive) as zf:
            for info, parts in entries:
                target = dest.joinpath(*parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise PGDLError(f"corrupt zip archive ({exc})", archive) from None
    try:
        return find_submission_root(dest)
    except PGDLError:
        raise PGDLError("the archive holds no complexity.py (at its top level or in its single "
                        "folder)", archive) from None


@contextlib.contextmanager
def prepared_submission(submission: str | os.PathLike) -> Iterator[Path]:
    """Yield the folder holding ``complexity.py`` for a submission folder or zip.

    A zip is unpacked into a temporary folder, removed on exit.

    Raises:
        PGDLError: the path does not exist, is neither a folder nor a zip, or holds no
            ``complexity.py``.
    """
    path = Path(submission)
    if path.is_dir():
        yield find_submission_root(path).resolve()
        return
    if not path.is_file():
        raise PGDLError("no such submission (expected a folder or a .zip holding complexity.py)",
                        path)
    if not zipfile.is_zipfile(path):
        raise PGDLError("not a zip archive nor a folder; a submission is a folder or a zip "
                        "holding complexity.py", path)
    with tempfile.TemporaryDirectory(prefix="pgdl-submission-") as tmp:
        yield unpack_submission(path, tmp).resolve()


# ------------------------------------------------------------------------------ one model


def child_environment(keras: str) -> dict[str, str]:
    """The environment of a child: Keras implementation selected, TensorFlow logs quiet.

    Raises:
        PGDLError: an unknown Keras mode, or legacy Keras 2 without ``tf_keras`` installed.
    """
    import importlib.util

    if keras not in KERAS_MODES:
        raise PGDLError(f"unknown Keras mode {keras!r}; choose 2 (legacy tf_keras) or 3")
    if keras == "2" and importlib.util.find_spec("tf_keras") is None:
        raise PGDLError("legacy Keras 2 needs the tf_keras package: pip install 'tf_keras~=2.21' "
                        "(or run with --keras 3)")
    env = dict(os.environ)
    env["TF_USE_LEGACY_KERAS"] = "1" if keras == "2" else "0"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("PYTHONUNBUFFERED", "1")
    if not _installed():  # running from a source tree: let the child import this package
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), root) if p)
    return env


def _installed() -> bool:
    from importlib import metadata

    try:
        metadata.distribution("pgdl-measures")
    except metadata.PackageNotFoundError:
        return False
    return True


def run_models(submission_dir: str | os.PathLike, models: list[tuple[str, Path]],
               train_dir: str | os.PathLike, *, keras: str = "2",
               time_budget: float = DEFAULT_TIME_BUDGET, setup_timeout: float | None = None,
               python: str | None = None,
               on_outcome: Callable[[ModelOutcome], None] | None = None) -> list[ModelOutcome]:
    """Run ``complexity`` of a submission on some models of one task, in one child process.

    The child imports TensorFlow, builds the dataset and imports the submission (the start-up,
    allowed `setup_timeout` seconds: default the budget, at least :data:`MIN_SETUP_SECONDS`),
    then handles the models in turn. Each model's clock covers loading it and ``complexity``;
    past `time_budget` seconds the child is killed with anything it started, the model is
    :data:`EXCEEDED`, and a fresh child takes the models left. A child that dies inside a model
    (a crash of TensorFlow, ``os._exit``) is recorded for that model and replaced the same way.
    A failure of the start-up (say the submission does not import) is the same for every
    model: it is recorded for all of them without another try.

    Args:
        submission_dir: the folder holding ``complexity.py`` (also passed as ``program_dir``).
        models: ``(model id, model folder)`` pairs, run in this order.
        train_dir: the task's ``dataset_1/train`` folder.
        keras: ``"2"`` (legacy tf_keras) or ``"3"``.
        time_budget: seconds per model.
        setup_timeout: seconds for a child's start-up.
        python: the Python interpreter (default: this one).
        on_outcome: called with each outcome as soon as it is known.

    Returns:
        One :class:`ModelOutcome` per model, in the order of `models`.

    Raises:
        PGDLError: an unknown Keras mode, or legacy Keras 2 without tf_keras.
    """
    env = child_environment(keras)
    setup_timeout = max(time_budget, MIN_SETUP_SECONDS) if setup_timeout is None else setup_timeout
    outcomes: list[ModelOutcome] = []

    def emit(outcome: ModelOutcome) -> None:
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    pending = [(model_id, Path(model_dir)) for model_id, model_dir in models]
    while pending:
        handled = _run_child(Path(submission_dir), pending, Path(train_dir), keras, env,
                             time_budget, setup_timeout, python, emit)
        pending = pending[handled:]
    return outcomes


def run_model(submission_dir: str | os.PathLike, model_dir: str | os.PathLike,
              train_dir: str | os.PathLike, *, model_id: str | None = None, keras: str = "2",
              time_budget: float = DEFAULT_TIME_BUDGET, setup_timeout: float | None = None,
              python: str | None = None) -> ModelOutcome:
    """Run ``complexity`` on one model in its own child process (see :func:`run_models`)."""
    model_id = model_id or Path(model_dir).name
    return run_models(submission_dir, [(model_id, Path(model_dir))], train_dir, keras=keras,
                      time_budget=time_budget, setup_timeout=setup_timeout, python=python)[0]


def _run_child(submission_dir: Path, models: list[tuple[str, Path]], train_dir: Path,
               keras: str, env: dict, time_budget: float, setup_timeout: float,
               python: str | None, emit: Callable[[ModelOutcome], None]) -> int:
    """Start one child on `models`; emit an outcome per model handled; return how many."""
    from pgdl_measures.competition._ingestion_child import MARKER

    with tempfile.TemporaryDirectory(prefix="pgdl-ingestion-") as work:
        work = Path(work)
        cwd = work / "cwd"
        cwd.mkdir()
        result_path = work / "results.jsonl"
        result_path.touch()
        stderr_path = work / "stderr.txt"
        ready_read, ready_write = os.pipe()
        request = {
            "submission_dir": os.fspath(submission_dir.resolve()),
            "train_dir": os.fspath(train_dir.resolve()),
            "models": [[model_id, os.fspath(model_dir.resolve())] for model_id, model_dir in models],
            "keras": keras,
            "result_path": os.fspath(result_path),
            "ready_fd": ready_write,
        }
        request_path = work / "request.json"
        request_path.write_text(json.dumps(request))
        handled = 0
        clock: float | None = None  # when the current model's clock started
        ended = None  # why the loop ended: "exit", "budget" or "setup"
        with open(work / "stdout.txt", "wb") as out, open(stderr_path, "wb") as err, \
                open(result_path) as results:
            try:
                proc = subprocess.Popen(
                    [python or sys.executable, "-m", "pgdl_measures.competition._ingestion_child",
                     os.fspath(request_path)],
                    cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                    pass_fds=(ready_write,), start_new_session=True)
            except BaseException:
                os.close(ready_read)
                raise
            finally:
                os.close(ready_write)
            try:
                deadline = time.monotonic() + setup_timeout
                while ended is None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        ended = "budget" if clock is not None else "setup"
                        break
                    readable, _, _ = select.select([ready_read], [], [], min(remaining, 1.0))
                    if not readable:
                        continue
                    data = os.read(ready_read, 64)
                    if not data:  # end of file: the child has exited
                        ended = "exit"
                    for byte in data:
                        if byte == ord("S"):
                            clock = time.monotonic()
                            deadline = clock + time_budget
                        elif byte == ord("D"):
                            seconds = None if clock is None else time.monotonic() - clock
                            clock = None
                            payload = json.loads(results.readline())
                            outcome = _outcome(payload, seconds, stderr_path, MARKER)
                            emit(outcome)
                            handled += 1
                            wait = EXIT_GRACE_SECONDS if handled == len(models) else setup_timeout
                            deadline = time.monotonic() + wait
                            if outcome.stage in SETUP_STAGES:
                                _emit_not_run(outcome, models[handled:], emit)
                                return len(models)
            finally:
                os.close(ready_read)
                _kill_group(proc)
        if handled >= len(models):
            return handled
        model_id = models[handled][0]
        if ended == "budget":
            emit(ModelOutcome(model_id, EXCEEDED, seconds=time.monotonic() - clock))
            return handled + 1
        if ended == "exit" and clock is not None:  # died inside a model
            emit(ModelOutcome(model_id, error=f"the child process died (exit status "
                                              f"{proc.returncode}) while running this model",
                              stage="crash", seconds=time.monotonic() - clock,
                              stderr_tail=_stderr_of(stderr_path, MARKER, model_id)))
            return handled + 1
        if ended == "setup":
            error = (f"TimeoutError: the child did not start within {setup_timeout:g} s "
                     f"(importing TensorFlow, the data or the submission)")
        else:
            error = (f"the child process died (exit status {proc.returncode}) before "
                     f"reporting a result")
        first = ModelOutcome(model_id, error=error, stage="setup",
                             stderr_tail=_stderr_of(stderr_path, MARKER, None))
        emit(first)
        _emit_not_run(first, models[handled + 1:], emit)
        return len(models)


def _outcome(payload: dict, seconds: float | None, stderr_path: Path, marker: str) -> ModelOutcome:
    model_id = payload["model_id"]
    if "error" in payload:
        setup = payload.get("stage") in SETUP_STAGES
        return ModelOutcome(model_id, error=payload["error"], stage=payload.get("stage"),
                            seconds=seconds,
                            stderr_tail=_stderr_of(stderr_path, marker, None if setup else model_id))
    return ModelOutcome(model_id, float(payload["value"]), seconds=seconds)


def _emit_not_run(failed: ModelOutcome, models: list[tuple[str, Path]],
                  emit: Callable[[ModelOutcome], None]) -> None:
    for model_id, _ in models:
        emit(ModelOutcome(model_id, error=failed.error, stage=failed.stage,
                          stderr_tail=f"(not run: the same failure for {failed.model_id})"))


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the child and anything it started (its own process group), then reap it.

    The group id is the child's pid (``start_new_session``). While anything the child started
    is alive, the kernel does not reuse that id, so this reaches only the child's own processes;
    once the group is empty the call finds nothing.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _stderr_of(path: Path, marker: str, model_id: str | None,
               limit: int = STDERR_TAIL_CHARS) -> str:
    """The end of what the child wrote to stderr for `model_id` (None: before any model)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - STDERR_READ_BYTES))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    if model_id is None:
        first = text.find(marker)
        part = text if first < 0 else text[:first]
    else:
        start = text.rfind(f"{marker}{model_id}\n")
        part = text if start < 0 else text[start + len(marker) + len(model_id) + 1:]
        following = part.find(marker)
        part = part if following < 0 else part[:following]
    return part[-limit:].strip("\n")


# ------------------------------------------------------------------------------ a whole run


def select_models(tasks: list[Task], models: list[str] | None) -> dict[str, list[str]]:
    """Task name -> the model ids to run (all, or those of `models` the task has).

    Raises:
        PGDLError: a requested model id is in none of the tasks.
    """
    selected = {}
    wanted = None if not models else [normalise_model_id(m) for m in models]
    for task in tasks:
        ids = task.model_ids()
        selected[task.name] = ids if wanted is None else [m for m in wanted if m in ids]
    if wanted is not None:
        missing = [m for m in wanted if not any(m in ids for ids in selected.values())]
        if missing:
            raise PGDLError(f"no model folder {', '.join(missing)} in any task "
                            f"({', '.join(t.name for t in tasks)})")
    return selected


def run_submission(submission: str | os.PathLike, input_dir: str | os.PathLike,
                   output_dir: str | os.PathLike, *, time_budget: float = DEFAULT_TIME_BUDGET,
                   keras: str = "2", models: list[str] | None = None, jobs: int = 1,
                   reuse_process: bool = False, setup_timeout: float | None = None,
                   on_outcome: Callable[[str, ModelOutcome], None] | None = None
                   ) -> SubmissionRun:
    """Run a submission on every task under `input_dir` and write ``<task>.predict`` files.

    For each task (sample layout, or ``input_data/<task>/`` of the public data) and each model,
    ``complexity(model, dataset)`` runs in a child process (see :func:`run_models`): one
    process per model by default; with `reuse_process`, one per task and job, handling its
    models in turn as the competition's single process did (TensorFlow starts once; a model
    over budget or crashing costs a restart). Writes ``OUTPUT_DIR/<task>.predict`` (model id
    -> float or ``"EXCEEDED"``, failed models left out) and, when a model failed,
    ``OUTPUT_DIR/<task>.errors.json`` (model id -> error, stage, stderr tail); a stale errors
    file from an earlier run is removed.

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
        setup_timeout: seconds for a child's start-up (see :func:`run_models`).
        on_outcome: called with ``(task name, outcome)`` as each model finishes.

    Returns:
        A :class:`SubmissionRun` with every outcome.

    Raises:
        PGDLError: a missing or invalid submission, input folder or model id, or legacy
            Keras 2 requested without tf_keras installed.
    """
    if time_budget <= 0:
        raise PGDLError(f"the time budget must be positive, got {time_budget}")
    if jobs < 1:
        raise PGDLError(f"--jobs must be at least 1, got {jobs}")
    child_environment(keras)  # fail early on a bad mode or a missing tf_keras
    tasks = find_tasks(input_dir)
    selected = select_models(tasks, models)
    for task in tasks:
        if selected[task.name] and not (task.dataset_dir / "train").is_dir():
            raise PGDLError("dataset_1/train is missing: a submission needs the task's training "
                            "data", task.dataset_dir)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    with prepared_submission(submission) as submission_dir:
        run = SubmissionRun(submission_dir, keras)
        setup_failure: list[ModelOutcome] = []
        lock = threading.Lock()

        def chunk(task: Task, ids: list[str]) -> list[ModelOutcome]:
            def emit(outcome: ModelOutcome) -> None:
                with lock:
                    if outcome.stage in SETUP_STAGES and not setup_failure:
                        setup_failure.append(outcome)
                    if on_outcome is not None:
                        on_outcome(task.name, outcome)

            with lock:
                failed = setup_failure[0] if setup_failure else None
            if failed is not None:
                outcomes = []
                _emit_not_run(failed, [(m, task.input_dir / m) for m in ids], outcomes.append)
                for outcome in outcomes:
                    emit(outcome)
                return outcomes
            return run_models(submission_dir, [(m, task.input_dir / m) for m in ids],
                              task.dataset_dir / "train", keras=keras, time_budget=time_budget,
                              setup_timeout=setup_timeout, on_outcome=emit)

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for task in tasks:
                ids = selected[task.name]
                if not ids:
                    continue
                if reuse_process:
                    chunks = [ids[i::jobs] for i in range(min(jobs, len(ids)))]
                else:
                    chunks = [[m] for m in ids]
                results: dict[str, ModelOutcome] = {}
                for future in [pool.submit(chunk, task, c) for c in chunks]:
                    results.update((o.model_id, o) for o in future.result())
                task_outcome = TaskOutcome(task.name, {m: results[m] for m in ids})
                _write_task(task_outcome, output_dir)
                run.tasks.append(task_outcome)
    return run


def _write_task(outcome: TaskOutcome, output_dir: Path) -> None:
    outcome.predict_path = output_dir / f"{outcome.task}.predict"
    outcome.predict_path.write_text(json.dumps(outcome.predictions(), indent=2) + "\n")
    errors_path = output_dir / f"{outcome.task}.errors.json"
    errors = outcome.errors()
    if errors:
        errors_path.write_text(json.dumps(errors, indent=2) + "\n")
        outcome.errors_path = errors_path
    elif errors_path.exists():
        errors_path.unlink()
