"""Write a zoo task in the competition's public-data layout, atomically and resumably.

Layout under the output folder ``OUT``::

    OUT/input_data/<task>/model_<k>/config.json          the layer list (model_config.build_model)
    OUT/input_data/<task>/model_<k>/weights.hdf5         trained weights, tf.keras 2.x HDF5 layout
    OUT/input_data/<task>/model_<k>/weights_init.hdf5    weights at initialisation
    OUT/input_data/<task>/dataset_1/{train,test}/shard_<i>.tfrecord
    OUT/reference_data/<task>/model_configs.json         hparams + train_acc/test_acc per model
    OUT/zoo_state/<task>/spec.json                       the spec and data fingerprint of the run
    OUT/zoo_state/<task>/model_<k>.json                  one model's record (hparams, metrics, ...)

``zoo_state`` is the generator's own record; readers of the task ignore it. Every file and
folder is first written under a temporary name (starting with ``.``, which no reader matches)
and then renamed, so a killed run never leaves a half-written model: a model is *finished*
when its folder holds the three files and its record exists, and a rerun skips exactly the
finished models. model_configs.json is rebuilt from the records after every model.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from pgdl_measures.errors import PGDLError
from pgdl_measures.params import is_number
from pgdl_measures.tasks import MODEL_CONFIGS, natural_key
from scoring.files import atomic_write, read_json

MODEL_FILES = ("config.json", "weights.hdf5", "weights_init.hdf5")
STATE_DIR = "zoo_state"


def dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, allow_nan=False) + "\n"


def _check_record(record: Any, path: Path) -> dict:
    """A model's record as :meth:`TaskWriter.write_model_configs` reads it, or a PGDLError."""
    problem = None
    if not isinstance(record, dict):
        problem = "expected a JSON object"
    elif not isinstance(record.get("hparams"), dict):
        problem = 'expected an "hparams" object'
    elif not isinstance(record.get("metrics"), dict) or not all(
            is_number(record["metrics"].get(k)) for k in ("train_acc", "test_acc")):
        problem = 'expected a "metrics" object with numbers train_acc and test_acc'
    if problem:
        raise PGDLError(f"malformed record of a finished model: {problem}; delete it (and its "
                        "model folder) to train that model again", path)
    return record


class TaskWriter:
    """The files of one zoo task under an output folder (see the module docstring).

    Args:
        out_dir: the output folder (``OUT``).
        task: the task's name.
    """

    def __init__(self, out_dir: str | os.PathLike, task: str):
        self.out_dir = Path(out_dir)
        self.task = task
        self.input_dir = self.out_dir / "input_data" / task
        self.reference_dir = self.out_dir / "reference_data" / task
        self.state_dir = self.out_dir / STATE_DIR / task

    def model_dir(self, model_id: str) -> Path:
        return self.input_dir / f"model_{model_id}"

    def record_path(self, model_id: str) -> Path:
        return self.state_dir / f"model_{model_id}.json"

    # -- run state ----------------------------------------------------------------------
    def prepare(self, spec_json: dict, fingerprint: str, spec_source: Path | None) -> None:
        """Create the folders, remove temporaries of a killed run, and check that a previous
        run in this folder used the same spec and data (else resuming would mix grids).

        Raises:
            PGDLError: the folder holds this task generated from another spec or other data.
        """
        for folder in (self.input_dir, self.reference_dir, self.state_dir):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise PGDLError(f"cannot create the output folder: {exc.strerror}", folder) from None
        for stale in self.input_dir.glob(".*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        state = {"spec": spec_json, "data_sha256": fingerprint}
        path = self.state_dir / "spec.json"
        if path.is_file():
            previous = read_json(path, "the zoo's record of the run (spec.json)")
            if previous != state:
                what = "data" if isinstance(previous, dict) and previous.get("spec") == spec_json else "spec"
                raise PGDLError(
                    f"{self.out_dir} already holds task {self.task!r} generated from a different "
                    f"{what} ({path}); write to a new output folder, or delete "
                    f"input_data/{self.task}, reference_data/{self.task} and {STATE_DIR}/{self.task} "
                    "to start again", spec_source)
        else:
            atomic_write(path, dump_json(state))

    def is_finished(self, model_id: str) -> bool:
        folder = self.model_dir(model_id)
        return self.record_path(model_id).is_file() and all((folder / f).is_file() for f in MODEL_FILES)

    # -- data ---------------------------------------------------------------------------
    def has_dataset(self) -> bool:
        return (self.input_dir / "dataset_1").is_dir()

    def write_dataset(self, splits, num_shards: int) -> None:
        """Write ``dataset_1/{train,test}`` (skipped when present: it depends only on the spec)."""
        from pgdl_measures.tasks.tfrecords import write_shards

        if self.has_dataset():
            return
        temp = self.input_dir / f".dataset_1.{os.getpid()}.tmp"
        shutil.rmtree(temp, ignore_errors=True)
        write_shards(temp / "train", splits.x_train, splits.y_train, num_shards=num_shards)
        write_shards(temp / "test", splits.x_test, splits.y_test, num_shards=num_shards)
        os.replace(temp, self.input_dir / "dataset_1")  # a folder (atomic_write writes files): renamed whole

    # -- models -------------------------------------------------------------------------
    def write_model(self, model_id: str, config: dict, model, initial_weights, record: dict) -> Path:
        """Write one model's folder and then its record; returns the folder."""
        from pgdl_measures.tasks.hdf5 import save_weights

        final = self.model_dir(model_id)
        temp = self.input_dir / f".{final.name}.{os.getpid()}.tmp"
        shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir()
        try:
            (temp / "config.json").write_text(dump_json(config))
            save_weights(temp / "weights_init.hdf5", model, values=initial_weights)
            save_weights(temp / "weights.hdf5", model)
            if final.exists():  # an unfinished folder of an earlier run
                shutil.rmtree(final)
            os.replace(temp, final)  # a folder (atomic_write writes files): renamed once complete
        finally:
            shutil.rmtree(temp, ignore_errors=True)
        atomic_write(self.record_path(model_id), dump_json(record))
        return final

    def records(self) -> dict[str, dict]:
        """The records of the finished models, by model id."""
        out = {}
        for path in self.state_dir.glob("model_*.json"):
            model_id = path.stem[len("model_"):]
            if self.is_finished(model_id):
                out[model_id] = _check_record(read_json(path, "the zoo's record of a model"), path)
        return dict(sorted(out.items(), key=lambda item: natural_key(item[0])))

    def write_model_configs(self, grid: dict[str, list]) -> Path:
        """(Re)write model_configs.json from the finished models' records (if it changed)."""
        records = self.records()
        for model_id, record in records.items():
            lacking = [name for name in grid if name not in record["hparams"]]
            if lacking:
                raise PGDLError(f"the record of a finished model has no value for {', '.join(lacking)}; "
                                "delete it (and its model folder) to train that model again",
                                self.record_path(model_id))
        content = {
            model_id: {
                "hparams": {name: {"possible_values": values, "current_value": record["hparams"][name]}
                            for name, values in grid.items()},
                "metrics": {k: record["metrics"][k] for k in ("train_acc", "test_acc")},
            }
            for model_id, record in records.items()
        }
        path = self.reference_dir / MODEL_CONFIGS
        text = dump_json(content)
        if not path.is_file() or path.read_text() != text:
            atomic_write(path, text)
        return path
