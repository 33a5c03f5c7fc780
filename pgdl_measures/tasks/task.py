"""Read PGDL competition tasks: models from config.json + HDF5 weights, data, model_configs.json.

A *task* is what the competition calls a dataset folder. Two layouts are accepted:

* the sample layout, one folder holding ``model_*/``, ``dataset_1/`` and ``model_configs.json``
  (the official sample task ``pgdl_toy_data``);
* the public-data layout, a root holding ``input_data/<task>/{model_*, dataset_1}`` and
  ``reference_data/<task>/model_configs.json`` (the reference may be absent: the competition
  hid it during the contest).

Per model, ``config.json`` is built into a Keras 3 model (:mod:`pgdl_measures.tasks.model_config`),
``weights.hdf5`` (written by tf.keras 2.x) is loaded, and ``weights_init.hdf5``, when present,
is kept as :attr:`TrainedModel.initial_weights`. One broken model never stops the others:
:meth:`Task.iter_models` yields the error in its place.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pgdl_measures.errors import PGDLError
from pgdl_measures.tasks.data import Dataset, ShardedDataset
from pgdl_measures.tasks.trained import TrainedModel
from scoring.predictions import find_references, is_ignored
from scoring.rules import natural_key, normalize_model_id

MODEL_CONFIGS = "model_configs.json"
_MODEL_DIR = re.compile(r"^model_(.+)$")
#: the files of a model folder that make the model (what :meth:`Task.model_digest` hashes)
MODEL_FILES = ("config.json", "weights.hdf5", "weights_init.hdf5")

#: (resolved path, size, mtime in ns) -> sha256 of the file's bytes: each file is read once per
#: process however many times it is asked for, and read again when it changes
_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes (hex), cached by (path, size, modification time).

    Raises:
        OSError: the file cannot be read.
    """
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    found = _FILE_DIGESTS.get(key)
    if found is None:
        with open(path, "rb") as handle:
            found = hashlib.file_digest(handle, "sha256").hexdigest()
        _FILE_DIGESTS[key] = found
    return found


def _digest_lines(lines: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:32]


def _files_lines(folder: Path, names: Iterable[str]) -> list[str]:
    out = []
    for name in names:
        try:
            out.append(f"{name} {file_digest(folder / name)}")
        except FileNotFoundError:
            out.append(f"{name} absent")
        except OSError as exc:  # loading the model will fail and say why; the digest stays defined
            out.append(f"{name} unreadable {exc.errno}")
    return out


def load_weights(model, path: Path) -> None:
    """Load HDF5 weights written by tf.keras 2.x into a Keras 3 model, with clear errors."""
    if not path.is_file():
        raise PGDLError("weights file is missing", path)
    try:
        import h5py

        with h5py.File(path, "r"):
            pass
    except OSError as exc:
        raise PGDLError(f"not a readable HDF5 file (truncated or corrupt?): {exc}", path) from None
    try:
        model.load_weights(str(path))
    except (ValueError, KeyError, OSError, TypeError) as exc:
        raise PGDLError(f"weights do not match the architecture in config.json: {exc}", path) from None


def load_trained_model(model_dir: str | os.PathLike, *, train: Dataset | None = None,
                       test: Dataset | None = None, task: str = "") -> TrainedModel:
    """Build one model folder (config.json, weights.hdf5, optional weights_init.hdf5).

    Raises:
        PGDLError: naming the file at fault.
    """
    from pgdl_measures.tasks.model_config import build_model, read_config

    model_dir = Path(model_dir)
    config_path = model_dir / "config.json"
    config = read_config(config_path)
    model = build_model(config, config_path)
    initial = None
    init_path = model_dir / "weights_init.hdf5"
    weights_path = model_dir / "weights.hdf5"
    if not weights_path.is_file():
        raise PGDLError("weights.hdf5 is missing: every model folder needs its trained weights", weights_path)
    if init_path.is_file():
        load_weights(model, init_path)
        initial = [np.array(w) for w in model.get_weights()]
    load_weights(model, weights_path)
    return TrainedModel(model_dir.name, model, initial, train, test, task, model_dir)


#: The most missing cells a :class:`GridReport` lists (it counts them all).
MISSING_LISTED = 1000


