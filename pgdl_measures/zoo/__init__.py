"""The model zoo: train a hyper-parameter grid of models and write it as a PGDL task.

:func:`generate_task` is what ``pgdl zoo SPEC.json OUT_DIR`` runs. The pieces, each usable
alone:

* :mod:`~pgdl_measures.zoo.spec`: the spec file (dataset, architecture family, grid);
* :mod:`~pgdl_measures.training.datasets`: the datasets as train/test arrays;
* :mod:`~pgdl_measures.training.families`: pure builders hparams -> competition layer list;
* :mod:`~pgdl_measures.zoo.train`: each model trained with :func:`pgdl_measures.training.fit.train`;
* :mod:`~pgdl_measures.zoo.writer`: the task's files, written atomically and resumably.

Example::

    from pgdl_measures.zoo import generate_task
    report = generate_task("data/mini_spec.json", "data/mini")
    print(report.trained, report.skipped)
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgdl_measures.zoo.spec import ZooSpec, load_spec, parse_spec

__all__ = ["ZooProgress", "ZooReport", "ZooSpec", "generate_task", "load_spec", "parse_spec"]


class ZooProgress:
    """What :func:`generate_task` reports while it runs; this base class ignores it (the CLI
    draws a progress bar)."""

    def start(self, total: int, finished: int) -> None:
        """Called once: `total` models in the grid, `finished` of them done by an earlier run."""

    def model_done(self, model_id: str, record: dict, model: Any) -> None:
        """Called after each model is trained and written; `model` is the trained Keras model."""


@dataclass
class ZooReport:
    """What a :func:`generate_task` run did.

    Attributes:
        task_dir: ``OUT/input_data/<task>``.
        model_configs: ``OUT/reference_data/<task>/model_configs.json``.
        total: the number of models in the grid.
        trained: ids of the models trained by this run.
        skipped: ids of the models an earlier run had finished.
        records: every finished model's record (hparams, metrics, seed, ...), by id.
        seconds: wall time of the run.
    """

    task_dir: Path
    model_configs: Path
    total: int = 0
    trained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    records: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        """Whether every model of the grid is finished."""
        return len(self.records) == self.total


def _as_spec(spec: ZooSpec | Mapping | str | os.PathLike) -> ZooSpec:
    if isinstance(spec, ZooSpec):
        return spec
    if isinstance(spec, Mapping):
        return parse_spec(dict(spec))
    return load_spec(spec)


def generate_task(spec: ZooSpec | Mapping | str | os.PathLike, out_dir: str | os.PathLike, *,
                  progress: ZooProgress | None = None) -> ZooReport:
    """Train every model of a spec's grid and write the task under `out_dir`.

    Model ``k`` (the k-th cell of the grid) is trained with seed ``spec.seed + k``. Models an
    earlier run finished are skipped; a model is written atomically and model_configs.json is
    rewritten after each one, so an interrupted run resumes where it stopped.

    Args:
        spec: a :class:`ZooSpec`, a spec dict, or the path of a spec JSON file.
        out_dir: the output folder (created); the task goes to ``input_data/<task>``,
            ``reference_data/<task>`` and ``zoo_state/<task>``.
        progress: told the number of models and each finished one.

    Returns:
        A :class:`ZooReport`.

    Raises:
        PGDLError: an invalid spec, or `out_dir` holds the task from another spec or data.
    """
    from pgdl_measures.zoo.train import train_model
    from pgdl_measures.zoo.writer import TaskWriter

    start = time.perf_counter()
    spec = _as_spec(spec)
    splits = spec.load_data()
    configs = spec.model_configs(splits)
    writer = TaskWriter(out_dir, spec.task)
    writer.prepare(spec.to_json(), splits.fingerprint(), spec.source)
    writer.write_dataset(splits, spec.num_shards)

    ids = [str(k) for k in range(len(configs))]
    report = ZooReport(writer.input_dir, writer.reference_dir / "model_configs.json", total=len(ids))
    report.skipped = [i for i in ids if writer.is_finished(i)]
    progress = progress or ZooProgress()
    progress.start(len(ids), len(report.skipped))
    writer.write_model_configs(spec.grid)
    for index, model_id in enumerate(ids):
        if model_id in report.skipped:
            continue
        hparams = spec.hparams(index)
        seed = spec.seed + index
        result = train_model(configs[index], hparams, splits.x_train, splits.y_train,
                             splits.x_test, splits.y_test, seed=seed)
        record = {
            "model_id": model_id,
            "hparams": {name: hparams[name] for name in spec.grid},
            "all_hparams": hparams,
            "architecture": spec.architecture,
            "seed": seed,
            "metrics": result.metrics,
            "history": result.history,
            "keras": _keras_versions(),
        }
        writer.write_model(model_id, configs[index], result.model, result.initial_weights, record)
        writer.write_model_configs(spec.grid)
        report.trained.append(model_id)
        progress.model_done(model_id, record, result.model)
    report.records = writer.records()
    report.seconds = time.perf_counter() - start
    return report


def _keras_versions() -> dict[str, str]:
    import keras

    return {"version": keras.__version__, "backend": keras.backend.backend()}
