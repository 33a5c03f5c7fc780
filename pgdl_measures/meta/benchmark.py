"""A benchmark: several tasks' reference data and the measures' values on their models.

Read from the competition's formats, so any source works: the tasks' ``model_configs.json``
(found as ``pgdl score`` finds them) and a predictions folder as ``pgdl evaluate`` writes it,
``<measure>/<task>.predict`` (values already times the measure's direction: larger predicts a
larger gap).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pgdl_measures.errors import PGDLError
from pgdl_measures.registry import FITTED
from scoring.predictions import find_references, generalization_gap, load_prediction, load_reference
from scoring.rules import normalize_model_id


@dataclass
class BenchmarkTask:
    """One task of a benchmark.

    Attributes:
        name: the task's name.
        model_specs: its ``model_configs.json`` mapping.
        model_ids: the models, normalized ids in the reference's order.
        gaps: (n,) their generalization gaps.
        values: measure -> (n,) oriented values (NaN: no value, or ``EXCEEDED``).
    """

    name: str
    model_specs: dict[str, Any]
    model_ids: list[str]
    gaps: np.ndarray
    values: dict[str, np.ndarray] = field(default_factory=dict)

    def matrix(self, measures: Sequence[str]) -> np.ndarray:
        """(n, K) oriented values of `measures` (NaN where missing)."""
        return np.column_stack([self.values.get(m, np.full(len(self.model_ids), np.nan)) for m in measures])


def read_benchmark(reference_dir: str | os.PathLike, prediction_dirs: Sequence[str | os.PathLike], *,
                   measures: Sequence[str] | None = None) -> list[BenchmarkTask]:
    """The tasks under `reference_dir` with the values of every measure found in `prediction_dirs`.

    Args:
        reference_dir: a folder holding tasks' reference data (searched recursively).
        prediction_dirs: folders of ``<measure>/<task>.predict`` files; a later folder's file
            for the same measure and task replaces an earlier one's.
        measures: only these measures (default: every sub-folder holding a ``.predict`` of a task,
            but fitted measures' (:data:`~pgdl_measures.registry.FITTED`): a meta-measure is not
            a component of another).

    Returns:
        The tasks that have values of at least one measure, sorted by name.

    Raises:
        PGDLError: no task, a malformed file (named), a requested measure with no values.
    """
    references = find_references(reference_dir)
    if not references:
        raise PGDLError("no model_configs.json found (expected <task>/model_configs.json)", reference_dir)
    files: dict[tuple[str, str], Path] = {}
    for folder in map(Path, prediction_dirs):
        if not folder.is_dir():
            raise PGDLError("predictions folder not found", folder)
        for path in sorted(folder.glob("*/*.predict")):
            chosen = path.parent.name not in FITTED if measures is None else path.parent.name in measures
            if path.stem in references and chosen:
                files[(path.parent.name, path.stem)] = path
    found = sorted({m for m, _ in files})
    missing = [m for m in (measures or []) if m not in found]
    if missing:
        raise PGDLError(f"no .predict files of {', '.join(missing)} for the tasks under {reference_dir}",
                        prediction_dirs[0] if prediction_dirs else None)
    tasks = []
    for name, config in references.items():
        specs, _ = load_reference(config)
        ids = [normalize_model_id(mid) for mid in specs]
        gaps = np.array([generalization_gap(spec["metrics"]) for spec in specs.values()], dtype=np.float64)
        task = BenchmarkTask(name, specs, ids, gaps)
        index = {mid: i for i, mid in enumerate(ids)}
        for measure in (measures or found):
            path = files.get((measure, name))
            if path is None:
                continue
            column = np.full(len(ids), np.nan)
            for mid, value in load_prediction(path).items():
                i = index.get(normalize_model_id(mid))
                if i is not None and not isinstance(value, str):
                    column[i] = float(value)
            task.values[measure] = column
        if task.values:
            tasks.append(task)
    if not tasks:
        raise PGDLError(f"no .predict file of a task under {reference_dir}", prediction_dirs[0] if prediction_dirs else None)
    return tasks