@dataclass
class GridReport:
    """Whether a task's hyper-parameter grid is what the competition accepted."""

    hparams: dict[str, list]
    missing: list[tuple] = field(default_factory=list)
    duplicates: dict[tuple, list[str]] = field(default_factory=dict)
    invalid_values: list[str] = field(default_factory=list)
    n_missing: int | None = None
    """How many cells have no model (``missing`` lists at most :data:`MISSING_LISTED` of them);
    None: ``len(missing)``."""

    @property
    def size(self) -> int:
        """The number of cells, the product of the numbers of possible values (exact)."""
        return math.prod(len(v) for v in self.hparams.values()) if self.hparams else 0

    @property
    def missing_count(self) -> int:
        return len(self.missing) if self.n_missing is None else self.n_missing

    @property
    def complete(self) -> bool:
        return not self.missing_count and not self.invalid_values

    @property
    def unique(self) -> bool:
        return not self.duplicates

    def problems(self) -> list[str]:
        names = list(self.hparams)
        out = []
        for cell in self.missing[:5]:
            out.append("no model for " + ", ".join(f"{n}={v!r}" for n, v in zip(names, cell)))
        if self.missing_count > 5:
            out.append(f"... {self.missing_count - 5} more missing cells (of {self.size})")
        for cell, ids in list(self.duplicates.items())[:5]:
            out.append(f"{', '.join(ids)} share the cell " + ", ".join(f"{n}={v!r}" for n, v in zip(names, cell)))
        out.extend(self.invalid_values)
        return out


def read_model_configs(path: str | os.PathLike) -> pd.DataFrame:
    """Read ``model_configs.json`` into a DataFrame, one row per model.

    The file is read and checked by :func:`scoring.predictions.load_reference`, the one
    validation of that file (``pgdl score`` and ``pgdl evaluate`` use it too), so what one
    command refuses, every command refuses with the same message.

    Columns: ``model_id`` (normalized to ``model_<k>`` as the competition did,
    :func:`scoring.rules.normalize_model_id`), one per hyper-parameter of the first model (its
    ``current_value``), ``train_acc``, ``test_acc`` and ``gen_gap = train_acc - test_acc``, in
    the natural order of the ids. ``df.attrs["possible_values"]`` maps each hyper-parameter to
    its possible values and ``df.attrs["source"]`` is the file.

    Raises:
        PGDLError: naming the file and the problem (see :func:`scoring.predictions.load_reference`).
    """
    from scoring.predictions import load_reference

    path = Path(path)
    specs, grid = load_reference(path)
    rows = []
    for model_id, spec in zip(grid.model_ids, specs.values()):
        row = {"model_id": model_id}
        for name in grid.hparams:
            row[name] = spec["hparams"][name]["current_value"]
        row["train_acc"] = float(spec["metrics"]["train_acc"])
        row["test_acc"] = float(spec["metrics"]["test_acc"])
        rows.append(row)
    df = pd.DataFrame(rows)
    df["gen_gap"] = df["train_acc"] - df["test_acc"]
    order = sorted(range(len(df)), key=lambda i: natural_key(df["model_id"].iloc[i]))
    df = df.iloc[order].reset_index(drop=True)
    df.attrs["possible_values"] = {name: list(values) for name, values in zip(grid.hparams, grid.possible_values)}
    df.attrs["source"] = str(path)
    return df


def grid_report(configs: pd.DataFrame) -> GridReport:
    """Check completeness (every combination of possible values present) and uniqueness."""
    possible = configs.attrs.get("possible_values", {})
    names = list(possible)
    report = GridReport(hparams=possible)
    seen: dict[tuple, list[str]] = {}
    for _, row in configs.iterrows():
        cell = tuple(row[n] for n in names)
        for n, v in zip(names, cell):
            if v not in possible[n]:
                report.invalid_values.append(f"{row['model_id']}: {n}={v!r} is not among its possible_values "
                                             f"{possible[n]}")
        seen.setdefault(cell, []).append(row["model_id"])
    report.duplicates = {cell: ids for cell, ids in seen.items() if len(ids) > 1}
    # The cells of the grid that have a model, counted with the multiplicity the product of the
    # possible values gives them (a value listed twice is two cells): the work is bounded by the
    # models, never by the size of the grid (12 hyper-parameters of 10 values are 10^12 cells).
    covered = sum(math.prod(possible[n].count(v) for n, v in zip(names, cell)) for cell in seen)
    report.n_missing = report.size - covered if names else 0
    wanted = min(report.n_missing, MISSING_LISTED)
    report.missing = list(itertools.islice(
        (cell for cell in itertools.product(*(possible[n] for n in names)) if cell not in seen), wanted))
    return report


