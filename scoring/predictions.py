"""Reading and validating what the competition's scoring program read.

* ``model_configs.json`` (the reference data of a task): ``{model id: {"hparams": {name:
  {"possible_values": [...], "current_value": v}}, "metrics": {"train_acc": a, "test_acc": b}}}``;
  :func:`scoring_grid` turns it into a :class:`ScoringGrid` (arrays the rankers work on) and
  :func:`check_grid` checks, as the competition did, that the grid of hyper-parameter values is
  complete (every combination of possible values present) and unique (no combination twice).
* ``<task>.predict`` (a submission's output): a JSON object ``{model id: float}`` where a value
  may be the string ``"EXCEEDED"`` when the submission ran out of time (:func:`load_prediction`).
* :func:`score_submission` scores every task under a reference folder against the ``.predict``
  files of a prediction folder, as the competition's ``score.py`` did.

Every error a user can cause raises :class:`scoring.errors.PGDLError` naming the file.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scoring.errors import PGDLError
from scoring.files import read_json
from scoring.rules import EXCEEDED, normalize_model_id
from scoring.values import is_finite, is_finite_number, is_number, short_repr

_IGNORED_NAMES = ("__MACOSX", ".DS_Store")  # the competition's name_filter


def _short_list(items: Sequence[Any], limit: int = 5) -> str:
    items = list(items)
    shown = ", ".join(str(item) for item in items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def _is_scalar(value: Any) -> bool:
    """A JSON number, string, boolean or null (what a hyper-parameter value may be)."""
    return value is None or isinstance(value, (str, int, float, bool))


def _kind(value: Any) -> str:
    return {list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _hparam_index(possible: list, value: Any, name: str) -> int:
    """Index of ``value`` in ``possible`` by equality (``list.index``), -1 when absent.

    The competition's validity check converted the value of a hyper-parameter named
    ``convwidth`` to ``int`` first; that quirk is kept.
    """
    try:
        if name == "convwidth":
            value = int(value)
        return possible.index(value)
    except (ValueError, TypeError):
        return -1


@dataclass(frozen=True)
class ScoringGrid:
    """A task's models as arrays: what every ranker in :mod:`scoring` works on.

    Rows follow the order of ``model_configs.json``; hyper-parameters follow the order of the
    first model's ``hparams`` (the competition took names and possible values from it).

    Attributes:
        model_ids: normalized model ids (see :func:`normalize_model_id`); may repeat after
            :meth:`take` (bootstrap resamples).
        gaps: generalization gap per model, ``train_acc - test_acc``.
        hparams: hyper-parameter names.
        possible_values: per hyper-parameter, its possible values (first model's spec).
        value_index: ``(n_models, n_hparams)`` index of each current value in
            ``possible_values`` by equality, -1 where it equals none.
        possible_strs: per hyper-parameter, ``str()`` of each possible value (the competition
            keyed its cells by these strings).
        str_classes: per hyper-parameter, the distinct ``str()`` of the models' current values.
        str_codes: ``(n_models, n_hparams)`` index of each model's ``str(current_value)`` in
            ``str_classes``.
        source: the file the grid was read from, for messages (None if built from a dict).
    """

    model_ids: tuple[str, ...]
    gaps: np.ndarray
    hparams: tuple[str, ...]
    possible_values: tuple[tuple[Any, ...], ...]
    value_index: np.ndarray
    possible_strs: tuple[tuple[str, ...], ...]
    str_classes: tuple[tuple[str, ...], ...]
    str_codes: np.ndarray
    source: str | None = field(default=None, compare=False)

    @property
    def n_models(self) -> int:
        return len(self.model_ids)

    def take(self, indices: Sequence[int] | np.ndarray) -> ScoringGrid:
        """The grid restricted to (or resampled at) the given row indices, repeats allowed."""
        idx = np.asarray(indices, dtype=np.intp)
        return ScoringGrid(
            model_ids=tuple(self.model_ids[i] for i in idx),
            gaps=self.gaps[idx],
            hparams=self.hparams,
            possible_values=self.possible_values,
            value_index=self.value_index[idx],
            possible_strs=self.possible_strs,
            str_classes=self.str_classes,
            str_codes=self.str_codes[idx],
            source=self.source,
        )


def generalization_gap(metrics: Mapping[str, Any]) -> float:
    """The competition's generalization gap of one model.

    gap = train_acc - test_acc

    Args:
        metrics: the model's ``metrics`` entry of ``model_configs.json``.

    Returns:
        The gap (float).
    """
    return metrics["train_acc"] - metrics["test_acc"]


def scoring_grid(model_specs: Mapping[str, Any],
                 path: str | os.PathLike | None = None) -> ScoringGrid:
    """Check the structure of a ``model_configs.json`` mapping and turn it into arrays.

    Hyper-parameter names and possible values are those of the first model (as in the
    competition); every model must give a ``current_value`` for each of them. The gap of each
    model is ``train_acc - test_acc``. Completeness of the grid is not checked here (see
    :func:`check_grid`).

    Args:
        model_specs: model id -> {"hparams": ..., "metrics": ...}.
        path: the file it came from, named in error messages.

    Returns:
        The :class:`ScoringGrid`.

    Raises:
        PGDLError: empty mapping, a model without numeric finite ``train_acc``/``test_acc``, a
            hyper-parameter without ``possible_values`` or ``current_value``, two ids that
            normalize to the same ``model_<id>``.
    """
    if not isinstance(model_specs, Mapping) or not model_specs:
        raise PGDLError("expected a non-empty JSON object: model id -> {hparams, metrics}", path)
    ids: list[str] = []
    seen: dict[str, Any] = {}
    for raw_id, spec in model_specs.items():
        mid = normalize_model_id(raw_id)
        if mid in seen:
            raise PGDLError(f"model ids {seen[mid]!r} and {raw_id!r} both name {mid!r}", path)
        seen[mid] = raw_id
        ids.append(mid)
        if not isinstance(spec, Mapping) or not isinstance(spec.get("hparams"), Mapping) \
                or not isinstance(spec.get("metrics"), Mapping):
            raise PGDLError(f"model {raw_id!r} needs 'hparams' and 'metrics' objects", path)
        for key in ("train_acc", "test_acc"):
            value = spec["metrics"].get(key)
            if not is_finite_number(value):
                raise PGDLError(f"model {raw_id!r}: metrics.{key} must be a finite number, "
                                f"got {short_repr(value)}", path)
    specs = list(model_specs.values())
    raw_ids = list(model_specs.keys())
    first = specs[0]["hparams"]
    names = tuple(str(name) for name in first)
    possible: list[list] = []
    for name in names:
        entry = first[name]
        values = entry.get("possible_values") if isinstance(entry, Mapping) else None
        if not isinstance(values, list) or not values:
            raise PGDLError(f"model {raw_ids[0]!r}: hyper-parameter {name!r} needs a non-empty "
                            "'possible_values' list", path)
        wrong = [v for v in values if not _is_scalar(v)]
        if wrong:
            raise PGDLError(f"model {raw_ids[0]!r}: hparams.{name}.possible_values must hold "
                            f"numbers, strings or booleans, got {_kind(wrong[0])} {short_repr(wrong[0])}",
                            path)
        possible.append(values)
    n, h = len(specs), len(names)
    value_index = np.empty((n, h), dtype=np.int64)
    str_codes = np.empty((n, h), dtype=np.int64)
    classes: list[dict[str, int]] = [{} for _ in names]
    for row, (raw_id, spec) in enumerate(zip(raw_ids, specs)):
        hparams = spec["hparams"]
        for col, name in enumerate(names):
            entry = hparams.get(name)
            if not isinstance(entry, Mapping) or "current_value" not in entry:
                raise PGDLError(f"model {raw_id!r} has no current_value for hyper-parameter "
                                f"{name!r} (every model needs the first model's hyper-parameters)",
                                path)
            value = entry["current_value"]
            if not _is_scalar(value):
                raise PGDLError(f"model {raw_id!r}: hparams.{name}.current_value must be a number, "
                                f"string or boolean, got {_kind(value)} {short_repr(value)}", path)
            value_index[row, col] = _hparam_index(possible[col], value, name)
            str_codes[row, col] = classes[col].setdefault(str(value), len(classes[col]))
    gaps = np.array([generalization_gap(spec["metrics"]) for spec in specs], dtype=np.float64)
    return ScoringGrid(
        model_ids=tuple(ids),
        gaps=gaps,
        hparams=names,
        possible_values=tuple(tuple(values) for values in possible),
        value_index=value_index,
        possible_strs=tuple(tuple(str(v) for v in values) for values in possible),
        str_classes=tuple(tuple(c) for c in classes),
        str_codes=str_codes,
        source=None if path is None else os.fspath(path),
    )


def check_grid(grid: ScoringGrid, path: str | os.PathLike | None = None) -> None:
    """Check that the hyper-parameter grid is complete and unique, as the competition did.

    Each model's values are located in the possible values by equality (``list.index``);
    complete means every combination of possible values has a model, unique that none has two.

    Args:
        grid: the task's grid.
        path: the file named in error messages (defaults to ``grid.source``).

    Raises:
        PGDLError: a current value that is not among the possible values, a missing
            combination, a duplicated combination.
    """
    path = grid.source if path is None else path
    bad = np.argwhere(grid.value_index < 0)
    if len(bad):
        row, col = bad[0]
        raise PGDLError(
            f"{grid.model_ids[row]}: hyper-parameter {grid.hparams[col]!r} has a current_value "
            f"that is not among its possible_values {list(grid.possible_values[col])!r}", path)
    shape = tuple(len(v) for v in grid.possible_values)
    expected = math.prod(shape)  # a Python int: exact however large the grid
    if grid.n_models == 0:
        raise PGDLError("the task has no models", path)
    # Rows of value indices, compared row by row: the work is bounded by the models, never by
    # the number of cells (12 hyper-parameters of 10 values are 10^12 cells).
    rows = grid.value_index if shape else np.zeros((grid.n_models, 1), dtype=np.int64)
    uniq, inverse, counts = np.unique(rows, axis=0, return_inverse=True, return_counts=True)
    problems = []
    if len(uniq) < expected:
        missing = expected - len(uniq)
        present = {tuple(row) for row in uniq.tolist()}
        first_missing = next(cell for cell in itertools.product(*map(range, shape))
                             if cell not in present)  # at most n_models + 1 steps
        example = " (e.g. " + ", ".join(
            f"{name}={grid.possible_values[c][i]!r}"
            for c, (name, i) in enumerate(zip(grid.hparams, first_missing))) + ")"
        problems.append(f"the grid is not complete: {missing} of {expected} combinations of "
                        f"possible values have no model{example}")
    if (counts > 1).any():
        dup = int(np.argmax(counts > 1))
        sharing = [grid.model_ids[i] for i in np.flatnonzero(inverse.ravel() == dup)]
        problems.append(f"the grid is not unique: models {_short_list(sharing)} share the same "
                        "hyper-parameter values")
    if problems:
        raise PGDLError("; ".join(problems), path)


def load_model_specs(path: str | os.PathLike) -> dict[str, Any]:
    """Read a task's ``model_configs.json`` (the file, or the task folder holding it).

    Args:
        path: ``model_configs.json`` or its folder.

    Returns:
        The JSON object, model id -> spec, in file order.

    Raises:
        PGDLError: missing file, invalid JSON, not an object.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model_configs.json"
    specs = read_json(path, "model_configs.json", unique_keys=True)
    if not isinstance(specs, dict):
        raise PGDLError("expected a JSON object: model id -> {hparams, metrics}", path)
    return specs


def load_reference(path: str | os.PathLike) -> tuple[dict[str, Any], ScoringGrid]:
    """Read and check a task's ``model_configs.json``: the one validation of that file.

    ``pgdl score``, ``pgdl task info`` and ``pgdl evaluate`` (before it computes anything) all
    read the reference through this function, so a file one of them refuses, the others refuse
    with the same message. It checks the structure (:func:`load_model_specs`,
    :func:`scoring_grid`: objects where objects belong, finite accuracies, every model with the
    first model's hyper-parameters, no id twice); whether the grid is complete and unique is
    :func:`check_grid`'s question, asked by the callers that need it.

    Args:
        path: ``model_configs.json`` or its folder.

    Returns:
        (the JSON object as read, its :class:`ScoringGrid`).

    Raises:
        PGDLError: naming the file and the problem.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model_configs.json"
    specs = load_model_specs(path)
    return specs, scoring_grid(specs, path)


def load_prediction(path: str | os.PathLike) -> dict[str, float | str]:
    """Read a ``.predict`` file: a JSON object model id -> float (or ``"EXCEEDED"``).

    Args:
        path: the ``.predict`` file.

    Returns:
        model id (as written) -> float, or the string ``"EXCEEDED"``.

    Raises:
        PGDLError: missing file, invalid JSON, not an object, a value that is neither a number
            nor ``"EXCEEDED"``, a NaN or infinite value.
    """
    path = Path(path)
    raw = read_json(path, "prediction file (<task>.predict, a JSON object model id -> float)",
                    unique_keys=True, allow_nan=True)
    if not isinstance(raw, dict):
        raise PGDLError("expected a JSON object: model id -> float", path)
    prediction: dict[str, float | str] = {}
    for mid, value in raw.items():
        if value == EXCEEDED:
            prediction[mid] = EXCEEDED
        elif not is_number(value):
            raise PGDLError(f"model {mid!r}: expected a number or \"EXCEEDED\", got {short_repr(value)}",
                            path)
        elif not is_finite(value):
            raise PGDLError(f"model {mid!r}: value {short_repr(value)} is not finite", path)
        else:
            prediction[mid] = value
    return prediction


def align_prediction(prediction: Mapping[Any, Any], grid: ScoringGrid,
                     path: str | os.PathLike | None = None, *, exact: bool = True,
                     strict_keys: bool = False) -> np.ndarray:
    """The prediction as an array in the grid's model order.

    Keys are normalized like the model ids (``"3"`` and ``"model_3"`` both name ``model_3``),
    unless `strict_keys`: then keys are taken as written, as the competition's scorer took the
    keys of a ``.predict`` file (it normalized the reference's ids only, so a key ``"3"``
    matched nothing and the task scored nan), and a key without "model" is refused.

    Args:
        prediction: model id -> finite number.
        grid: the task's grid.
        path: the prediction file named in error messages.
        exact: require the prediction to cover exactly the grid's models; when False, only
            keys unknown to the grid are errors and the result holds NaN for missing models.
        strict_keys: take keys as written (see above): what :func:`scoring.submission.score_submission`
            does with ``.predict`` files.

    Returns:
        float64 array of length ``grid.n_models``.

    Raises:
        PGDLError: missing or extra model ids, two keys naming the same model, a value that is
            not a finite number (``"EXCEEDED"`` included: handle it before).
    """
    if strict_keys:
        bare = [str(raw_id) for raw_id in prediction if normalize_model_id(raw_id) != str(raw_id)]
        if bare:
            raise PGDLError(f"model ids {_short_list(bare)} lack the model_ prefix: the competition's scorer "
                            "added model_ to the reference's ids only and looked the prediction up under "
                            f"{normalize_model_id(bare[0])!r}, so it matched nothing and scored the task nan; "
                            "key each value by its model folder's name (model_<k>)", path)
    values: dict[str, float] = {}
    raw_of: dict[str, Any] = {}
    for raw_id, value in prediction.items():
        mid = normalize_model_id(raw_id)
        if mid in values:
            raise PGDLError(f"keys {raw_of[mid]!r} and {raw_id!r} both name model {mid!r}", path)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            raise PGDLError(f"model {raw_id!r}: expected a number, got {short_repr(value)}", path)
        if not is_finite(value):
            raise PGDLError(f"model {raw_id!r}: value {short_repr(value)} is not finite", path)
        values[mid] = float(value)
        raw_of[mid] = raw_id
    known = set(grid.model_ids)
    extra = [raw_of[m] for m in values if m not in known]
    missing = [m for m in dict.fromkeys(grid.model_ids) if m not in values]
    problems = []
    if missing and exact:
        problems.append(f"no value for {len(missing)} of the task's models "
                        f"({_short_list(missing)})")
    if extra:
        problems.append(f"{len(extra)} model ids are not in the task ({_short_list(extra)})")
    if problems:
        raise PGDLError("; ".join(problems) + "; a prediction needs one value per model of "
                        "model_configs.json", path)
    return np.array([values.get(m, math.nan) for m in grid.model_ids], dtype=np.float64)


def is_ignored(path: str | os.PathLike) -> bool:
    """Whether a path goes through ``__MACOSX`` or ``.DS_Store`` (the competition ignored those)."""
    return any(bad in part for part in Path(path).parts for bad in _IGNORED_NAMES)


def find_references(reference_dir: str | os.PathLike) -> dict[str, Path]:
    """The references under a folder: task name -> its ``model_configs.json`` (empty when none).

    The one rule of finding reference data, used by :func:`find_tasks` (``pgdl score``) and by
    :func:`pgdl_measures.tasks.find_tasks` for the reference side of a public-data root. A task's
    reference is a folder holding ``model_configs.json``, found recursively (the folder itself
    may be one); its name is the folder's name, which is also the stem of its ``.predict`` file.
    As in the competition, a ``reference_data`` sub-folder is entered when there is one (so a
    public-data root, which also holds ``input_data/``, works) and paths through ``__MACOSX`` or
    ``.DS_Store`` are ignored.

    Args:
        reference_dir: the reference data folder (e.g. ``reference_data/``), which must exist.

    Returns:
        Task name -> path of its ``model_configs.json``, sorted by name.

    Raises:
        PGDLError: the folder does not exist, or two tasks share a name.
    """
    root = Path(reference_dir)
    if not root.is_dir():
        raise PGDLError("reference folder not found", root)
    if (root / "reference_data").is_dir() and not (root / "model_configs.json").is_file():
        root = root / "reference_data"
    found = sorted(p for p in root.rglob("model_configs.json") if p.is_file() and not is_ignored(p.relative_to(root)))
    tasks: dict[str, Path] = {}
    for config in found:
        name = config.parent.resolve().name if config.parent == root else config.parent.name
        if name in tasks:
            raise PGDLError(f"two tasks are named {name!r}: {tasks[name]} and {config}", root)
        tasks[name] = config
    return dict(sorted(tasks.items()))


def find_tasks(reference_dir: str | os.PathLike) -> dict[str, Path]:
    """The tasks under a reference folder (:func:`find_references`), for scoring.

    Raises:
        PGDLError: the folder does not exist, holds no task, or two tasks share a name.
    """
    tasks = find_references(reference_dir)
    if not tasks:
        raise PGDLError("no model_configs.json found (expected <task>/model_configs.json)", reference_dir)
    return tasks
