"""The competition's small rules that every layer shares, each defined once.

* :func:`normalize_model_id`: how the competition's scoring program keyed a model
  (``"3"`` -> ``"model_3"``), and to which ids it applied that rule (the reference's only);
* :func:`natural_key`: the order of model folders, shards and task folders (``model_2`` before
  ``model_10``);
* :data:`EXCEEDED`: the value a ``.predict`` holds for a model that ran out of time;
* :data:`COMPETITION_TIME_BUDGET`: the seconds the competition's ingestion allowed per model;
* :class:`TimeBudget`: how a run counts those seconds (:data:`BUDGET_RULES`);
* :class:`Status`: what became of a model or a result (``ok``, ``error``, ``exceeded``).

Nothing here imports anything beyond the standard library, so the lowest module can use it.
"""

from __future__ import annotations

import re
import threading
from enum import StrEnum
from typing import Any

from scoring.errors import PGDLError

#: The value the competition's ingestion program wrote in a ``.predict`` for a model whose
#: submission ran out of time (``"EXCEEDED"``, upper case). Not to be confused with the status
#: ``Status.EXCEEDED`` ("exceeded") of a model or a row of ``pgdl evaluate``'s results store.
EXCEEDED = "EXCEEDED"

#: The competition's time budget per model, in seconds (its ingestion's ``max_time_per_model =
#: 60 * 5``): the default budget of ``pgdl evaluate`` and ``pgdl run-submission``.
COMPETITION_TIME_BUDGET = 300.0

#: How a run counts the time budget: each model alone, or the models of a task together as the
#: competition's ingestion program did (see :class:`TimeBudget`).
BUDGET_RULES = ("per-model", "per-task")


class Status(StrEnum):
    """What became of a model (``pgdl run-submission``) or a result (``pgdl evaluate``'s store).

    ``EXCEEDED`` (``"exceeded"``) is the status; a ``.predict`` file shows such a model as the
    competition's marker :data:`EXCEEDED` (``"EXCEEDED"``).
    """

    OK = "ok"
    ERROR = "error"
    EXCEEDED = "exceeded"


class TimeBudget:
    """The seconds a model may take, under one of the :data:`BUDGET_RULES`.

    A model's clock covers loading it and computing on it; starting a child process (importing
    Keras or TensorFlow, the data, a submission) is not counted.

    * ``per-model``: every model gets `per_model` seconds, less its `credit` (the seconds an
      earlier run already spent on it, e.g. results ``pgdl evaluate`` reuses).
    * ``per-task``: the competition's rule. The `n_models` models of a task share
      ``per_model * n_models`` seconds: each may take what the models before it left (a one-off
      warm-up is paid for by the models after it) and once the time is spent, the models not
      yet run are ``EXCEEDED``. Models running at once each get what was left when they started.

    The competition kept the value of the model that crossed the line; the toolkit stops a model
    at its line. Thread-safe: the children of one task share a budget.

    Args:
        per_model: seconds per model (the competition's ``max_time_per_model``).
        rule: one of :data:`BUDGET_RULES`.
        n_models: how many models share a ``per-task`` budget.

    Raises:
        PGDLError: an unknown rule.
    """

    def __init__(self, per_model: float = COMPETITION_TIME_BUDGET, rule: str = "per-model",
                 n_models: int = 1):
        if rule not in BUDGET_RULES:
            raise PGDLError(f"unknown budget rule {rule!r}; choose one of {', '.join(BUDGET_RULES)}")
        self.per_model = per_model
        self.rule = rule
        self.total = per_model * n_models if rule == "per-task" else None
        self.spent = 0.0
        self._lock = threading.Lock()

    def allowance(self, credit: float = 0.0) -> float:
        """Seconds the model starting now may take, `credit` seconds of it already spent."""
        if self.total is None:
            return max(0.0, self.per_model - credit)
        with self._lock:
            return max(0.0, self.total - self.spent - credit)

    def deadline(self, start: float, credit: float = 0.0) -> float:
        """When (on the clock of `start`, e.g. ``time.monotonic()``) the model starting at
        `start` must stop."""
        return start + self.allowance(credit)

    def spend(self, seconds: float | None) -> None:
        """Count a model's seconds (None: it never started)."""
        if seconds is not None:
            with self._lock:
                self.spent += seconds

    @property
    def spent_up(self) -> bool:
        """True under ``per-task`` once the task's time is used up."""
        if self.total is None:
            return False
        with self._lock:
            return self.spent >= self.total


_DIGITS = re.compile(r"(\d+)")


def normalize_model_id(model_id: Any) -> str:
    """The model id as the competition keyed it: ``model_<id>`` unless it already says "model".

    The competition's scoring program tested ``'model' not in mid`` (a substring test, not a
    prefix test), so ``"3"`` becomes ``"model_3"`` and ``"model_3"`` or ``"mymodel"`` stay as
    they are. It applied the rule to the ids of the reference (``model_configs.json``) only and
    looked the prediction up under the normalized id, so a ``.predict`` keyed ``"3"`` matched
    nothing there (the task scored nan): :func:`scoring.predictions.align_prediction` refuses
    such keys when it reads a file (``strict_keys``). The toolkit applies the same rule to model
    ids a user types (``--models 3``) and to the folders of a task (``model_<k>``, unchanged).

    Args:
        model_id: a key of ``model_configs.json``, of a ``.predict`` file, or a typed id.

    Returns:
        The normalized id (a string).
    """
    text = str(model_id)
    return text if "model" in text else f"model_{text}"


def natural_key(text: Any) -> list:
    """Sort key that orders ``model_2`` before ``model_10`` (and ``shard_2`` before ``shard_10``).

    Digit runs compare as numbers, the rest as text; pass a file's name, not its path.
    """
    return [int(part) if part.isdigit() else part for part in _DIGITS.split(str(text))]
