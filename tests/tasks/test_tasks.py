"""The task reader on the official sample task, both layouts, and every kind of bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pgdl_measures.errors import PGDLError
from pgdl_measures.tasks import find_tasks, grid_report, load_trained_model, read_model_configs


@pytest.fixture
def toy_copy(toy_path, tmp_path) -> Path:
    """A writable copy of the official sample task."""
    dest = tmp_path / "toy"
    shutil.copytree(toy_path, dest)
    for path in dest.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    dest.chmod(0o755)
    return dest


def _ids(task):
    return task.model_ids()


def test_sample_layout_reads_every_model(toy_path):
    (task,) = find_tasks(toy_path)
    assert task.name == "pgdl_toy_data"
    assert _ids(task) == [f"model_{k}" for k in range(18)]
    configs = task.model_configs()
    assert list(configs["model_id"]) == _ids(task)
    assert set(configs.attrs["possible_values"]) == {"num_units", "num_layers", "activation_function"}
    np.testing.assert_allclose(configs["gen_gap"], configs["train_acc"] - configs["test_acc"])
    report = grid_report(configs)
    assert report.complete and report.unique and report.size == 18
    for _model_id, trained in task.iter_models():
        assert not isinstance(trained, PGDLError), trained
        assert trained.num_classes == 2
        assert trained.initial_weights is not None
        assert len(trained.initial_weights) == len(trained.model.get_weights())
        # trained weights differ from the initial ones
        assert any(not np.allclose(a, b) for a, b in zip(trained.initial_weights, trained.model.get_weights()))
    assert len(task.train) == 200 and len(task.test) == 100


def test_matches_tf_keras_predictions(toy_path):
    """Keras 3 loading equals tf.keras 2 (tf_keras) loading the same files: probabilities within
    1e-4 (two float32 convolution implementations, on either Keras backend)."""
    tf_keras = pytest.importorskip("tf_keras")
    (task,) = find_tasks(toy_path)
    x, _ = task.train.take()
    for model_id in _ids(task):
        trained = task.load_model(model_id)
        config = json.loads((toy_path / model_id / "config.json").read_text())
        layers = [getattr(tf_keras.layers, d["layer_name"])(**{k: v for k, v in d.items() if k != "layer_name"})
                  for d in config["model_config"]]
        legacy = tf_keras.Sequential(layers)
        legacy.build([None] + config["input_shape"])
        legacy.load_weights(str(toy_path / model_id / "weights.hdf5"))
        expected = legacy.predict(x, verbose=0)
        got = np.asarray(trained.model.predict(x, verbose=0))
        np.testing.assert_allclose(got, expected, atol=1e-4, err_msg=model_id)


def test_public_layout(toy_path, tmp_path):
    root = tmp_path / "public"
    (root / "input_data").mkdir(parents=True)
    (root / "reference_data" / "task9").mkdir(parents=True)
    shutil.copytree(toy_path, root / "input_data" / "task9", ignore=shutil.ignore_patterns("model_configs.json"))
    shutil.copy(toy_path / "model_configs.json", root / "reference_data" / "task9")
    shutil.copytree(toy_path, root / "input_data" / "task10", ignore=shutil.ignore_patterns("model_configs.json"))
    tasks = find_tasks(root)
    assert [t.name for t in tasks] == ["task9", "task10"]
    assert tasks[0].has_reference and not tasks[1].has_reference
    assert len(tasks[0].model_configs()) == 18
    with pytest.raises(PGDLError, match="no reference data"):
        tasks[1].model_configs()
    assert len(tasks[1].train) == 200
    # a folder holding the public root (a download destination) is found too
    assert [t.name for t in find_tasks(tmp_path)] == ["task9", "task10"]


def _load_all(task):
    return dict(task.iter_models())


def _broken(toy_copy, model_id="model_3"):
    (task,) = find_tasks(toy_copy)
    results = _load_all(task)
    errors = {k: v for k, v in results.items() if isinstance(v, PGDLError)}
    assert set(errors) == {model_id}, "exactly the broken model fails; the others still load"
    return str(errors[model_id])


def test_malformed_json(toy_copy):
    (toy_copy / "model_3" / "config.json").write_text('{"model_config": [')
    msg = _broken(toy_copy)
    assert "model_3/config.json" in msg and "malformed JSON" in msg


def test_missing_layer_name(toy_copy):
    path = toy_copy / "model_3" / "config.json"
    config = json.loads(path.read_text())
    del config["model_config"][0]["layer_name"]
    path.write_text(json.dumps(config))
    msg = _broken(toy_copy)
    assert "model_3/config.json" in msg and "layer_name" in msg


def test_unknown_layer(toy_copy):
    path = toy_copy / "model_3" / "config.json"
    config = json.loads(path.read_text())
    config["model_config"][0]["layer_name"] = "Lambda"
    path.write_text(json.dumps(config))
    msg = _broken(toy_copy)
    assert "model_3/config.json" in msg and "'Lambda'" in msg


def test_whole_floats_become_ints(toy_copy):
    path = toy_copy / "model_3" / "config.json"
    config = json.loads(path.read_text())
    config["model_config"][0]["units"] = float(config["model_config"][0]["units"])
    path.write_text(json.dumps(config))
    trained = load_trained_model(toy_copy / "model_3")
    assert trained.model.layers[0].units == int(config["model_config"][0]["units"])


def test_weights_do_not_match_architecture(toy_copy):
    shutil.copy(toy_copy / "model_17" / "weights.hdf5", toy_copy / "model_3" / "weights.hdf5")
    msg = _broken(toy_copy)
    assert "model_3/weights.hdf5" in msg and "do not match" in msg


def test_truncated_hdf5(toy_copy):
    path = toy_copy / "model_3" / "weights.hdf5"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    msg = _broken(toy_copy)
    assert "model_3/weights.hdf5" in msg


def test_missing_weights(toy_copy):
    (toy_copy / "model_3" / "weights.hdf5").unlink()
    msg = _broken(toy_copy)
    assert "model_3/weights.hdf5" in msg and "missing" in msg


def test_missing_initial_weights_is_valid(toy_copy):
    (toy_copy / "model_3" / "weights_init.hdf5").unlink()
    trained = load_trained_model(toy_copy / "model_3")
    assert trained.initial_weights is None


def test_missing_dataset(toy_copy):
    shutil.rmtree(toy_copy / "dataset_1")
    (task,) = find_tasks(toy_copy)
    with pytest.raises(PGDLError, match="dataset_1"):
        task.load_model("model_0")
    # models still load without data
    assert task.load_model("model_0", with_data=False).train is None


def test_bad_tfrecord_checksum(toy_copy):
    shard = toy_copy / "dataset_1" / "train" / "shard_1.tfrecord"
    data = bytearray(shard.read_bytes())
    data[40] ^= 0xFF
    shard.write_bytes(bytes(data))
    (task,) = find_tasks(toy_copy)
    with pytest.raises(PGDLError, match="shard_1.tfrecord"):
        task.train.take()


def _edit_configs(toy_copy, edit):
    path = toy_copy / "model_configs.json"
    configs = json.loads(path.read_text())
    edit(configs)
    path.write_text(json.dumps(configs))
    (task,) = find_tasks(toy_copy)
    return task


def test_incomplete_grid(toy_copy):
    task = _edit_configs(toy_copy, lambda c: c.pop("5"))
    with pytest.raises(PGDLError, match="model_configs.json.*no model for"):
        task.model_configs()


def test_duplicated_grid(toy_copy):
    def dup(c):
        c["5"]["hparams"] = json.loads(json.dumps(c["4"]["hparams"]))
    task = _edit_configs(toy_copy, dup)
    with pytest.raises(PGDLError, match="model_4, model_5 share the cell"):
        task.model_configs()


def test_ids_matching_no_model_folder(toy_copy):
    shutil.rmtree(toy_copy / "model_5")
    (task,) = find_tasks(toy_copy)
    with pytest.raises(PGDLError, match="model_5 matches no model folder"):
        task.model_configs()


def test_model_configs_malformed(tmp_path):
    path = tmp_path / "model_configs.json"
    path.write_text("{not json")
    with pytest.raises(PGDLError, match="model_configs.json: malformed JSON"):
        read_model_configs(path)


def test_no_task(tmp_path):
    with pytest.raises(PGDLError, match="no PGDL task"):
        find_tasks(tmp_path)
    with pytest.raises(PGDLError, match="no such task folder"):
        find_tasks(tmp_path / "absent")


@pytest.mark.one_backend  # the JAX child's predictions against those of the TensorFlow run
def test_loads_on_jax_without_tensorflow(toy_path):
    """KERAS_BACKEND=jax with TensorFlow made unimportable: the sample task loads and predicts the
    TensorFlow backend's predictions."""
    pytest.importorskip("jax")
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"
        "import numpy as np, json\n"
        "from pgdl_measures.tasks import find_tasks\n"
        f"(task,) = find_tasks({str(toy_path)!r})\n"
        "x, y = task.train.take()\n"
        "out = {}\n"
        "for mid, m in task.iter_models():\n"
        "    out[mid] = np.asarray(m.model.predict(x, verbose=0)).tolist()\n"
        "print(json.dumps({'n': len(x), 'labels': int(y.sum()), 'preds': out}))\n"
    )
    env = dict(os.environ, KERAS_BACKEND="jax")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    (task,) = find_tasks(toy_path)
    x, y = task.train.take()
    assert result["n"] == len(x) == 200 and result["labels"] == int(y.sum())
    for model_id in ("model_0", "model_17"):
        expected = np.asarray(task.load_model(model_id).model.predict(x, verbose=0))
        np.testing.assert_allclose(np.asarray(result["preds"][model_id]), expected, atol=1e-4)  # float32, two backends
    assert len(result["preds"]) == 18


