"""The files `pgdl run-submission` writes for a task: ``<task>.predict``, ``<task>.errors.json``
and ``<task>.run.json`` (what made them), and the lock that lets one run at a time write an
output folder."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable
from pathlib import Path

from pgdl_measures.competition.outcomes import ModelOutcome
from pgdl_measures.errors import PGDLError
from pgdl_measures.tasks import Task
from scoring.files import atomic_write, folder_lock, read_json
from scoring.rules import EXCEEDED, natural_key

LOCK_NAME = ".pgdl-run-submission.lock"


def output_lock(folder: Path, on_wait: Callable[[Path], None] | None = None):
    """Hold the exclusive lock of an output folder (:func:`scoring.files.folder_lock` on
    :data:`LOCK_NAME` in it); another holder is waited for (`on_wait` is told first).

    Raises:
        PGDLError: the lock file cannot be created.
    """
    return folder_lock(folder, LOCK_NAME, on_wait=on_wait or (lambda _folder: None))


class ModelContents:
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
        """The errors file while models are failed in it, else None."""
        return self.errors_path if self.errors else None
