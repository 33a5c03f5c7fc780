"""``pgdl evaluate``'s progress display (rich); the library reports progress to plain callbacks.

Each library entry point that runs long takes a progress object whose base class ignores every
call: :class:`pgdl_measures.evaluate.pipeline.Progress` (``pgdl evaluate``, drawn here),
:class:`pgdl_measures.zoo.ZooProgress` (``pgdl zoo``, drawn in :mod:`pgdl_measures.cli.zoo`) and
:class:`pgdl_measures.tasks.download.TransferProgress` (``pgdl data download``, drawn in
:mod:`pgdl_measures.cli.data`). Only the CLI draws; the library never imports rich for progress.

Every text that comes from outside (task, model and file names, error messages) is shown as
plain text, never read as rich markup.
"""

from __future__ import annotations

import time
from collections import Counter

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import (
    Progress as _RichProgress,
)
from rich.text import Text

from pgdl_measures.evaluate.pipeline import Progress

__all__ = ["EvaluateProgress", "plain_description"]


def plain_description() -> TextColumn:
    """The task's description as plain text (``markup=False``: a name may contain ``[/x]``)."""
    return TextColumn("{task.description}", markup=False)


class _BudgetColumn(ProgressColumn):
    """The time left in the model's budget (the task field ``deadline``, ``time.monotonic()``)."""

    def render(self, task):
        deadline = task.fields.get("deadline")
        if deadline is None:
            return Text("")
        return Text(f"budget left {max(0.0, deadline - time.monotonic()):5.0f} s", style="cyan")


class EvaluateProgress(Progress):
    """``pgdl evaluate``'s display: models, measures (with time left overall) and the model's budget."""

    def __init__(self, console: Console | None = None):
        self._progress = _RichProgress(plain_description(), BarColumn(), MofNCompleteColumn(),
                                       TimeElapsedColumn(), TimeRemainingColumn(), _BudgetColumn(),
                                       console=console, transient=False)
        self._models = self._rows = None
        self._counts: Counter = Counter()
        self._current = ""

    def start(self, models, rows):
        self._progress.start()
        self._models = self._progress.add_task("models", total=models, deadline=None)
        self._rows = self._progress.add_task("measures", total=rows, deadline=None)

    def worker_starting(self):
        self._progress.update(self._rows, description="measures (starting a worker process)")

    def model_started(self, task, model, measures, deadline):
        self._current = f"{task}/{model}"
        self._progress.update(self._models, description=f"models ({self._current})")
        self._progress.update(self._rows, deadline=deadline)

    def measure_started(self, measure):
        self._progress.update(self._rows, description=f"measures ({measure})")

    def row_stored(self, row):
        self._counts[row.status] += 1
        self._progress.advance(self._rows)
        if row.status != "ok":
            first_line = (row.error or "").splitlines()[0] if row.error else ""
            line = Text(str(row.status), style="yellow")
            line.append(f" {row.task}/{row.model} {row.measure}: {first_line[:200]}")
            self._progress.console.print(line, highlight=False)

    def model_finished(self):
        self._progress.advance(self._models)
        self._progress.update(self._rows, deadline=None)

    def close(self):
        self._progress.stop()

    def stage(self, text):
        self._progress.console.print(Text(text, style="dim"), highlight=False)
