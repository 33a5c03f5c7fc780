"""The competition's scoring program: score a whole submission (a folder of ``.predict`` files)
against the reference data, task by task, with the competition's CMI.

Reading and checking the files is :mod:`scoring.predictions`; the CMI is :mod:`scoring.cmi`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scoring.cmi import conditional_mutual_information_grid
from scoring.errors import PGDLError
from scoring.predictions import (
    EXCEEDED,
    align_prediction,
    check_grid,
    find_tasks,
    load_prediction,
    load_reference,
)


@dataclass(frozen=True)
class SubmissionScore:
    """The result of scoring a submission.

    Attributes:
        tasks: task name -> the competition's score of the task (a fraction, not x100), or
            None for a task whose prediction holds ``"EXCEEDED"``.
        average: 100 times the mean of the task scores; 0 when any prediction holds
            ``"EXCEEDED"``.
        exceeded: the tasks whose prediction holds ``"EXCEEDED"``.
    """

    tasks: dict[str, float | None]
    average: float
    exceeded: tuple[str, ...] = ()
    inputs: dict[str, tuple[Mapping[str, Any], Mapping[str, Any]]] = field(default_factory=dict, repr=False,
                                                                            compare=False)
    """Task name -> (its ``model_configs.json`` mapping, its prediction) as read, for the tasks
    scored (the ones holding ``"EXCEEDED"`` left out): what further rankers work on."""


def score_submission(reference_dir: str | os.PathLike,
                     prediction_dir: str | os.PathLike) -> SubmissionScore:
    """Score the ``.predict`` files of a prediction folder as the competition did.

    For each task ``<name>`` (:func:`find_tasks`), read ``<name>/model_configs.json``, check
    its grid (:func:`check_grid`), read ``<prediction_dir>/<name>.predict`` and compute the
    competition's score :func:`scoring.cmi.conditional_mutual_information`. Then

        average = 100 * mean_t score_t,   or 0 if any prediction holds "EXCEEDED".

    Warnings of the score (empty cells, skipped pairs) are re-issued prefixed with the task.

    Args:
        reference_dir: the reference data folder.
        prediction_dir: the folder of ``<task>.predict`` files.

    Returns:
        A :class:`SubmissionScore`.

    Raises:
        PGDLError: any invalid reference or prediction file (the file is named).
    """
    pred_root = Path(prediction_dir)
    if not pred_root.is_dir():
        raise PGDLError("prediction folder not found", pred_root)
    scores: dict[str, float | None] = {}
    exceeded: list[str] = []
    inputs: dict[str, tuple[Mapping[str, Any], Mapping[str, Any]]] = {}
    for name, config_path in find_tasks(reference_dir).items():
        specs, grid = load_reference(config_path)
        check_grid(grid, config_path)
        predict_path = pred_root / f"{name}.predict"
        prediction = load_prediction(predict_path)
        if any(value == EXCEEDED for value in prediction.values()):
            exceeded.append(name)
            scores[name] = None
            continue
        values = align_prediction(prediction, grid, predict_path, strict_keys=True)
        inputs[name] = (specs, prediction)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            scores[name] = conditional_mutual_information_grid(values, grid)
        for item in caught:
            warnings.warn(f"task {name}: {item.message}", item.category, stacklevel=2)
    done = [s for s in scores.values() if s is not None]
    if exceeded or not done:
        average = 0.0
    else:
        average = sum(done) / float(len(done)) * 100.0
    return SubmissionScore(tasks=scores, average=average, exceeded=tuple(exceeded), inputs=inputs)
