"""The zoo's spec file: which dataset, which architecture family, which hyper-parameter grid.

A spec is a JSON object::

    {
      "task": "digits_vgg",                      # the task's folder name
      "seed": 0,                                 # model k is trained with seed + k (default 0)
      "dataset": {"name": "digits", "train_size": 300, "num_shards": 2},
      "architecture": "vgg",                     # vgg | nin | mlp
      "grid": {                                  # every combination is one model
        "depth": [1, 2], "width": [8, 32], "dropout": [0, 0.3], "batch_size": [16, 64]
      },
      "fixed": {"epochs": 40, "learning_rate": 0.05, "optimizer": "sgd"}
    }

``grid`` maps hyper-parameters to lists of values; model ids ``"0"``, ``"1"``... follow the
product of the lists in the order written (the last one varies fastest), and every grid
hyper-parameter is recorded in model_configs.json with its ``possible_values``. ``fixed`` sets
other hyper-parameters for all models (not recorded). Everything else takes its default.
Hyper-parameters: those of the family (:data:`~pgdl_measures.training.families.FAMILIES`) and
the training ones (:data:`~pgdl_measures.zoo.train.TRAINING_HPARAMS`).

``dataset`` holds ``name`` (a key of :data:`~pgdl_measures.training.datasets.DATASETS`), the
loader's options (``seed`` defaults to the spec's seed; an npz ``path`` is relative to the spec
file's folder) and ``num_shards`` (TFRecord files per split, default 1).
"""

from __future__ import annotations

import inspect
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgdl_measures.errors import PGDLError
from pgdl_measures.params import NON_NEGATIVE_INT, POSITIVE_INT
from pgdl_measures.training.datasets import DATASETS, Splits
from pgdl_measures.training.families import FAMILIES, HParam, model_config
from pgdl_measures.zoo.train import TRAINING_HPARAMS
from scoring.files import read_json

SPEC_KEYS = ("task", "seed", "dataset", "architecture", "grid", "fixed")
_TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class ZooSpec:
    """A validated spec (see the module docstring).

    Attributes:
        task: the task's folder name.
        dataset: the dataset's name.
        dataset_options: keyword options of its loader.
        num_shards: TFRecord shards per split.
        architecture: the family's name.
        grid: hyper-parameter -> its possible values, in spec order.
        fixed: hyper-parameter -> value for every model.
        seed: model k is trained with ``seed + k``.
        source: the spec file, named in errors (None for a spec given as a dict).
    """

    task: str
    dataset: str
    dataset_options: dict[str, Any]
    num_shards: int
    architecture: str
    grid: dict[str, list]
    fixed: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    source: Path | None = None

    def hparam_defs(self) -> dict[str, HParam]:
        return hparam_defs(self.architecture)

    def cells(self) -> list[dict[str, Any]]:
        """The grid's cells (model k is cell k): ``{hparam: value}`` of the grid hyper-parameters."""
        names = list(self.grid)
        return [dict(zip(names, values)) for values in itertools.product(*self.grid.values())]

    def __len__(self) -> int:
        n = 1
        for values in self.grid.values():
            n *= len(values)
        return n

    def hparams(self, index: int) -> dict[str, Any]:
        """All hyper-parameters of model `index`: defaults, then ``fixed``, then its grid cell."""
        values = {name: h.default for name, h in self.hparam_defs().items()}
        values.update(self.fixed)
        values.update(self.cells()[index])
        return values

    def to_json(self) -> dict[str, Any]:
        """The spec as a JSON object (what a rerun must match to resume)."""
        return {"task": self.task, "seed": self.seed,
                "dataset": {"name": self.dataset, **self.dataset_options, "num_shards": self.num_shards},
                "architecture": self.architecture, "grid": self.grid, "fixed": self.fixed}

    def error(self, message: str) -> PGDLError:
        return PGDLError(message, self.source)

    def load_data(self) -> Splits:
        """Load the dataset (relative npz paths resolved against the spec's folder).

        Raises:
            PGDLError: the loader rejects its options or the data, or the data has an empty
                dimension or split (naming the spec).
        """
        options = dict(self.dataset_options)
        if "path" in options:
            base = self.source.parent if self.source is not None else Path.cwd()
            options["path"] = base / options["path"]
        try:
            splits = DATASETS[self.dataset](**options)
        except (ValueError, TypeError) as exc:
            raise self.error(f"dataset {self.dataset!r}: {exc}") from None
        shape = tuple(splits.input_shape)
        if not shape or 0 in shape:
            raise self.error(f"dataset {self.dataset!r}: each example has shape {shape}, with no values "
                             "to train on; every dimension of the inputs must be at least 1")
        for split, labels in (("training", splits.y_train), ("test", splits.y_test)):
            if len(labels) == 0:
                raise self.error(f"dataset {self.dataset!r}: the {split} split has no examples")
        return splits

    def model_configs(self, splits: Splits) -> list[dict[str, Any]]:
        """config.json of every model, for the data's input shape and number of classes.

        Raises:
            PGDLError: a cell the architecture cannot build (e.g. too deep for the input).
        """
        configs = []
        for index, cell in enumerate(self.cells()):
            try:
                configs.append(model_config(self.architecture, self.hparams(index),
                                            splits.input_shape, splits.num_classes))
            except ValueError as exc:
                where = ", ".join(f"{k}={v!r}" for k, v in cell.items())
                raise self.error(f"model {index} ({where}) cannot be built: {exc}") from None
        return configs


