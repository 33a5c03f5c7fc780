"""Running a submission's ``complexity`` on the models of one task in ingestion child processes,
within a :class:`~scoring.rules.TimeBudget`.

Each child (``python -m pgdl_measures.competition._ingestion_child``, a
:class:`~pgdl_measures._subprocess.FramedChild` in a fresh temporary working folder) imports
TensorFlow, builds the dataset and imports the submission (its start-up, which the budget does
not count), then runs its models in turn. The child reports ``{"started": model_id}`` when a
model's clock starts and then the model's value or error. A model over its allowance is killed
with whatever it started and is ``EXCEEDED``; a model during which the child dies is a
``crash``; either way a fresh child takes the models left. A failure of the start-up (say the
submission does not import) is the same for every model: it is recorded for all of them
without another try.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pgdl_measures._subprocess import ChildCancelled, ChildDied, ChildTimeout, FramedChild, read_tail
from pgdl_measures.competition.outcomes import SETUP_STAGES, ModelOutcome
from pgdl_measures.errors import PGDLError
from scoring.rules import COMPETITION_TIME_BUDGET, EXCEEDED, TimeBudget

#: Keras implementations a submission can run on: legacy Keras 2 (tf_keras) or Keras 3
KERAS_MODES = ("2", "3")
#: seconds allowed, at least, for a child's start-up (importing TensorFlow, building the dataset
#: and importing the submission) before the first model's clock starts
MIN_SETUP_SECONDS = 120.0
#: seconds a child may take to exit after its last model before it is killed
EXIT_GRACE_SECONDS = 10.0
STDERR_TAIL_CHARS = 4000
STDERR_READ_BYTES = 1 << 20


def child_environment(keras: str) -> dict[str, str]:
    """The environment of a child: Keras implementation selected, TensorFlow logs quiet.

    Raises:
        PGDLError: an unknown Keras mode, or legacy Keras 2 without ``tf_keras`` installed.
    """
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
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), root) if p)
    return env


def _installed() -> bool:
    from importlib import metadata

    try:
        metadata.distribution("pgdl-measures")
    except metadata.PackageNotFoundError:
        return False
    return True


@dataclass(frozen=True)
class IngestionChild:
    """How to start the ingestion children of one task.

    Attributes:
        submission_dir: the folder holding ``complexity.py`` (also passed as ``program_dir``).
        train_dir: the task's ``dataset_1/train`` folder.
        keras: ``"2"`` (legacy tf_keras) or ``"3"``.
        env: the children's environment (:func:`child_environment`).
        setup_timeout: seconds for a child's start-up and for the pause between two models.
        python: the Python interpreter.
    """

    submission_dir: Path
    train_dir: Path
    keras: str
    env: dict[str, str]
    setup_timeout: float
    python: str = sys.executable

    @classmethod
    def create(cls, submission_dir: str | os.PathLike, train_dir: str | os.PathLike, *,
               keras: str = "2", time_budget: float = COMPETITION_TIME_BUDGET,
               setup_timeout: float | None = None, python: str | None = None) -> IngestionChild:
        """The children for a task; `setup_timeout` defaults to the budget, at least
        :data:`MIN_SETUP_SECONDS`.

        Raises:
            PGDLError: an unknown Keras mode, or legacy Keras 2 without tf_keras.
        """
        return cls(Path(submission_dir).resolve(), Path(train_dir).resolve(), keras,
                   child_environment(keras),
                   max(time_budget, MIN_SETUP_SECONDS) if setup_timeout is None else setup_timeout,
                   python or sys.executable)


def run_models(child: IngestionChild, models: list[tuple[str, Path]], budget: TimeBudget, *,
               on_outcome: Callable[[ModelOutcome], None] | None = None,
               cancel: threading.Event | None = None) -> list[ModelOutcome]:
    """Run ``complexity`` on `models` of one task, in as few children as their outcomes allow.

    Args:
        child: how to start a child.
        models: ``(model id, model folder)`` pairs, run in this order.
        budget: the task's :class:`~scoring.rules.TimeBudget` (shared by the calls of one task).
        on_outcome: called with each outcome as soon as it is known.
        cancel: when set, the child in flight is killed within a second and nothing more is run
            or reported.

    Returns:
        One :class:`ModelOutcome` per model reported, in the order of `models`.
    """
    outcomes: list[ModelOutcome] = []

    def emit(outcome: ModelOutcome) -> None:
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    pending = [(model_id, Path(model_dir)) for model_id, model_dir in models]
    while pending:
        if cancel is not None and cancel.is_set():
            break
        if budget.spent_up:
            for model_id, _ in pending:
                emit(ModelOutcome(model_id, EXCEEDED))
            break
        handled = _ChildRun(child, pending, budget, emit, cancel).run()
        pending = pending[handled:]
    return outcomes


def run_model(submission_dir: str | os.PathLike, model_dir: str | os.PathLike,
              train_dir: str | os.PathLike, *, model_id: str | None = None, keras: str = "2",
              time_budget: float = COMPETITION_TIME_BUDGET, setup_timeout: float | None = None,
              python: str | None = None) -> ModelOutcome:
    """Run ``complexity`` on one model in its own child process (see :func:`run_models`)."""
    child = IngestionChild.create(submission_dir, train_dir, keras=keras, time_budget=time_budget,
                                  setup_timeout=setup_timeout, python=python)
    model_id = model_id or Path(model_dir).name
    return run_models(child, [(model_id, Path(model_dir))], TimeBudget(time_budget))[0]


class _ChildRun:
    """One child on some models: emits an outcome per model it handles."""

    def __init__(self, child: IngestionChild, models: list[tuple[str, Path]], budget: TimeBudget,
                 emit: Callable[[ModelOutcome], None], cancel: threading.Event | None):
        self.child, self.models, self.budget = child, models, budget
        self.emit, self.cancel = emit, cancel
        self.handled = 0
        self.clock: float | None = None  # when the current model's clock started

    def run(self) -> int:
        """Start the child and follow it; return how many models it handled."""
        with tempfile.TemporaryDirectory(prefix="pgdl-ingestion-") as work:
            work = Path(work)
            (work / "cwd").mkdir()
            self.stderr_path = work / "stderr.txt"
            with open(work / "stdout.txt", "wb") as out:
                proc = FramedChild(
                    [self.child.python, "-m", "pgdl_measures.competition._ingestion_child"],
                    self.stderr_path, name="the child process", env=self.child.env,
                    cwd=work / "cwd", stdout=out)
                try:
                    return self._follow(proc)
                finally:
                    proc.kill()

    def _follow(self, proc: FramedChild) -> int:
        models = self.models
        try:
            proc.send({"submission_dir": os.fspath(self.child.submission_dir),
                       "train_dir": os.fspath(self.child.train_dir),
                       "models": [[m, os.fspath(Path(d).resolve())] for m, d in models],
                       "keras": self.child.keras})
            deadline = time.monotonic() + self.child.setup_timeout
            while self.handled < len(models):
                frame = proc.receive(deadline, self.cancel)
                if "started" in frame:
                    self.clock = time.monotonic()
                    deadline = self.budget.deadline(self.clock)
                    continue
                outcome = self._outcome(frame)
                self.handled += 1
                if outcome.stage in SETUP_STAGES:
                    emit_not_run(outcome, models[self.handled:], self.emit)
                    return len(models)
                if self.budget.spent_up and self.handled < len(models):
                    return self.handled  # the rest: EXCEEDED (see run_models)
                deadline = time.monotonic() + self.child.setup_timeout
            proc.close(EXIT_GRACE_SECONDS)
            return len(models)
        except ChildCancelled:
            return len(models)
        except ChildTimeout:
            if self.clock is not None:
                seconds = self._stop_clock()
                self.emit(ModelOutcome(models[self.handled][0], EXCEEDED, seconds=seconds))
                return self.handled + 1
            error = (f"TimeoutError: the child did not start within {self.child.setup_timeout:g} s "
                     f"(importing TensorFlow, the data or the submission)")
        except ChildDied as exc:
            if self.clock is not None:  # died inside a model
                model_id = models[self.handled][0]
                seconds = self._stop_clock()
                self.emit(ModelOutcome(model_id, error=f"the child process died (exit status "
                                                       f"{exc.returncode}) while running this model",
                                       stage="crash", seconds=seconds,
                                       stderr_tail=self._stderr_of(model_id)))
                return self.handled + 1
            error = (f"the child process died (exit status {exc.returncode}) before "
                     f"reporting a result")
        first = ModelOutcome(models[self.handled][0], error=error, stage="setup",
                             stderr_tail=self._stderr_of(None))
        self.emit(first)
        emit_not_run(first, models[self.handled + 1:], self.emit)
        return len(models)

    def _stop_clock(self) -> float | None:
        """The seconds on the current model's clock (None: none started), counted in the budget."""
        seconds = None if self.clock is None else time.monotonic() - self.clock
        self.clock = None
        self.budget.spend(seconds)
        return seconds

    def _outcome(self, frame: dict) -> ModelOutcome:
        """The outcome the child reported, emitted."""
        from pgdl_measures.competition._ingestion_child import as_float

        seconds = self._stop_clock()
        model_id = frame["model_id"]
        if "error" not in frame:
            try:  # the child checked it already; never let a NaN through to a .predict file
                as_float(frame["value"], model_id)
            except (TypeError, ValueError) as exc:
                frame = {"model_id": model_id, "error": f"{type(exc).__name__}: {exc}",
                         "stage": "complexity"}
        if "error" in frame:
            setup = frame.get("stage") in SETUP_STAGES
            outcome = ModelOutcome(model_id, error=frame["error"], stage=frame.get("stage"),
                                   seconds=seconds,
                                   stderr_tail=self._stderr_of(None if setup else model_id))
        else:
            outcome = ModelOutcome(model_id, float(frame["value"]), seconds=seconds)
        self.emit(outcome)
        return outcome

    def _stderr_of(self, model_id: str | None, limit: int = STDERR_TAIL_CHARS) -> str:
        """The end of what the child wrote to stderr for `model_id` (None: before any model)."""
        from pgdl_measures.competition._ingestion_child import MARKER

        text = read_tail(self.stderr_path, STDERR_READ_BYTES)
        if model_id is None:
            first = text.find(MARKER)
            part = text if first < 0 else text[:first]
        else:
            start = text.rfind(f"{MARKER}{model_id}\n")
            part = text if start < 0 else text[start + len(MARKER) + len(model_id) + 1:]
            following = part.find(MARKER)
            part = part if following < 0 else part[:following]
        return part[-limit:].strip("\n")


def emit_not_run(failed: ModelOutcome, models: list[tuple[str, Path]],
                 emit: Callable[[ModelOutcome], None]) -> None:
    """Emit `failed`'s setup failure for `models`, which were not run."""
    for model_id, _ in models:
        emit(ModelOutcome(model_id, error=failed.error, stage=failed.stage,
                          stderr_tail=f"(not run: the same failure for {failed.model_id})"))