class Task:
    """One PGDL task: its models, data and (when present) reference model_configs.json.

    Args:
        name: the task's name (``task1_v4``, ``pgdl_toy_data``...).
        input_dir: the folder holding ``model_*/`` and ``dataset_1/``.
        reference_dir: the folder holding ``model_configs.json``, or None.
    """

    def __init__(self, name: str, input_dir: str | os.PathLike, reference_dir: str | os.PathLike | None = None):
        self.name = name
        self.input_dir = Path(input_dir)
        self.reference_dir = None if reference_dir is None else Path(reference_dir)
        self._train: ShardedDataset | None = None
        self._test: ShardedDataset | None = None

    def __repr__(self):
        return f"Task({self.name!r}, {str(self.input_dir)!r})"

    # -- models -------------------------------------------------------------------------
    def model_ids(self) -> list[str]:
        """The ``model_<k>`` folders of the task, in natural order."""
        ids = [p.name for p in self.input_dir.iterdir() if p.is_dir() and _MODEL_DIR.match(p.name)]
        return sorted(ids, key=natural_key)

    def select_models(self, models: Iterable[Any] | None = None, *, missing_ok: bool = False) -> list[str]:
        """The model ids a run handles: all of the task's, or those named in `models`, in natural order.

        Ids are normalized as the competition did (``3`` and ``model_3`` both name ``model_3``,
        :func:`scoring.rules.normalize_model_id`); the order is always the task's (natural), not
        the order given.

        Args:
            models: ids to keep (None or empty: every model).
            missing_ok: leave out ids the task lacks instead of refusing them.

        Raises:
            PGDLError: (without `missing_ok`) an id that names no model folder of the task.
        """
        ids = self.model_ids()
        if not models:
            return ids
        wanted = {normalize_model_id(m): m for m in models}
        unknown = [str(raw) for mid, raw in wanted.items() if mid not in set(ids)]
        if unknown and not missing_ok:
            raise PGDLError(f"task {self.name} has no model {', '.join(unknown)}", self.input_dir)
        return [m for m in ids if m in wanted]

    def load_model(self, model_id: str, *, with_data: bool = True) -> TrainedModel:
        """Load one model (with the task's training and test data unless `with_data` is False)."""
        model_id = normalize_model_id(model_id)
        folder = self.input_dir / model_id
        if not folder.is_dir():
            raise PGDLError(f"task {self.name} has no model folder {model_id}", folder)
        train = self.train if with_data else None
        test = self.test if with_data and self.has_test else None
        return load_trained_model(folder, train=train, test=test, task=self.name)

    def iter_models(self, model_ids: list[str] | None = None, *, with_data: bool = True
                    ) -> Iterator[tuple[str, TrainedModel | PGDLError]]:
        """Yield ``(model_id, model or the PGDLError that stopped it)`` for every model."""
        for model_id in model_ids or self.model_ids():
            try:
                yield model_id, self.load_model(model_id, with_data=with_data)
            except PGDLError as exc:
                yield model_id, exc

    # -- identity -----------------------------------------------------------------------
    def dataset_digest(self) -> str:
        """A digest of every file under ``dataset_1/`` (names and bytes); "" without a dataset."""
        if not self.dataset_dir.is_dir():
            return ""
        names = sorted((p.relative_to(self.dataset_dir).as_posix() for p in self.dataset_dir.rglob("*")
                        if p.is_file()), key=natural_key)
        return _digest_lines(_files_lines(self.dataset_dir, names))

    def model_digest(self, model_id: str, *, dataset: str | None = None) -> str:
        """What a result on this model depends on, as a digest: the model's files
        (:data:`MODEL_FILES`: config.json, weights.hdf5, weights_init.hdf5) and the task's data.

        The results store keys every result on it, so a task with the same name but other
        models or data never reuses another's results. Each file's bytes are hashed once per
        process (:func:`file_digest`).

        Args:
            model_id: ``model_<k>`` (or ``k``).
            dataset: :meth:`dataset_digest`, when the caller has it already.
        """
        folder = self.input_dir / normalize_model_id(model_id)
        dataset = self.dataset_digest() if dataset is None else dataset
        return _digest_lines([f"dataset {dataset}", *_files_lines(folder, MODEL_FILES)])

    def model_digests(self, model_ids: Iterable[str] | None = None) -> dict[str, str]:
        """Model id -> :meth:`model_digest`, for `model_ids` (default: every model)."""
        dataset = self.dataset_digest()
        ids = self.model_ids() if model_ids is None else model_ids
        return {m: self.model_digest(m, dataset=dataset) for m in ids}

    # -- data ---------------------------------------------------------------------------
    @property
    def dataset_dir(self) -> Path:
        return self.input_dir / "dataset_1"

    @property
    def train(self) -> ShardedDataset:
        """The training split (``dataset_1/train``)."""
        if self._train is None:
            if not self.dataset_dir.is_dir():
                raise PGDLError("dataset_1 is missing: a task needs its training data in dataset_1/train",
                                self.dataset_dir)
            self._train = ShardedDataset.from_folder(self.dataset_dir / "train")
        return self._train

    @property
    def has_test(self) -> bool:
        return (self.dataset_dir / "test").is_dir()

    @property
    def test(self) -> ShardedDataset | None:
        """The test split (``dataset_1/test``), or None when the task has none."""
        if self._test is None and self.has_test:
            self._test = ShardedDataset.from_folder(self.dataset_dir / "test")
        return self._test

    # -- reference ----------------------------------------------------------------------
    @property
    def model_configs_path(self) -> Path | None:
        if self.reference_dir is None:
            return None
        path = self.reference_dir / MODEL_CONFIGS
        return path if path.is_file() else None

    @property
    def has_reference(self) -> bool:
        return self.model_configs_path is not None

    def model_configs(self, *, validate: bool = True) -> pd.DataFrame:
        """The task's model_configs.json as a DataFrame (see :func:`read_model_configs`).

        Args:
            validate: raise when the grid is incomplete or duplicated, or ids match no model
                folder (the competition rejected such tasks).

        Raises:
            PGDLError: no reference data, or (with `validate`) a grid the competition rejected.
        """
        path = self.model_configs_path
        if path is None:
            raise PGDLError(f"task {self.name} has no reference data (model_configs.json)",
                            self.reference_dir or self.input_dir)
        df = read_model_configs(path)
        if validate:
            problems = grid_report(df).problems() + self.unmatched_ids(df)
            if problems:
                raise PGDLError("the hyper-parameter grid is not complete and unique: " + "; ".join(problems), path)
        return df

    def unmatched_ids(self, configs: pd.DataFrame) -> list[str]:
        """Messages for model ids of model_configs.json with no model folder."""
        folders = set(self.model_ids())
        return [f"{m} matches no model folder in {self.input_dir}" for m in configs["model_id"] if m not in folders]


