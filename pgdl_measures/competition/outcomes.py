"""What `pgdl run-submission` found: one :class:`ModelOutcome` per model, gathered per task
(:class:`TaskOutcome`) into a :class:`SubmissionRun`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from scoring.rules import EXCEEDED, Status

#: failures before the first model, the same for every model of the run
SETUP_STAGES = ("start-up", "data", "import", "setup")


@dataclass
class ModelOutcome:
    """What one model gave: a value, ``"EXCEEDED"``, or an error.

    Attributes:
        model_id: ``model_<k>``.
        value: the float returned by ``complexity`` (finite: NaN and infinity are errors),
            :data:`EXCEEDED`, or None after an error.
        error: ``"ExceptionType: message"`` when the model failed.
        stage: where it failed. Before the first model, the same for all of them
            (:data:`SETUP_STAGES`): ``start-up`` (importing TensorFlow), ``data``, ``import``
            (of the submission), ``setup`` (start-up over its time limit, or the child died);
            for one model: ``load_model``, ``complexity``, ``crash`` (the child died inside it).
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
    def status(self) -> Status:
        """``ok``, ``exceeded`` or ``error``."""
        if self.error is not None:
            return Status.ERROR
        return Status.EXCEEDED if self.value == EXCEEDED else Status.OK


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
    """The result of :func:`~pgdl_measures.competition.run.run_submission`."""

    submission: Path
    keras: str
    tasks: list[TaskOutcome] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """How many models failed with an error."""
        return sum(o.error is not None for t in self.tasks for o in t.outcomes.values())