def hparam_defs(architecture: str) -> dict[str, HParam]:
    """The hyper-parameters a spec may set for `architecture`: the family's, then training's."""
    return {h.name: h for h in FAMILIES[architecture].hparams + TRAINING_HPARAMS}


def _check_value(defs: dict[str, HParam], name: str, value: Any, where: str, source) -> None:
    problem = defs[name].check(value)
    if problem:
        raise PGDLError(f"{where}: {name}={value!r} {problem} ({defs[name].doc})", source)


def _check_names(names, defs: dict[str, HParam], where: str, architecture: str, source) -> None:
    for name in names:
        if name not in defs:
            raise PGDLError(f"{where}: unknown hyper-parameter {name!r} for architecture "
                            f"{architecture!r}; known: {', '.join(defs)}", source)


def parse_spec(raw: Any, source: str | os.PathLike | None = None) -> ZooSpec:
    """Validate a spec object (the parsed JSON) into a :class:`ZooSpec`.

    Args:
        raw: the spec as a dict.
        source: the file it came from: named in errors, and the base of relative npz paths.

    Raises:
        PGDLError: naming `source`: unknown keys, dataset, option, architecture or
            hyper-parameter, or an invalid value.
    """
    source = None if source is None else Path(source)

    def fail(message):
        return PGDLError(message, source)

    if not isinstance(raw, dict):
        raise fail("a zoo spec must be a JSON object with keys " + ", ".join(SPEC_KEYS))
    unknown = [k for k in raw if k not in SPEC_KEYS]
    if unknown:
        raise fail(f"unknown key(s) {', '.join(map(repr, unknown))}; a spec has {', '.join(SPEC_KEYS)}")
    for key in ("task", "dataset", "architecture", "grid"):
        if key not in raw:
            raise fail(f"missing {key!r}; a spec needs task, dataset, architecture and grid")

    task = raw["task"]
    if not isinstance(task, str) or not _TASK_NAME.match(task):
        raise fail(f"task {task!r} must be a folder name of letters, digits, '_', '-', '.'")
    seed = raw.get("seed", 0)
    if not NON_NEGATIVE_INT.is_satisfied_by(seed):
        raise fail(f"seed {seed!r} must be {NON_NEGATIVE_INT}")

    dataset = raw["dataset"]
    if isinstance(dataset, str):
        dataset = {"name": dataset}
    if not isinstance(dataset, dict) or "name" not in dataset:
        raise fail('dataset must be an object with a "name", e.g. {"name": "digits", "train_size": 300}')
    name = dataset["name"]
    if not isinstance(name, str) or name not in DATASETS:
        raise fail(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    options = {k: v for k, v in dataset.items() if k not in ("name", "num_shards")}
    accepted = inspect.signature(DATASETS[name]).parameters
    for option in options:
        if option not in accepted:
            raise fail(f"dataset {name!r} has no option {option!r}; options: "
                       f"{', '.join(list(accepted) + ['num_shards'])}")
    if "seed" in accepted and "seed" not in options:
        options["seed"] = seed
    missing = [p for p, param in accepted.items() if param.default is inspect.Parameter.empty and p not in options]
    if missing:
        raise fail(f"dataset {name!r} needs option(s) {', '.join(missing)}")
    num_shards = dataset.get("num_shards", 1)
    if not POSITIVE_INT.is_satisfied_by(num_shards):
        raise fail(f"dataset num_shards {num_shards!r} must be {POSITIVE_INT}")

    architecture = raw["architecture"]
    if not isinstance(architecture, str) or architecture not in FAMILIES:
        raise fail(f"unknown architecture {architecture!r}; known: {', '.join(FAMILIES)}")
    defs = hparam_defs(architecture)

    grid = raw["grid"]
    if not isinstance(grid, dict) or not grid:
        raise fail('grid must be a non-empty object {hyper-parameter: [values]}, e.g. {"depth": [1, 2]}')
    _check_names(grid, defs, "grid", architecture, source)
    for hp, values in grid.items():
        if not isinstance(values, list) or not values:
            raise fail(f"grid: {hp} must be a non-empty list of values, got {values!r}")
        for value in values:
            _check_value(defs, hp, value, "grid", source)
        if len({json.dumps(v) for v in values}) != len(values):
            raise fail(f"grid: {hp} lists a value twice: {values!r}")

    fixed = raw.get("fixed", {})
    if not isinstance(fixed, dict):
        raise fail("fixed must be an object {hyper-parameter: value}")
    _check_names(fixed, defs, "fixed", architecture, source)
    for hp, value in fixed.items():
        if hp in grid:
            raise fail(f"{hp} is both in grid and in fixed; keep one")
        _check_value(defs, hp, value, "fixed", source)

    return ZooSpec(task=task, dataset=name, dataset_options=options, num_shards=num_shards,
                   architecture=architecture, grid=dict(grid), fixed=dict(fixed), seed=seed,
                   source=source)


def load_spec(path: str | os.PathLike) -> ZooSpec:
    """Read and validate a spec file.

    Raises:
        PGDLError: naming the file: missing, malformed JSON, or an invalid spec.
    """
    path = Path(path)
    return parse_spec(read_json(path, "spec file"), path)