def select_models(tasks: Iterable[Task], models: Iterable[Any] | None = None) -> dict[str, list[str]]:
    """Task name -> the model ids a run handles (:meth:`Task.select_models`): every model, or
    those of `models` each task has, in natural order.

    Raises:
        PGDLError: an id of `models` that names a model of none of the tasks.
    """
    tasks = list(tasks)
    models = list(models or [])
    selected = {task.name: task.select_models(models, missing_ok=True) for task in tasks}
    if models:
        found = {m for ids in selected.values() for m in ids}
        missing = list(dict.fromkeys(str(m) for m in models if normalize_model_id(m) not in found))
        if missing:
            raise PGDLError(f"no task has model {', '.join(missing)} "
                            f"(tasks: {', '.join(t.name for t in tasks)})")
    return selected


def _is_sample_task(folder: Path) -> bool:
    return (folder / MODEL_CONFIGS).is_file() or (folder / "dataset_1").is_dir() or any(
        p.is_dir() and _MODEL_DIR.match(p.name) for p in folder.iterdir())


def find_tasks(path: str | os.PathLike) -> list[Task]:
    """Find the tasks under `path`, in either layout (see the module docstring).

    `path` may be a task folder (sample layout), a public-data root (``input_data/``,
    ``reference_data/``), or a folder of such (a download destination). The references of a
    public-data root are found by :func:`scoring.predictions.find_references`, the rule of
    ``pgdl score``: a task's ``model_configs.json`` anywhere under ``reference_data/`` in a folder
    named like the task; ``__MACOSX`` and ``.DS_Store`` are ignored.

    Raises:
        PGDLError: `path` does not exist or holds no task.
    """
    root = Path(path)
    if not root.is_dir():
        raise PGDLError("no such task folder", root)
    if (root / "input_data").is_dir():
        # the reference side is found as `pgdl score` finds it (one rule, in scoring)
        references = find_references(root / "reference_data") if (root / "reference_data").is_dir() else {}
        tasks = []
        for folder in sorted((root / "input_data").iterdir(), key=lambda p: natural_key(p.name)):
            if folder.is_dir() and not is_ignored(folder.name):
                ref = references.get(folder.name)
                tasks.append(Task(folder.name, folder, None if ref is None else ref.parent))
        if not tasks:
            raise PGDLError("input_data/ holds no task folder", root / "input_data")
        return tasks
    if _is_sample_task(root):
        return [Task(root.name, root, root)]
    tasks = []
    for child in sorted(root.iterdir(), key=lambda p: natural_key(p.name)):
        if child.is_dir() and not is_ignored(child.name) \
                and ((child / "input_data").is_dir() or _is_sample_task(child)):
            tasks.extend(find_tasks(child))
    if not tasks:
        raise PGDLError("no PGDL task here: expected model_*/ and dataset_1/ folders, or input_data/<task>/", root)
    return tasks
