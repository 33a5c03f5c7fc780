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
* the time budget is enforced: a model over budget is killed and recorded as ``"EXCEEDED"``
  (the competition could not interrupt a model). By default (``budget_rule="per-model"``) each
  model has its own budget (default 300 s, the competition's ``max_time_per_model``) and the run
  goes on; ``budget_rule="per-task"`` is the competition's rule: the models of a task share
  ``max_time_per_model * number of models`` seconds, and once they are spent the models left
  are ``"EXCEEDED"`` (a one-off warm-up is paid for by the models after it). The competition
  also kept the value of the model that crossed the line; here it is killed at the line. The
  start-up of a child (TensorFlow, the data, the submission's import) counts under neither rule;
* when a model's child ends, everything it started is killed too, also processes that left its
  process group with ``setsid`` (see :mod:`pgdl_measures._subprocess` for how, and the limit);
* results are written as each model finishes (atomically), and a rerun skips the models the
  ``.predict`` file already holds;
* a value that is NaN or infinite is an error (the competition wrote a bare ``NaN``, which is not
  JSON);
* a crash is recorded, not fatal: the model is left out of ``<task>.predict`` and listed, with
  the error and the tail of its stderr, in ``<task>.errors.json`` next to it;
* shards are read in natural sorted order and model ids in natural order.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
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

from pgdl_measures._subprocess import read_tail, spawn, wait_readable
from pgdl_measures.errors import PGDLError
from pgdl_measures.tasks import Task, find_tasks, select_models
from scoring.files import atomic_write, check_writable, read_json
from scoring.rules import COMPETITION_TIME_BUDGET, EXCEEDED, natural_key

#: Keras implementations a submission can run on: legacy Keras 2 (tf_keras) or Keras 3
KERAS_MODES = ("2", "3")
#: how the time budget is counted: each model alone (the default), or the models of a task
#: together, as the competition's ingestion program did (``len(models) * max_time_per_model``)
BUDGET_RULES = ("per-model", "per-task")
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
        value: the float returned by ``complexity`` (finite: NaN and infinity are errors),
            :data:`EXCEEDED`, or None after an error.
        error: ``"ExceptionType: message"`` when the model failed.
        stage: where it failed. Before the first model, the same for all of them:
            ``start-up`` (importing TensorFlow), ``data``, ``import`` (of the submission),
            ``setup`` (start-up over its time limit, or the child died); for one model:
            ``load_model``, ``complexity``, ``crash`` (the child died inside the model).
        stderr_tail: the end of what the child wrote to stderr for this model (the traceback)
            when it failed.
        seconds: time on the model's clock (loading it and ``complexity``), None when it
            never started (an error before it, or :data:`EXCEEDED` because the task's time
            was spent under the ``per-task`` budget rule).
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
    """The outcomes of one task's run and the files written for it.

    Attributes:
        task: the task's name.
        outcomes: model id -> outcome, for the models run this time.
        predict_path: the task's ``.predict`` file.
        errors_path: its errors file, when models are failed in it.
        skipped: models not run because the ``.predict`` file already held them.
        other_contents: models whose value in the ``.predict`` file was dropped because it was
            computed on other contents (a task of the same name with other files).
    """

    task: str
    outcomes: dict[str, ModelOutcome] = field(default_factory=dict)
    predict_path: Path | None = None
    errors_path: Path | None = None
    skipped: list[str] = field(default_factory=list)
    other_contents: list[str] = field(default_factory=list)

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
    symbolic links and other special files, over-long names, duplicate entries and a name that
    is both a file and a folder are refused (:func:`pgdl_measures.tasks.download.check_archive`).

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
    except OSError as exc:  # a path too long for the file system, a full disk
        raise PGDLError(f"cannot unpack entry {info.filename!r}: {exc.strerror or exc}",
                        archive) from None
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


class _Budget:
    """The time a model may take under a budget rule (thread-safe: children of a task share it).

    ``per-model``: every model gets `per_model` seconds. ``per-task``: the models of the task
    share ``per_model * n_models`` seconds, as in the competition; each model may take what the
    models before it left, and once it is spent the models not yet run are ``EXCEEDED``. Models
    running at the same time (``jobs > 1``) each get what was left when they started.
    """

    def __init__(self, rule: str, per_model: float, n_models: int):
        if rule not in BUDGET_RULES:
            raise PGDLError(f"unknown budget rule {rule!r}; choose one of {', '.join(BUDGET_RULES)}")
        self.rule = rule
        self.per_model = per_model
        self.total = per_model * n_models if rule == "per-task" else None
        self.spent = 0.0
        self._lock = threading.Lock()

    def allowance(self) -> float:
        """Seconds the model starting now may take."""
        if self.total is None:
            return self.per_model
        with self._lock:
            return max(0.0, self.total - self.spent)

    def spend(self, seconds: float | None) -> None:
        """Count a model's seconds (None: it never started)."""
        if seconds is not None:
            with self._lock:
                self.spent += seconds

    def spent_up(self) -> bool:
        """True under ``per-task`` once the task's time is used up."""
        if self.total is None:
            return False
        with self._lock:
            return self.spent >= self.total


def run_models(submission_dir: str | os.PathLike, models: list[tuple[str, Path]],
               train_dir: str | os.PathLike, *, keras: str = "2",
               time_budget: float = COMPETITION_TIME_BUDGET, budget_rule: str = "per-model",
               setup_timeout: float | None = None, python: str | None = None,
               on_outcome: Callable[[ModelOutcome], None] | None = None,
               _budget: _Budget | None = None,
               _cancel: threading.Event | None = None) -> list[ModelOutcome]:
    """Run ``complexity`` of a submission on some models of one task, in one child process.

    The child imports TensorFlow, builds the dataset and imports the submission (the start-up,
    allowed `setup_timeout` seconds: default the budget, at least :data:`MIN_SETUP_SECONDS`),
    then handles the models in turn. Each model's clock covers loading it and ``complexity``;
    past `time_budget` seconds the child is killed with anything it started, the model is
    :data:`EXCEEDED`, and a fresh child takes the models left (under `budget_rule`
    ``per-task`` the models share ``time_budget * len(models)`` seconds instead, and once they
    are spent the models left are :data:`EXCEEDED` without running). A child that dies inside a model
    (a crash of TensorFlow, ``os._exit``) is recorded for that model and replaced the same way.
    A failure of the start-up (say the submission does not import) is the same for every
    model: it is recorded for all of them without another try.

    Args:
        submission_dir: the folder holding ``complexity.py`` (also passed as ``program_dir``).
        models: ``(model id, model folder)`` pairs, run in this order.
        train_dir: the task's ``dataset_1/train`` folder.
        keras: ``"2"`` (legacy tf_keras) or ``"3"``.
        time_budget: seconds per model.
        budget_rule: ``"per-model"`` or ``"per-task"`` (see :data:`BUDGET_RULES`).
        setup_timeout: seconds for a child's start-up.
        python: the Python interpreter (default: this one).
        on_outcome: called with each outcome as soon as it is known.

    Returns:
        One :class:`ModelOutcome` per model, in the order of `models`.

    Raises:
        PGDLError: an unknown Keras mode, or legacy Keras 2 without tf_keras.
    """
    env = child_environment(keras)
    budget = _budget or _Budget(budget_rule, time_budget, len(models))
    setup_timeout = max(time_budget, MIN_SETUP_SECONDS) if setup_timeout is None else setup_timeout
    outcomes: list[ModelOutcome] = []

    def emit(outcome: ModelOutcome) -> None:
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    pending = [(model_id, Path(model_dir)) for model_id, model_dir in models]
    while pending:
        if _cancel is not None and _cancel.is_set():  # the run is stopping: no new child
            break
        if budget.spent_up():
            for model_id, _ in pending:
                emit(ModelOutcome(model_id, EXCEEDED))
            break
        handled = _run_child(Path(submission_dir), pending, Path(train_dir), keras, env,
                             budget, setup_timeout, python, emit, _cancel)
        pending = pending[handled:]
    return outcomes


def run_model(submission_dir: str | os.PathLike, model_dir: str | os.PathLike,
              train_dir: str | os.PathLike, *, model_id: str | None = None, keras: str = "2",
              time_budget: float = COMPETITION_TIME_BUDGET, setup_timeout: float | None = None,
              python: str | None = None) -> ModelOutcome:
    """Run ``complexity`` on one model in its own child process (see :func:`run_models`)."""
    model_id = model_id or Path(model_dir).name
    return run_models(submission_dir, [(model_id, Path(model_dir))], train_dir, keras=keras,
                      time_budget=time_budget, setup_timeout=setup_timeout, python=python)[0]


def _run_child(submission_dir: Path, models: list[tuple[str, Path]], train_dir: Path,
               keras: str, env: dict, budget: _Budget, setup_timeout: float,
               python: str | None, emit: Callable[[ModelOutcome], None],
               cancel: threading.Event | None = None) -> int:
    """Start one child on `models`; emit an outcome per model handled; return how many.

    When `cancel` is set, the child is killed within a second and nothing more is emitted.
    """
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
        ended = None  # why the loop ended: "exit", "budget", "setup" or "cancelled"
        with open(work / "stdout.txt", "wb") as out, open(stderr_path, "wb") as err, \
                open(result_path) as results:
            try:
                child = spawn(
                    [python or sys.executable, "-m", "pgdl_measures.competition._ingestion_child",
                     os.fspath(request_path)],
                    cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                    pass_fds=(ready_write,))
            except BaseException:
                os.close(ready_read)
                raise
            finally:
                os.close(ready_write)
            try:
                deadline = time.monotonic() + setup_timeout
                while ended is None:
                    if cancel is not None and cancel.is_set():
                        ended = "cancelled"
                        break
                    if deadline - time.monotonic() <= 0:
                        ended = "budget" if clock is not None else "setup"
                        break
                    if not wait_readable(ready_read, deadline, step=1.0):
                        continue
                    data = os.read(ready_read, 64)
                    if not data:  # end of file: the child has exited
                        ended = "exit"
                    for byte in data:
                        if byte == ord("S"):
                            clock = time.monotonic()
                            deadline = clock + budget.allowance()
                        elif byte == ord("D"):
                            seconds = None if clock is None else time.monotonic() - clock
                            clock = None
                            payload = json.loads(results.readline())
                            outcome = _outcome(payload, seconds, stderr_path, MARKER)
                            budget.spend(seconds)
                            emit(outcome)
                            handled += 1
                            wait = EXIT_GRACE_SECONDS if handled == len(models) else setup_timeout
                            deadline = time.monotonic() + wait
                            if outcome.stage in SETUP_STAGES:
                                _emit_not_run(outcome, models[handled:], emit)
                                return len(models)
                            if budget.spent_up() and handled < len(models):
                                return handled  # the rest: EXCEEDED (see run_models)
            finally:
                os.close(ready_read)
                child.kill()
        if handled >= len(models) or ended == "cancelled":
            return len(models)
        model_id = models[handled][0]
        if ended == "budget":
            seconds = time.monotonic() - clock
            budget.spend(seconds)
            emit(ModelOutcome(model_id, EXCEEDED, seconds=seconds))
            return handled + 1
        if ended == "exit" and clock is not None:  # died inside a model
            seconds = time.monotonic() - clock
            budget.spend(seconds)
            emit(ModelOutcome(model_id, error=f"the child process died (exit status "
                                              f"{child.returncode}) while running this model",
                              stage="crash", seconds=seconds,
                              stderr_tail=_stderr_of(stderr_path, MARKER, model_id)))
            return handled + 1
        if ended == "setup":
            error = (f"TimeoutError: the child did not start within {setup_timeout:g} s "
                     f"(importing TensorFlow, the data or the submission)")
        else:
            error = (f"the child process died (exit status {child.returncode}) before "
                     f"reporting a result")
        first = ModelOutcome(model_id, error=error, stage="setup",
                             stderr_tail=_stderr_of(stderr_path, MARKER, None))
        emit(first)
        _emit_not_run(first, models[handled + 1:], emit)
        return len(models)


def _outcome(payload: dict, seconds: float | None, stderr_path: Path, marker: str) -> ModelOutcome:
    from pgdl_measures.competition._ingestion_child import as_float

    model_id = payload["model_id"]
    if "error" not in payload:
        try:  # the child checked it already; never let a NaN through to a .predict file
            as_float(payload["value"], model_id)
        except (TypeError, ValueError) as exc:
            payload = {"model_id": model_id, "error": f"{type(exc).__name__}: {exc}",
                       "stage": "complexity"}
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


def _stderr_of(path: Path, marker: str, model_id: str | None,
               limit: int = STDERR_TAIL_CHARS) -> str:
    """The end of what the child wrote to stderr for `model_id` (None: before any model)."""
    text = read_tail(path, STDERR_READ_BYTES)
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


def run_submission(submission: str | os.PathLike, input_dir: str | os.PathLike,
                   output_dir: str | os.PathLike, *, time_budget: float = COMPETITION_TIME_BUDGET,
                   keras: str = "2", models: list[str] | None = None, jobs: int = 1,
                   reuse_process: bool = False, setup_timeout: float | None = None,
                   budget_rule: str = "per-model", restart: bool = False,
                   on_outcome: Callable[[str, ModelOutcome], None] | None = None,
                   on_wait: Callable[[Path], None] | None = None) -> SubmissionRun:
    """Run a submission on every task under `input_dir` and write ``<task>.predict`` files.

    For each task (sample layout, or ``input_data/<task>/`` of the public data) and each model,
    ``complexity(model, dataset)`` runs in a child process (see :func:`run_models`): one
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
    :class:`TaskFiles`).

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
        setup_timeout: seconds for a child's start-up (see :func:`run_models`).
        budget_rule: ``"per-model"`` (each model gets `time_budget`) or ``"per-task"`` (the
            models of a task run share `time_budget` times their number, as in the competition).
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
    _Budget(budget_rule, time_budget, 0)  # fail early on an unknown rule
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
                                      contents=_ModelContents(task))
                 for task in tasks if selected[task.name]}
        run = SubmissionRun(submission_dir, keras)
        setup_failure: list[ModelOutcome] = []
        lock = threading.Lock()
        stop = threading.Event()  # set when the run stops early (an unwritable output, Ctrl-C)

        def chunk(task: Task, ids: list[str], budget: _Budget,
                  task_outcome: TaskOutcome) -> None:
            def emit(outcome: ModelOutcome) -> None:
                with lock:
                    if outcome.stage in SETUP_STAGES and not setup_failure:
                        setup_failure.append(outcome)
                    task_outcome.outcomes[outcome.model_id] = outcome
                    try:
                        files[task.name].record(outcome)
                    except PGDLError:
                        stop.set()
                        raise
                    if on_outcome is not None:
                        on_outcome(task.name, outcome)

            if stop.is_set():
                return
            with lock:
                failed = setup_failure[0] if setup_failure else None
            if failed is not None:
                _emit_not_run(failed, [(m, task.input_dir / m) for m in ids], emit)
                return
            run_models(submission_dir, [(m, task.input_dir / m) for m in ids],
                       task.dataset_dir / "train", keras=keras, time_budget=time_budget,
                       setup_timeout=setup_timeout, on_outcome=emit, _budget=budget,
                       _cancel=stop)

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for task in tasks:
                if not selected[task.name]:
                    continue
                task_files = files[task.name]
                ids = [m for m in selected[task.name] if m not in task_files.done()]
                task_outcome = TaskOutcome(task.name, predict_path=task_files.predict_path,
                                           skipped=[m for m in selected[task.name]
                                                    if m not in ids],
                                           other_contents=list(task_files.other_contents))
                run.tasks.append(task_outcome)
                if not ids:
                    continue
                budget = _Budget(budget_rule, time_budget, len(ids))
                if reuse_process:
                    chunks = [ids[i::jobs] for i in range(min(jobs, len(ids)))]
                else:
                    chunks = [[m] for m in ids]
                futures = [pool.submit(chunk, task, c, budget, task_outcome) for c in chunks]
                try:
                    for future in futures:
                        future.result()
                except BaseException:
                    stop.set()
                    pool.shutdown(cancel_futures=True)
                    raise
                task_outcome.outcomes = {m: task_outcome.outcomes[m] for m in ids}
                task_outcome.errors_path = task_files.errors_path_if_any()
    return run


LOCK_NAME = ".pgdl-run-submission.lock"


def output_lock(folder: Path, on_wait: Callable[[Path], None] | None = None):
    """Hold the exclusive lock of an output folder (:func:`scoring.files.folder_lock` on
    :data:`LOCK_NAME` in it); another holder is waited for (`on_wait` is told first).

    Raises:
        PGDLError: the lock file cannot be created.
    """
    from scoring.files import folder_lock

    return folder_lock(folder, LOCK_NAME, on_wait=on_wait or (lambda _folder: None))


class _ModelContents:
    """A task's model digests (:meth:`Task.model_digest`), computed when first asked for."""

    def __init__(self, task: Task):
        self.task = task
        self._dataset: str | None = None
        self._digests: dict[str, str | None] = {}

    def __call__(self, model_id: str) -> str | None:
        """The digest of `model_id`'s contents; None when the task has no such model."""
        if model_id not in self._digests:
            if not (self.task.input_dir / model_id).is_dir():
                self._digests[model_id] = None
            else:
                if self._dataset is None:
                    self._dataset = self.task.dataset_digest()
                self._digests[model_id] = self.task.model_digest(model_id, dataset=self._dataset)
        return self._digests[model_id]



def submission_digest(folder: str | os.PathLike) -> str:
    """SHA-256 over the relative paths and bytes of a submission's files (``__pycache__`` and
    hidden entries left out): the same submission, as a folder or a zip, has the same digest."""
    import hashlib

    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(p == "__pycache__" or p.startswith(".") for p in rel.parts) or not path.is_file():
            continue
        digest.update(rel.as_posix().encode("utf-8", "surrogateescape") + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


class TaskFiles:
    """The ``.predict`` and ``.errors.json`` files of one task, rewritten as outcomes come.

    Beside them, ``<task>.run.json`` records what made them (`identity`: the submission's
    digest, the Keras mode, the time budget and its rule; and ``models``: each model's contents
    digest), so that a rerun continues only the same run: values of another submission or
    Keras mode are never mixed in, models that were ``"EXCEEDED"`` under another budget or
    rule run again, and so do models whose files or task data differ from those the value was
    computed on (a task of the same name with other contents: :attr:`other_contents`).

    Args:
        task: the task's name.
        output_dir: the folder holding the files.
        restart: start afresh instead of continuing what the files hold.
        identity: what makes this run (see above); None: continue any files (for tests).
        contents: model id -> its contents digest (None: not in the task); None: values are
            not keyed on contents (for tests).

    Raises:
        PGDLError: (when continuing) an existing ``.predict`` that is not a JSON object of
            model id -> number or ``"EXCEEDED"``, or that another submission or Keras mode
            wrote, or that has no ``<task>.run.json`` beside it.
    """

    def __init__(self, task: str, output_dir: Path, *, restart: bool = False,
                 identity: dict | None = None,
                 contents: Callable[[str], str | None] | None = None):
        self.predict_path = output_dir / f"{task}.predict"
        self.errors_path = output_dir / f"{task}.errors.json"
        self.run_path = output_dir / f"{task}.run.json"
        self.identity = identity
        self.contents = contents
        self.predictions: dict[str, float | str] = {}
        self.digests: dict[str, str] = {}
        self.other_contents: list[str] = []
        self.errors: dict[str, dict] = {}
        if restart:
            return
        if self.predict_path.exists():
            self.predictions = self._read_predictions()
            if identity is not None:
                self._check_identity()
        if self.errors_path.exists():
            with contextlib.suppress(PGDLError):
                errors = read_json(self.errors_path, "the errors file")
                if isinstance(errors, dict):
                    self.errors = {m: e for m, e in errors.items() if m not in self.predictions}

    def _read_predictions(self) -> dict[str, float | str]:
        data = read_json(self.predict_path, "the .predict file")
        fix = "; remove it or pass --restart to run every model again"
        if not isinstance(data, dict):
            raise PGDLError(f"cannot continue it: not a JSON object{fix}", self.predict_path)
        for model_id, value in data.items():
            if value != EXCEEDED and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                raise PGDLError(f"cannot continue it: {model_id} has {value!r}, not a number or "
                                f"{EXCEEDED!r}{fix}", self.predict_path)
        return dict(data)

    def _check_identity(self) -> None:
        fix = "; pass --restart to replace its values, or choose another output folder"
        if not self.run_path.exists():
            raise PGDLError(f"cannot continue it: no {self.run_path.name} beside it says which "
                            f"submission wrote it{fix}", self.predict_path)
        before = read_json(self.run_path, "the run record")
        if not isinstance(before, dict):
            raise PGDLError(f"not a JSON object{fix}", self.run_path)
        for key, what in (("submission_sha256", "another submission"),
                          ("keras", f"Keras {before.get('keras')!r}")):
            if before.get(key) != self.identity[key]:
                raise PGDLError(f"cannot continue it: its values come from {what}{fix}",
                                self.predict_path)
        if any(before.get(k) != self.identity[k] for k in ("time_budget", "budget_rule")):
            self.predictions = {m: v for m, v in self.predictions.items() if v != EXCEEDED}
        if self.contents is not None:
            recorded = before.get("models") if isinstance(before.get("models"), dict) else {}
            self.digests = {m: recorded[m] for m in self.predictions
                            if recorded.get(m) is not None and recorded.get(m) == self.contents(m)}
            self.other_contents = [m for m in self.predictions if m not in self.digests]
            self.predictions = {m: v for m, v in self.predictions.items() if m in self.digests}

    def done(self) -> set[str]:
        """The models the ``.predict`` file already holds (a value or ``"EXCEEDED"``)."""
        return set(self.predictions)

    def record(self, outcome: ModelOutcome) -> None:
        """Add one outcome and rewrite both files.

        Raises:
            PGDLError: a file cannot be written (the earlier version stays whole).
        """
        if outcome.error is None:
            self.predictions[outcome.model_id] = outcome.value
            self.errors.pop(outcome.model_id, None)
            if self.contents is not None:
                self.digests[outcome.model_id] = self.contents(outcome.model_id)
        else:
            self.predictions.pop(outcome.model_id, None)
            self.digests.pop(outcome.model_id, None)
            self.errors[outcome.model_id] = {"error": outcome.error, "stage": outcome.stage,
                                             "stderr_tail": outcome.stderr_tail}
        self.write()

    def write(self) -> None:
        """Write the ``.predict`` file, and the errors file while there are errors.

        Raises:
            PGDLError: a file cannot be written (the earlier version stays whole).
        """
        def ordered(d: dict) -> dict:
            return {k: d[k] for k in sorted(d, key=natural_key)}

        path = self.predict_path
        try:
            if self.identity is not None:
                path = self.run_path
                record = dict(self.identity)
                if self.contents is not None:
                    record["models"] = ordered(self.digests)
                atomic_write(path, json.dumps(record, indent=2) + "\n")
                path = self.predict_path
            atomic_write(path, json.dumps(ordered(self.predictions), indent=2,
                                          allow_nan=False) + "\n")
            path = self.errors_path
            if self.errors:
                atomic_write(path, json.dumps(ordered(self.errors), indent=2) + "\n")
            else:
                path.unlink(missing_ok=True)
        except OSError as exc:
            raise PGDLError(f"cannot write the results: {exc.strerror or exc}; the models "
                            f"written before are kept, run again to continue", path) from None

    def errors_path_if_any(self) -> Path | None:
        return self.errors_path if self.errors else None
