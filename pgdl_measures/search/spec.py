"""The search spec: what is searched, with which algorithms and objectives, on what budget.

A spec is a JSON object; ``pgdl search run SPEC`` takes a file or a preset name (``ci``,
``paper``, ``study-cpu``). A file may start from a preset with ``"preset": "ci"`` and override any key (the
``space``, ``data``, ``model`` and ``bohb`` objects are merged key by key).

Keys (the ``paper`` preset's values, An et al. Tables 1, 2 and 4):

* ``algorithms``: any of ``random``, ``cmaes``, ``pso``, ``bohb`` (:data:`ALGORITHMS`).
* ``objectives``: any of :data:`OBJECTIVES`; ``alphas``: the weights of AGN in the two AGN
  objectives, one list for every algorithm or an object algorithm -> list (the study weighs
  AGN differently in BOHB). Every (algorithm, objective, alpha) is one *cell*: its own Optuna
  study with the full budget.
* ``space``: parameter -> ``{"low", "high", "log", "int"}``; ``start``: the start point (CMA-ES's
  mean ``x0``, PSO's initial particle position).
* ``epochs``: the full training schedule of one configuration (160); ``budget``: GPU x epochs per
  cell (5,120); ``round_size``: configurations trained at once (8, CMA-ES's and PSO's population).
* ``bohb``: ``{"eta": 2, "min_epochs": 40}`` (budgets 40, 80, 160); ``"weighting"``: how its
  AGN objectives weigh AGN, ``additive`` (``alpha * AGN + loss``, as the other algorithms) or
  ``convex`` (``alpha * mean AGN per epoch + (1 - alpha) * loss``, the study's normalised AGN
  for BOHB as we read it; see :mod:`pgdl_measures.search.objectives`).
* ``data``: ``{"dataset", "options", "train_fraction", "validation", "seed"}`` for
  :func:`pgdl_measures.training.datasets.load_dataset` and ``prepare``; ``model``:
  ``{"name", "options"}`` for :func:`pgdl_measures.training.models.build`.
* ``final_seeds``: seeds of the final training of the best configuration (and of ``default``,
  the default hyper-parameters) on the full training set; ``seed``: the samplers' seed.
* ``trainer``: ``keras`` (:func:`pgdl_measures.search.objectives.keras_trial`), ``fake`` (a
  deterministic stand-in that only counts epochs, for tests) or ``module:function``.
* ``agn``: ``online`` (AGN from the training forward passes, almost free) or ``exact`` (Eq. 5
  after every epoch).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgdl_measures.errors import PGDLError
from pgdl_measures.params import (
    BOOL,
    MAX_SEED,
    NON_NEGATIVE,
    POSITIVE_INT,
    SEED,
    Interval,
    Options,
    is_finite_number,
)
from scoring.files import read_json

ALGORITHMS = ("random", "cmaes", "pso", "bohb")
#: objective name -> what is minimised (AGN is the trial's summed AGN, see objectives.py)
OBJECTIVES = {
    "val_loss": "validation loss",
    "val_accuracy": "1 - validation accuracy",
    "agn_train_loss": "alpha * AGN + training loss",
    "agn_val_loss": "alpha * AGN + validation loss",
}
AGN_OBJECTIVES = ("agn_train_loss", "agn_val_loss")
TRAINING_PARAMS = ("batch_size", "learning_rate", "momentum", "weight_decay")
#: how an AGN objective weighs AGN against the loss (objectives.objective_value)
WEIGHTINGS = ("additive", "convex")

PAPER: dict[str, Any] = {
    "name": "paper",
    "algorithms": list(ALGORITHMS),
    "objectives": list(OBJECTIVES),
    "alphas": [0.01, 0.1, 1.0],
    "space": {
        "batch_size": {"low": 32, "high": 1000, "int": True},
        "learning_rate": {"low": 1e-7, "high": 0.5, "log": True},
        "momentum": {"low": 0.0, "high": 0.99},
        "weight_decay": {"low": 5e-7, "high": 0.05, "log": True},
    },
    "start": {"batch_size": 100, "learning_rate": 0.01, "momentum": 0.6, "weight_decay": 5e-4},
    "default": {"batch_size": 128, "learning_rate": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
    "epochs": 160,
    "budget": 5120,
    "round_size": 8,
    "bohb": {"eta": 2, "min_epochs": 40},
    "data": {"dataset": "cifar10", "options": {}, "train_fraction": 0.2, "validation": 0.1, "seed": 0},
    "model": {"name": "resnet56", "options": {}},
    "final_seeds": [0, 1, 2],
    "seed": 0,
    "trainer": "keras",
    "agn": "online",
    "diverge_loss": 1e4,
}

CI: dict[str, Any] = {
    **copy.deepcopy(PAPER),
    "name": "ci",
    "objectives": ["val_loss", "agn_val_loss"],
    "alphas": [0.1],
    # the paper's search scaled down 20x in epochs: 4 rounds of 8 configurations x 8 epochs
    # (BOHB: budgets 2/4/8, 36 configurations), on a space narrowed to what trains in 8 epochs on
    # the digits (the paper's learning rates down to 1e-7 and batches up to 1,000 of ~670
    # training images mostly leave a model at chance after 8 epochs)
    "epochs": 8,
    "budget": 256,
    "space": {
        **copy.deepcopy(PAPER["space"]),
        "batch_size": {"low": 16, "high": 256, "int": True},
        "learning_rate": {"low": 1e-3, "high": 0.5, "log": True},
    },
    "bohb": {"eta": 2, "min_epochs": 2},
    "data": {"dataset": "digits", "options": {}, "train_fraction": 0.5, "validation": 0.25, "seed": 0},
    "model": {"name": "vgg", "options": {"depth": 2, "width": 8}},
    "final_seeds": [0, 1, 2],
}

STUDY_CPU: dict[str, Any] = {
    **copy.deepcopy(PAPER),
    "name": "study-cpu",
    # The study's protocol on data a CPU trains (every departure is named here and in the README):
    # its 160-epoch piecewise schedule (divided by 10 at epoch 80 and by 100 at 120), 5,120 GPU x
    # epochs per cell (32 configurations of 160 epochs), CMA-ES and PSO in 4 generations of 8,
    # BOHB with budgets 40/80/160 and eta 2, its space and start point, its objectives and alphas
    # (0.1, 0.05, 0.005 for the black-box searches; 0.9, 0.5, 0.1 on a normalised AGN for BOHB),
    # the default configuration and the finals with 3 seeds. Departures: scikit-learn's digits
    # (searched on half of the training split: 505 training and 169 validation images) and the
    # `ci` preset's small VGG instead of CIFAR-10 and ResNets; the batch size capped at 500 (the
    # study: 1,000), as a batch cannot exceed the 505 training images.
    "algorithms": ["cmaes", "pso", "bohb"],
    "objectives": ["val_loss", "agn_train_loss", "agn_val_loss"],
    "alphas": {"cmaes": [0.1, 0.05, 0.005], "pso": [0.1, 0.05, 0.005], "random": [0.1, 0.05, 0.005],
               "bohb": [0.9, 0.5, 0.1]},
    "space": {**copy.deepcopy(PAPER["space"]), "batch_size": {"low": 32, "high": 500, "int": True}},
    "bohb": {"eta": 2, "min_epochs": 40, "weighting": "convex"},
    "data": copy.deepcopy(CI["data"]),
    "model": copy.deepcopy(CI["model"]),
}

PRESETS = {"paper": PAPER, "ci": CI, "study-cpu": STUDY_CPU}
_MERGED = ("space", "data", "model", "bohb", "start", "default")


@dataclass(frozen=True)
class Param:
    name: str
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def clip(self, value: float) -> float | int:
        value = min(max(float(value), self.low), self.high)
        return int(round(value)) if self.integer else value


@dataclass(frozen=True)
class Cell:
    """One search: an algorithm on an objective (with its alpha, None for non-AGN objectives)."""

    algorithm: str
    objective: str
    alpha: float | None = None
    weighting: str = "additive"  # or "convex" (see objectives.objective_value)

    @property
    def name(self) -> str:
        if self.alpha is None:
            return f"{self.algorithm}-{self.objective}"
        return f"{self.algorithm}-{self.objective}-{'n' if self.weighting == 'convex' else 'a'}{self.alpha:g}"


@dataclass
class SearchSpec:
    """A validated spec (see the module docstring); ``raw`` is the JSON object it came from."""

    raw: dict[str, Any]
    source: str = "<spec>"
    params: list[Param] = field(default_factory=list)

    def __getattr__(self, key: str) -> Any:  # spec.epochs, spec.budget, ...
        raw = self.__dict__.get("raw", {})
        if key in raw:
            return raw[key]
        raise AttributeError(key)

    @property
    def cells(self) -> list[Cell]:
        out = []
        for algorithm in self.raw["algorithms"]:
            for objective in self.raw["objectives"]:
                if objective in AGN_OBJECTIVES:
                    weighting = self.raw["bohb"].get("weighting", "additive") if algorithm == "bohb" else "additive"
                    out += [Cell(algorithm, objective, float(a), weighting) for a in self.alphas_of(algorithm)]
                else:
                    out.append(Cell(algorithm, objective))
        return out

    def alphas_of(self, algorithm: str) -> list[float]:
        """The alphas of `algorithm`'s AGN cells (``alphas`` is a list, or an object per algorithm)."""
        alphas = self.raw["alphas"]
        return list(alphas[algorithm]) if isinstance(alphas, dict) else list(alphas)

    @property
    def bohb_budgets(self) -> list[int]:
        """The BOHB budgets in epochs, smallest first: ``min_epochs * eta**i`` up to ``epochs``."""
        eta, low = int(self.raw["bohb"]["eta"]), int(self.raw["bohb"]["min_epochs"])
        out = [low]
        while out[-1] * eta <= int(self.raw["epochs"]):
            out.append(out[-1] * eta)
        return out

    def to_json(self) -> str:
        return json.dumps(self.raw, indent=1, sort_keys=True)

    @property
    def digest(self) -> str:
        """12 hex digits of the SHA-256 of the spec's JSON: names the search's studies."""
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True).encode()).hexdigest()[:12]

    def study_name(self, cell: Cell) -> str:
        """The Optuna study of `cell` in this search: ``<cell>@<digest>`` (``random-val_loss@3f2a...``)."""
        return f"{cell.name}@{self.digest}"


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if key in _MERGED and isinstance(value, dict) and isinstance(out.get(key), dict):
            merged = dict(out[key])
            merged.update(value)
            out[key] = merged
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_spec(spec: str | os.PathLike | dict[str, Any]) -> SearchSpec:
    """A :class:`SearchSpec` from a preset name, a JSON file or a dict (validated).

    Raises:
        PGDLError: an unreadable file, an unknown preset or any invalid value (naming the spec).
    """
    if isinstance(spec, dict):
        raw, source = dict(spec), "<spec>"
    elif str(spec) in PRESETS and not Path(spec).exists():
        raw, source = {"preset": str(spec)}, f"preset {spec}"
    else:
        path = Path(spec)
        source = str(path)
        if not path.is_file():
            raise PGDLError(f"no such spec file or preset (presets: {', '.join(PRESETS)})", path)
        raw = read_json(path, "the search spec")
        if not isinstance(raw, dict):
            raise PGDLError("the spec must be a JSON object", path)
    preset = raw.pop("preset", None)
    if preset is not None and (not isinstance(preset, str) or preset not in PRESETS):
        raise PGDLError(f"{source}: unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    full = _merge(PRESETS[preset] if preset else PAPER, raw)
    return validate(full, source)


_KEYS = {"data": ("dataset", "options", "train_fraction", "validation", "seed"), "model": ("name", "options"),
         "bohb": ("eta", "min_epochs", "weighting"), "space": ("low", "high", "log", "int")}
#: a training parameter -> the values it may take (a floor), wherever it is given
_PARAM_FLOOR = {"batch_size": Interval(float, 1, None), "learning_rate": Interval(float, 0, None, closed="neither"),
                "momentum": NON_NEGATIVE, "weight_decay": NON_NEGATIVE}
_ETA, _MIN_EPOCHS = Interval(int, 2, None), Interval(int, 1, None)
_TRAIN_FRACTION = Interval(float, 0, 1, closed="right")
_DIVERGE_LOSS = Interval(float, 0, None, closed="neither")
_AGN = Options(("online", "exact"), description="'online' or 'exact'")


def _object(raw: dict[str, Any], key: str, problems: list[str]) -> dict[str, Any]:
    """``raw[key]`` when it is an object with known keys (else a problem and {})."""
    value = raw.get(key)
    if not isinstance(value, dict):
        problems.append(f"{key} must be an object")
        return {}
    unknown = sorted(set(value) - set(_KEYS[key])) if key in _KEYS else []
    if unknown:
        problems.append(f"{key}: unknown keys {', '.join(unknown)}; known: {', '.join(_KEYS[key])}")
    return value


def _names(raw: dict[str, Any], key: str, known: tuple[str, ...], problems: list[str]) -> None:
    values = raw.get(key)
    if not isinstance(values, list) or not values:
        problems.append(f"{key} must be a non-empty list")
        return
    bad = [v for v in values if not isinstance(v, str) or v not in known]
    if bad:
        problems.append(f"{key}: unknown {key[:-1]} {', '.join(map(repr, bad))}; known: {', '.join(known)}")
    twice = sorted({v for v in values if isinstance(v, str) and values.count(v) > 1})
    if twice:
        problems.append(f"{key}: {', '.join(twice)} given twice (each would share one study)")


def _check_space(raw: dict[str, Any], problems: list[str]) -> list[Param]:
    params: list[Param] = []
    space = raw.get("space")
    if not isinstance(space, dict) or not space:
        problems.append("space must be a non-empty object")
        return params
    for name, rng in space.items():
        where = f"space.{name}"
        if name not in TRAINING_PARAMS:
            problems.append(f"space: unknown parameter {name!r}; known: {', '.join(TRAINING_PARAMS)}")
            continue
        if not isinstance(rng, dict):
            problems.append(f"{where} must be an object {{low, high, log, int}}")
            continue
        unknown = sorted(set(rng) - set(_KEYS["space"]))
        if unknown:
            problems.append(f"{where}: unknown keys {', '.join(unknown)}; known: {', '.join(_KEYS['space'])}")
            continue
        flags = [f for f in ("log", "int") if f in rng and not BOOL.is_satisfied_by(rng[f])]
        if flags:
            problems.append(f"{where}.{flags[0]} must be {BOOL}")
            continue
        low, high = rng.get("low"), rng.get("high")
        if not is_finite_number(low) or not is_finite_number(high):
            problems.append(f"{where} needs numbers low and high")
            continue
        low, high = float(low), float(high)
        if not low < high:
            problems.append(f"{where} is an empty range [{low:g}, {high:g}]")
            continue
        if rng.get("log") and low <= 0:
            problems.append(f"{where} is log-scaled and needs low > 0")
            continue
        if rng.get("int") and not (low.is_integer() and high.is_integer()):
            problems.append(f"{where} is an integer range and needs whole low and high")
            continue
        floor = _PARAM_FLOOR[name]
        if not floor.is_satisfied_by(low):
            problems.append(f"{where}.low must be {floor.bounds}")
            continue
        params.append(Param(name, low, high, bool(rng.get("log")), bool(rng.get("int"))))
    return params


def _check_points(raw: dict[str, Any], params: list[Param], problems: list[str]) -> None:
    by_name = {p.name: p for p in params}
    for key in ("start", "default"):
        point = raw.get(key)
        if not isinstance(point, dict):
            problems.append(f"{key} must be an object {{parameter: value}}")
            continue
        unknown = sorted(set(point) - set(TRAINING_PARAMS))
        if unknown:
            problems.append(f"{key}: unknown parameters {', '.join(unknown)}; known: {', '.join(TRAINING_PARAMS)}")
        for name in TRAINING_PARAMS:
            if name not in point:
                continue
            value, floor = point[name], _PARAM_FLOOR[name]
            if not is_finite_number(value):
                problems.append(f"{key}.{name} must be a number")
            elif not floor.is_satisfied_by(value):
                problems.append(f"{key}.{name} must be {floor.bounds}")
            elif key == "start" and name in by_name and not by_name[name].low <= value <= by_name[name].high:
                p = by_name[name]
                problems.append(f"start.{name} = {value} is outside [{p.low:g}, {p.high:g}]")
        missing = [name for name in TRAINING_PARAMS if name not in point]
        if missing:
            problems.append(f"{key} lacks {', '.join(missing)}")


def _check_alphas(raw: dict[str, Any], problems: list[str]) -> None:
    alphas = raw.get("alphas")
    objectives = raw.get("objectives") if isinstance(raw.get("objectives"), list) else []
    needed = any(o in AGN_OBJECTIVES for o in objectives)
    if isinstance(alphas, dict):
        algorithms = raw.get("algorithms") if isinstance(raw.get("algorithms"), list) else []
        unknown = sorted(set(alphas) - set(ALGORITHMS))
        missing = [a for a in algorithms if a in ALGORITHMS and a not in alphas]
        if unknown:
            problems.append(f"alphas: unknown algorithms {', '.join(map(str, unknown))}; known: {', '.join(ALGORITHMS)}")
        elif needed and missing:
            problems.append(f"alphas gives no list for {', '.join(missing)}")
        for algorithm, values in alphas.items():
            if algorithm in ALGORITHMS:
                _check_alpha_list(values, needed, f"alphas.{algorithm}", problems)
        return
    _check_alpha_list(alphas, needed, "alphas", problems)


def _check_alpha_list(alphas: Any, needed: bool, key: str, problems: list[str]) -> None:
    if not isinstance(alphas, list) or (needed and not alphas) \
            or not all(NON_NEGATIVE.is_satisfied_by(a) for a in alphas):
        problems.append(f"{key} must be a " + ("non-empty " if needed else "") + "list of numbers >= 0"
                        + (", or an object algorithm -> list" if key == "alphas" else ""))
        return
    seen: dict[str, Any] = {}
    for a in alphas:
        label = f"{float(a):g}"  # what names the alpha's cells (and studies)
        if label in seen:
            same = "given twice" if seen[label] == a else f"and {seen[label]} name the same cells (a{label})"
            problems.append(f"{key}: {a} {same}; each alpha must be distinct")
            return
        seen[label] = a


def _check_data_model(raw: dict[str, Any], problems: list[str]) -> None:
    data, model = _object(raw, "data", problems), _object(raw, "model", problems)
    keras = raw.get("trainer") == "keras"
    if isinstance(raw.get("data"), dict):
        dataset = data.get("dataset")
        if not isinstance(dataset, str) or not dataset:
            problems.append("data.dataset must be a dataset name")
        elif keras:
            from pgdl_measures.training.datasets import DATASETS

            if dataset not in DATASETS:
                problems.append(f"data.dataset: unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
        if not isinstance(data.get("options", {}), dict):
            problems.append("data.options must be an object")
        fraction = data.get("train_fraction", 1.0)
        if not _TRAIN_FRACTION.is_satisfied_by(fraction):
            problems.append(f"data.train_fraction must be {_TRAIN_FRACTION}")
        validation = data.get("validation", 0)
        if not is_finite_number(validation) or validation < 0 \
                or (isinstance(validation, float) and validation >= 1):
            problems.append("data.validation must be a count of examples (integer >= 0) or a fraction in [0, 1)")
        if not SEED.is_satisfied_by(data.get("seed", 0)):
            problems.append(f"data.seed must be {SEED}")
    if isinstance(raw.get("model"), dict):
        name = model.get("name")
        if not isinstance(name, str) or not name:
            problems.append("model.name must be a model name")
        elif keras:
            from pgdl_measures.training.models import MODELS

            if name not in MODELS:
                problems.append(f"model.name: unknown model {name!r}; known: {', '.join(MODELS)}")
        if not isinstance(model.get("options", {}), dict):
            problems.append("model.options must be an object")


def _check_bohb(raw: dict[str, Any], problems: list[str]) -> None:
    bohb = _object(raw, "bohb", problems)
    if not isinstance(raw.get("bohb"), dict):
        return
    eta, low = bohb.get("eta"), bohb.get("min_epochs")
    if bohb.get("weighting", "additive") not in WEIGHTINGS:
        problems.append(f"bohb.weighting must be one of {', '.join(WEIGHTINGS)}")
    if not _ETA.is_satisfied_by(eta):
        problems.append(f"bohb.eta must be {_ETA}")
    if not _MIN_EPOCHS.is_satisfied_by(low):
        problems.append(f"bohb.min_epochs must be {_MIN_EPOCHS}")
    if not _ETA.is_satisfied_by(eta) or not _MIN_EPOCHS.is_satisfied_by(low):
        return
    if isinstance(raw.get("algorithms"), list) and "bohb" in raw["algorithms"] \
            and POSITIVE_INT.is_satisfied_by(raw.get("epochs")):
        b = low
        while b < raw["epochs"]:
            b *= eta
        if b != raw["epochs"]:
            problems.append(f"bohb.min_epochs {low} x bohb.eta^k must reach epochs {raw['epochs']} exactly")


def validate(raw: dict[str, Any], source: str = "<spec>") -> SearchSpec:
    """Checks every key of `raw` (types, ranges, duplicates; every field a worker reads is
    checked here, before anything runs); raises PGDLError listing the problems (prefixed by
    `source`)."""
    problems: list[str] = []
    unknown = sorted(set(raw) - set(PAPER))
    if unknown:
        problems.append(f"unknown keys {', '.join(unknown)}")
    if not isinstance(raw.get("name"), str) or not raw["name"]:
        problems.append("name must be a non-empty string")
    _names(raw, "algorithms", ALGORITHMS, problems)
    _names(raw, "objectives", tuple(OBJECTIVES), problems)
    _check_alphas(raw, problems)
    params = _check_space(raw, problems)
    _check_points(raw, params, problems)
    for key in ("epochs", "budget", "round_size"):
        if not POSITIVE_INT.is_satisfied_by(raw.get(key)):
            problems.append(f"{key} must be {POSITIVE_INT}")
    if not problems and raw["budget"] < raw["epochs"]:
        problems.append(f"budget {raw['budget']} GPU x epochs is smaller than one configuration "
                        f"({raw['epochs']} epochs)")
    _check_bohb(raw, problems)
    seeds = raw.get("final_seeds")
    if not isinstance(seeds, list) or not all(SEED.is_satisfied_by(s) for s in seeds):
        problems.append(f"final_seeds must be a list of integers in [0, {MAX_SEED}]")
    elif len(set(seeds)) != len(seeds):
        problems.append("final_seeds: a seed is given twice")
    if not SEED.is_satisfied_by(raw.get("seed")):
        problems.append(f"seed must be {SEED}")
    if not _DIVERGE_LOSS.is_satisfied_by(raw.get("diverge_loss")):
        problems.append(f"diverge_loss must be {_DIVERGE_LOSS}")
    if not _AGN.is_satisfied_by(raw.get("agn")):
        problems.append(f"agn must be {_AGN}")
    trainer = raw.get("trainer")
    module, _, function = trainer.partition(":") if isinstance(trainer, str) else ("", "", "")
    if not isinstance(trainer, str) or not (trainer in ("keras", "fake") or (module and function.isidentifier())):
        problems.append("trainer must be 'keras', 'fake' or 'module:function'")
    _check_data_model(raw, problems)
    if problems:
        raise PGDLError(f"{source}: invalid search spec: " + "; ".join(problems))
    return SearchSpec(raw=raw, source=source, params=params)