def test_model_digest_is_what_the_model_is(toy_path, tmp_path):
    """The digest follows the model's files and the task's data, not the folder's name or place."""
    copy = tmp_path / "elsewhere" / "pgdl_toy_data"
    shutil.copytree(toy_path / "dataset_1", copy / "dataset_1")
    shutil.copytree(toy_path / "model_0", copy / "model_0")
    shutil.copytree(toy_path / "model_1", copy / "model_1")
    (sample,), (task,) = find_tasks(toy_path), find_tasks(copy)
    digests = task.model_digests()
    assert digests == {m: sample.model_digest(m) for m in ("model_0", "model_1")}
    assert digests["model_0"] != digests["model_1"]
    (copy / "model_0" / "weights.hdf5").write_bytes((toy_path / "model_1" / "weights.hdf5").read_bytes())
    assert task.model_digest("model_0") != digests["model_0"]
    shard = sorted((copy / "dataset_1" / "train").iterdir())[0]
    shard.write_bytes(shard.read_bytes() + b"\0")
    assert task.model_digest("model_1") != digests["model_1"]  # the data changed


def test_model_configs_refused_by_score_are_refused_here_too(toy_path, tmp_path):
    """One validation of model_configs.json (scoring.predictions.load_reference)."""
    specs = json.loads((toy_path / "model_configs.json").read_text())
    specs["1"]["metrics"]["test_acc"] = None
    specs["2"]["hparams"] = ["not", "an", "object"]
    path = tmp_path / "model_configs.json"
    path.write_text(json.dumps(specs))
    with pytest.raises(PGDLError, match=r"model_configs.json: model '1': metrics.test_acc must be a finite number"):
        read_model_configs(path)


def test_public_layout_references_are_found_as_pgdl_score_finds_them(toy_path, tmp_path):
    """One rule for reference data (scoring.predictions.find_references): a model_configs.json
    nested deeper under reference_data/ is the task's reference; __MACOSX is no task."""
    from scoring.predictions import find_tasks as scoring_tasks

    root = tmp_path / "public"
    shutil.copytree(toy_path, root / "input_data" / "task1", ignore=shutil.ignore_patterns("model_configs.json"))
    (root / "input_data" / "__MACOSX" / "task1").mkdir(parents=True)
    (root / "reference_data" / "phase1" / "task1").mkdir(parents=True)
    shutil.copy(toy_path / "model_configs.json", root / "reference_data" / "phase1" / "task1")
    (task,) = find_tasks(root)
    assert task.model_configs_path == scoring_tasks(root)["task1"]
