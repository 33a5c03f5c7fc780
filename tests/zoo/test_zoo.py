"""The zoo: spec validation, architectures, datasets, and a tiny generated task read back by
our task reader and by the competition's own loader (tf.keras 2.x + tf.data)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from pgdl_measures.errors import PGDLError
from pgdl_measures.training.datasets import digits, npz
from pgdl_measures.training.families import FAMILIES, model_config
from pgdl_measures.zoo import generate_task, load_spec, parse_spec

TINY_SPEC = {
    "task": "tiny",
    "seed": 3,
    "dataset": {"name": "npz", "path": "tiny.npz", "num_shards": 2},
    "architecture": "vgg",
    "grid": {"width": [2, 4]},
    "fixed": {"depth": 1, "batch_norm": True, "dropout": 0.1, "epochs": 1, "batch_size": 16,
              "learning_rate": 0.05},
}


def make_arrays(n: int, seed: int, shape=(6, 6, 1)):
    """`n` examples of 3 classes: noise plus a bright pixel whose position is the class."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(0.0, 0.3, size=(n, *shape)).astype(np.float32)
    x[np.arange(n), y, y] += 2.0
    return x, y


def write_spec(folder: Path, spec: dict, name: str = "spec.json") -> Path:
    x_train, y_train = make_arrays(48, 0)
    x_test, y_test = make_arrays(24, 1)
    np.savez(folder / "tiny.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    path = folder / name
    path.write_text(json.dumps(spec))
    return path


class Capture:
    """A progress sink that keeps each trained model's weights and logits on the train set."""

    def __init__(self, x):
        self.x = x
        self.started = None
        self.models = {}

    def start(self, total, finished):
        self.started = (total, finished)

    def model_done(self, model_id, record, model):
        self.models[model_id] = (model.get_weights(), np.asarray(model.predict(self.x, verbose=0)))


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The tiny spec generated once: (spec path, out dir, report, captured models)."""
    folder = tmp_path_factory.mktemp("zoo")
    spec_path = write_spec(folder, TINY_SPEC)
    spec = load_spec(spec_path)
    capture = Capture(spec.load_data().x_train)
    out = folder / "out"
    report = generate_task(spec_path, out, progress=capture)
    return spec_path, out, report, capture


def copy_out(generated, tmp_path) -> Path:
    """A copy (mtimes kept) of the generated output, for tests that change it."""
    return Path(shutil.copytree(generated[1], tmp_path / "out"))


def mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


# -- the generated task -------------------------------------------------------------------


def test_generated_task_layout_and_reference(generated):
    from pgdl_measures.tasks import find_tasks, grid_report

    spec_path, out, report, capture = generated
    assert capture.started == (2, 0) and report.trained == ["0", "1"] and report.skipped == []
    (task,) = find_tasks(out)
    assert task.name == "tiny" and task.model_ids() == ["model_0", "model_1"]
    for model_id in task.model_ids():
        assert sorted(p.name for p in (task.input_dir / model_id).iterdir()) == [
            "config.json", "weights.hdf5", "weights_init.hdf5"]
    assert sorted(p.name for p in (task.dataset_dir / "train").iterdir()) == ["shard_0.tfrecord", "shard_1.tfrecord"]
    df = task.model_configs()  # validates: complete, unique grid; ids match folders
    grid = grid_report(df)
    assert grid.complete and grid.unique and grid.size == 2
    assert list(df["width"]) == [2, 4]
    raw = json.loads(task.model_configs_path.read_text())
    assert list(raw) == ["0", "1"]
    assert raw["1"]["hparams"] == {"width": {"possible_values": [2, 4], "current_value": 4}}
    assert set(raw["0"]["metrics"]) == {"train_acc", "test_acc"}
    # the data written is the data trained on, in order
    splits = load_spec(spec_path).load_data()
    x, y = task.train.take()
    np.testing.assert_array_equal(x, splits.x_train)
    np.testing.assert_array_equal(y, splits.y_train)
    assert len(task.test) == len(splits.y_test) == 24
    # generator records: hparams, seed model k = seed + k
    record = json.loads((out / "zoo_state" / "tiny" / "model_1.json").read_text())
    assert record["seed"] == 4 and record["all_hparams"]["batch_norm"] is True


def test_task_reader_gives_the_in_memory_predictions(generated):
    from pgdl_measures.tasks import find_tasks

    spec_path, out, report, capture = generated
    (task,) = find_tasks(out)
    df = task.model_configs().set_index("model_id")
    x, y = task.train.take()
    x_test, y_test = task.test.take()
    for model_id, (weights, logits) in capture.models.items():
        loaded = task.load_model(model_id)
        for a, b in zip(loaded.model.get_weights(), weights):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(loaded.model.predict(x, verbose=0), logits, atol=1e-6)
        # the reference metrics are the accuracies of these weights on these splits
        train_acc = np.mean(np.argmax(loaded.model.predict(x, verbose=0), -1) == y)
        test_acc = np.mean(np.argmax(loaded.model.predict(x_test, verbose=0), -1) == y_test)
        assert df.loc[f"model_{model_id}", "train_acc"] == pytest.approx(train_acc)
        assert df.loc[f"model_{model_id}", "test_acc"] == pytest.approx(test_acc)
        assert loaded.initial_weights is not None
        assert any(not np.array_equal(a, b) for a, b in zip(loaded.initial_weights, weights))


def test_competition_loader_reads_the_task(generated):
    """The PGDL starting kit's loader: tf.keras layers by name, build, load_weights, tf.data."""
    import copy
    import glob

    import tensorflow as tf
    import tf_keras

    spec_path, out, report, capture = generated
    task_dir = out / "input_data" / "tiny"

    def model_def_to_keras_sequential(model_def):
        layers = []
        for layer in model_def:
            params = copy.deepcopy(layer)
            layer_type = params.pop("layer_name")
            params = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in params.items()}
            layers.append(getattr(tf_keras.layers, layer_type)(**params))
        return tf_keras.Sequential(layers)

    def load_data(path):
        files = glob.glob(os.path.join(path, "shard_*.tfrecord"))

        def deserialize(serialized):
            record = tf.io.parse_single_example(serialized, features={
                "inputs": tf.io.FixedLenFeature([], tf.string),
                "output": tf.io.FixedLenFeature([], tf.string)})
            return (tf.io.parse_tensor(record["inputs"], out_type=tf.float32),
                    tf.io.parse_tensor(record["output"], out_type=tf.int32))

        return tf.data.TFRecordDataset(files).map(deserialize)

    x_test, y_test = [np.stack(v) for v in zip(*load_data(str(task_dir / "dataset_1" / "test")).as_numpy_iterator())]
    assert x_test.shape == (24, 6, 6, 1) and y_test.dtype == np.int32
    reference = json.loads((out / "reference_data" / "tiny" / "model_configs.json").read_text())
    for model_id, (weights, _) in capture.models.items():
        model_path = task_dir / f"model_{model_id}"
        config = json.loads((model_path / "config.json").read_text())
        model = model_def_to_keras_sequential(config["model_config"])
        model.build([0] + config["input_shape"])
        model.load_weights(str(model_path / "weights_init.hdf5"))
        model.load_weights(str(model_path / "weights.hdf5"))
        for a, b in zip(model.get_weights(), weights):
            np.testing.assert_array_equal(a, b)
        # the glob order is the file system's: compare example by example, not batch order
        logits = model.predict(x_test, verbose=0)
        ours = np.asarray(_keras3_model(config, weights).predict(x_test, verbose=0))
        assert logits.shape == ours.shape == (24, 3)
        np.testing.assert_allclose(logits, ours, atol=1e-5)
        acc = np.mean(np.argmax(logits, -1) == y_test)
        assert acc == pytest.approx(reference[model_id]["metrics"]["test_acc"], abs=1.01 / len(y_test))


def _keras3_model(config, weights):
    from pgdl_measures.tasks.model_config import build_model

    model = build_model(config)
    model.set_weights(weights)
    return model


# -- resuming -----------------------------------------------------------------------------


def test_rerun_skips_finished_models(generated, tmp_path):
    spec_path, *_ = generated
    out = copy_out(generated, tmp_path)
    before = mtimes(out)
    report = generate_task(spec_path, out)
    assert report.trained == [] and report.skipped == ["0", "1"] and len(report.records) == 2
    assert mtimes(out) == before  # nothing retrained or rewritten


def test_interrupted_model_leaves_nothing_and_is_redone(generated, tmp_path, monkeypatch):
    import pgdl_measures.tasks.hdf5 as hdf5

    spec_path, _, _, capture = generated
    out = copy_out(generated, tmp_path)
    task_dir = out / "input_data" / "tiny"
    shutil.rmtree(task_dir / "model_1")
    kept = mtimes(task_dir / "model_0")

    real_save = hdf5.save_weights
    calls = []

    def crash_on_trained_weights(path, model, *, values=None):
        calls.append(Path(path).name)
        if Path(path).name == "weights.hdf5":
            raise KeyboardInterrupt  # killed while writing model_1
        return real_save(path, model, values=values)

    monkeypatch.setattr(hdf5, "save_weights", crash_on_trained_weights)
    with pytest.raises(KeyboardInterrupt):
        generate_task(spec_path, out)
    assert calls == ["weights_init.hdf5", "weights.hdf5"]
    assert sorted(p.name for p in task_dir.iterdir()) == ["dataset_1", "model_0"]  # no partial model_1
    assert list(json.loads((out / "reference_data" / "tiny" / "model_configs.json").read_text())) == ["0"]

    monkeypatch.setattr(hdf5, "save_weights", real_save)
    report = generate_task(spec_path, out)
    assert report.trained == ["1"] and report.skipped == ["0"]
    assert mtimes(task_dir / "model_0") == kept
    assert list(json.loads((out / "reference_data" / "tiny" / "model_configs.json").read_text())) == ["0", "1"]
    # seeds are fixed: the redone model has the original weights
    from pgdl_measures.tasks import load_trained_model

    redone = load_trained_model(task_dir / "model_1")
    for a, b in zip(redone.model.get_weights(), capture.models["1"][0]):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_rerun_with_another_spec_is_refused(generated, tmp_path):
    spec_path, *_ = generated
    out = copy_out(generated, tmp_path)
    changed = dict(TINY_SPEC, grid={"width": [2, 8]})
    other = spec_path.parent / "other.json"
    other.write_text(json.dumps(changed))
    with pytest.raises(PGDLError, match="different spec") as info:
        generate_task(other, out)
    assert str(other) in str(info.value)


# -- the CLI ------------------------------------------------------------------------------


def test_cli_generates_and_resumes(cli, tmp_path):
    spec_path = write_spec(tmp_path, dict(TINY_SPEC, grid={"width": [2]}))
    result = cli(["zoo", str(spec_path), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "1 models" in result.output and "1 trained, 0 already done" in result.output
    assert (tmp_path / "out" / "reference_data" / "tiny" / "model_configs.json").is_file()
    result = cli(["zoo", "-q", str(spec_path), str(tmp_path / "out")])
    assert result.exit_code == 0 and "0 trained, 1 already done" in result.output


def test_cli_bad_spec_exits_2_naming_the_file(cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"task": "t", "dataset": "digits", "architecture": "resnet", "grid": {"depth": [1]}}')
    result = cli(["zoo", str(bad), str(tmp_path / "out")])
    assert result.exit_code == 2
    assert str(bad) in result.output and "unknown architecture 'resnet'" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("shape", [(6, 0, 1), (0,)])
def test_cli_zero_size_input_shape_exits_2_writing_nothing(cli, tmp_path, shape):
    """Inputs with an empty dimension used to abort in oneDNN, leaving a half-written task."""
    x_train, y_train = np.zeros((48, *shape), np.float32), np.arange(48) % 3
    np.savez(tmp_path / "tiny.npz", x_train=x_train, y_train=y_train, x_test=x_train[:24], y_test=y_train[:24])
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**TINY_SPEC, "architecture": "mlp", "grid": {"width": [2]},
                                "fixed": {"epochs": 1}}))
    result = cli(["zoo", str(spec), str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"Error: {spec}: ") and f"shape {shape}" in line
    assert not (tmp_path / "out").exists()


def test_cli_help_shows_the_spec_format(cli):
    result = cli(["zoo", "--help"])
    assert result.exit_code == 0 and '"architecture": "vgg"' in result.output


# -- spec validation ----------------------------------------------------------------------

GOOD = {"task": "t", "dataset": {"name": "digits"}, "architecture": "vgg", "grid": {"depth": [1, 2]}}


@pytest.mark.parametrize("change, message", [
    ({"dataset": {"name": "imagenet"}}, "unknown dataset 'imagenet'"),
    ({"dataset": {"name": "digits", "size": 3}}, "dataset 'digits' has no option 'size'"),
    ({"dataset": {"name": "npz"}}, "needs option(s) path"),
    ({"architecture": "resnet"}, "unknown architecture 'resnet'"),
    ({"grid": {"depht": [1]}}, "unknown hyper-parameter 'depht'"),
    ({"grid": {"convs_per_block": [1]}, "architecture": "nin"}, "unknown hyper-parameter 'convs_per_block'"),
    ({"grid": {"width": [0, 4]}}, "width=0 must be an integer >= 1"),
    ({"grid": {"dropout": [1.5]}}, "dropout=1.5 must be in [0.0, 1.0)"),
    ({"grid": {"batch_size": [16.0]}}, "batch_size=16.0 must be an integer"),
    ({"grid": {"optimizer": ["rmsprop"]}}, "optimizer='rmsprop' must be one of"),
    ({"grid": {"depth": [1, 1]}}, "lists a value twice"),
    ({"grid": {"depth": 2}}, "must be a non-empty list"),
    ({"grid": {}}, "grid must be a non-empty object"),
    ({"fixed": {"depth": 1}}, "both in grid and in fixed"),
    ({"epochs": 3}, "unknown key(s) 'epochs'"),
    ({"task": "../x"}, "must be a folder name"),
])
def test_bad_spec_names_the_file(tmp_path, change, message):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({**GOOD, **change}))
    with pytest.raises(PGDLError) as info:
        load_spec(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_malformed_or_missing_spec_file(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text('{"task": "t",')
    with pytest.raises(PGDLError, match=r"spec.json: malformed JSON at line 1"):
        load_spec(path)
    with pytest.raises(PGDLError, match="spec file not found"):
        load_spec(tmp_path / "nope.json")


def test_grid_cell_too_deep_for_the_input_is_refused_before_training(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({**GOOD, "grid": {"depth": [1, 4]}}))
    with pytest.raises(PGDLError, match=r"model 1 \(depth=4\) cannot be built: depth 4 pools"):
        generate_task(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_spec_order_defaults_and_seed():
    spec = parse_spec({**GOOD, "grid": {"depth": [1, 2], "width": [4, 8, 16]}, "fixed": {"epochs": 3}, "seed": 7})
    assert len(spec) == 6
    assert spec.cells()[1] == {"depth": 1, "width": 8}  # the last hyper-parameter varies fastest
    hp = spec.hparams(5)
    assert hp["depth"] == 2 and hp["width"] == 16 and hp["epochs"] == 3 and hp["optimizer"] == "sgd"
    assert spec.dataset_options == {"seed": 7}  # the dataset's seed defaults to the spec's


# -- architectures and datasets -------------------------------------------------------------


@pytest.mark.parametrize("family, input_shape", [("vgg", [8, 8, 1]), ("nin", [8, 8, 3]), ("allconv", [8, 8, 1]),
                                                  ("mlp", [8, 8, 1]), ("mlp", [5])])
def test_every_family_builds_logits(family, input_shape):
    from pgdl_measures.tasks.model_config import build_model

    hp = {"depth": 2, "width": 3, "dropout": 0.2, "batch_norm": True}
    config = model_config(family, hp, input_shape, 4)
    assert json.loads(json.dumps(config)) == config  # plain JSON
    model = build_model(config)
    assert model.output_shape == (None, 4)
    names = [layer["layer_name"] for layer in config["model_config"]]
    assert names.count("Dropout") == 2 and "BatchNormalization" in names
    if family == "allconv":  # strided convolutions, no pooling, no dense layer
        assert not {"MaxPooling2D", "Dense", "Flatten"} & set(names)
        assert [layer.get("strides", 1) for layer in config["model_config"] if layer["layer_name"] == "Conv2D"] == [1, 2, 1, 1]
    assert ("Flatten" in names) == (family == "vgg" or (family == "mlp" and len(input_shape) > 1))
    head = [layer for layer in config["model_config"] if layer["layer_name"] in ("Dense", "Conv2D")][-1]
    assert "activation" not in head  # logits


def test_family_shapes():
    vgg = model_config("vgg", {"depth": 2, "width": 4, "convs_per_block": 2}, [8, 8, 1], 10)["model_config"]
    convs = [layer["filters"] for layer in vgg if layer["layer_name"] == "Conv2D"]
    assert convs == [4, 4, 8, 8]  # width doubles per block
    assert not any(layer["layer_name"] == "Dropout" for layer in vgg)  # dropout 0: no layer
    nin = model_config("nin", {"depth": 2, "width": 5}, [8, 8, 1], 10)["model_config"]
    assert [layer.get("kernel_size") for layer in nin if layer["layer_name"] == "Conv2D"] == [3, 1, 1, 3, 1, 1, 1]
    assert nin[-1] == {"layer_name": "GlobalAveragePooling2D"}
    with pytest.raises(ValueError, match="depth 4 pools"):
        model_config("vgg", {"depth": 4}, [8, 8, 1], 10)
    with pytest.raises(ValueError, match="needs image inputs"):
        model_config("nin", {}, [64], 10)
    allconv = model_config("allconv", {"depth": 3, "width": 4}, [8, 8, 1], 10)["model_config"]
    assert [(layer["filters"], layer.get("strides", 1)) for layer in allconv if layer["layer_name"] == "Conv2D"] == \
        [(4, 1), (4, 2), (8, 1), (8, 2), (16, 1), (10, 1)]
    with pytest.raises(ValueError, match="depth 5 strides"):
        model_config("allconv", {"depth": 5}, [8, 8, 1], 10)
    assert set(FAMILIES) == {"vgg", "nin", "allconv", "mlp"}


def test_digits_split():
    splits = digits(train_size=300, test_size=200, seed=0)
    assert splits.x_train.shape == (300, 8, 8, 1) and splits.x_test.shape == (200, 8, 8, 1)
    assert splits.x_train.dtype == np.float32 and 0 <= splits.x_train.min() and splits.x_train.max() <= 1
    assert splits.num_classes == 10 and set(splits.y_train) == set(range(10))
    assert splits.fingerprint() == digits(train_size=300, test_size=200, seed=0).fingerprint()
    assert splits.fingerprint() != digits(train_size=300, test_size=200, seed=1).fingerprint()


def test_npz_layouts(tmp_path):
    x, y = make_arrays(40, 0, shape=(5, 5))  # [n, h, w]: gets a channel axis
    np.savez(tmp_path / "xy.npz", x=x, y=y)
    splits = npz(path=tmp_path / "xy.npz", train_size=30, seed=0)
    assert splits.x_train.shape == (30, 5, 5, 1) and len(splits.y_test) == 10 and splits.name == "xy"
    np.savez(tmp_path / "split.npz", x_train=x, y_train=y, x_test=x[:6], y_test=y[:6])
    splits = npz(path=tmp_path / "split.npz", train_size=12)
    assert len(splits.y_train) == 12 and len(splits.y_test) == 6
    np.savez(tmp_path / "onehot.npz", x=x, y=np.eye(3)[y])
    with pytest.raises(ValueError, match="one-hot"):
        npz(path=tmp_path / "onehot.npz")
    np.savez(tmp_path / "keys.npz", inputs=x)
    with pytest.raises(PGDLError, match="expected arrays x_train"):
        npz(path=tmp_path / "keys.npz")


# -- the bundled mini task ------------------------------------------------------------------


def test_bundled_mini_task_is_its_spec_output(mini_path, tmp_path):
    from pgdl_measures.tasks import find_tasks, grid_report

    (task,) = find_tasks(mini_path)
    df = task.model_configs()  # complete, unique, ids match folders
    report = grid_report(df)
    assert report.complete and report.unique and report.size == len(task.model_ids()) >= 24
    assert df["gen_gap"].std() > 0.02  # a real spread of generalization gaps
    assert sum(p.stat().st_size for p in mini_path.rglob("*") if p.is_file()) < 5e6
    # data/mini is what data/mini_spec.json generates: a rerun finds every model finished
    out = Path(shutil.copytree(mini_path, tmp_path / "mini"))
    rerun = generate_task(mini_path.parent / "mini_spec.json", out)
    assert rerun.trained == [] and rerun.complete


#: the bundled tasks beside data/mini: (folder under data/, models, input shape, training and test examples,
#: the most bytes the folder may take)
BUNDLED = {
    "mnist_conv": (64, (28, 28, 1), 1000, 1000, 25e6),
    "mnist_nin": (64, (28, 28, 1), 1000, 1000, 18e6),
    "mnist_allconv": (64, (28, 28, 1), 1000, 1000, 17e6),
    "digits_nin": (64, (8, 8, 1), 150, 1647, 12e6),
    "digits_allconv": (64, (8, 8, 1), 150, 1647, 12e6),
}


def _bundled(name: str):
    """The task data/<name> (skips where it has not been generated)."""
    from pgdl_measures.tasks import find_tasks

    folder = Path(__file__).resolve().parents[2] / "data" / name
    if not folder.is_dir():
        pytest.skip(f"data/{name} has not been generated (see data/README.md)")
    (task,) = find_tasks(folder)
    return folder, task


@pytest.mark.one_backend  # files, grid and sizes; the accuracies are checked on each backend below
@pytest.mark.parametrize("name", list(BUNDLED))
def test_bundled_task_is_its_spec_output(name, tmp_path):
    """data/<name>: a task of the benchmark (data/README.md), what data/<name>_spec.json generates."""
    from pgdl_measures.tasks import grid_report

    n_models, *_, max_bytes = BUNDLED[name]
    folder, task = _bundled(name)
    configs = task.model_configs()
    report = grid_report(configs)
    df = configs.set_index("model_id")
    assert report.complete and report.unique and report.size == len(task.model_ids()) == n_models
    assert len(report.hparams) >= 6 and all(len(values) >= 2 for values in report.hparams.values())
    assert df["gen_gap"].std() > 0.005  # a spread of gaps to rank
    assert df["train_acc"].median() >= 0.9  # most networks learned their training set
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) < max_bytes
    # the folder is what its spec generates: a rerun finds every model finished
    out = Path(shutil.copytree(folder, tmp_path / name))
    rerun = generate_task(folder.parent / f"{name}_spec.json", out)
    assert rerun.trained == [] and rerun.complete


@pytest.mark.parametrize("name", list(BUNDLED))
def test_bundled_task_reference_accuracies_are_its_weights(name):
    """The reference accuracies of data/<name> are those of the committed weights on the committed TFRecords."""
    n_models, shape, n_train, n_test, _ = BUNDLED[name]
    _, task = _bundled(name)
    df = task.model_configs().set_index("model_id")
    x, y = task.train.take()
    x_test, y_test = task.test.take()
    assert x.shape[1:] == shape and len(y) == n_train and len(y_test) == n_test
    for model_id in ("model_0", f"model_{n_models - 1}"):
        model = task.load_model(model_id).model
        assert df.loc[model_id, "train_acc"] == pytest.approx(np.mean(np.argmax(model.predict(x, verbose=0), -1) == y))
        assert df.loc[model_id, "test_acc"] == pytest.approx(
            np.mean(np.argmax(model.predict(x_test, verbose=0), -1) == y_test))


def test_cli_names_the_models_that_diverged(cli, tmp_path):
    """Huge inputs and a learning rate of 9.9 send the weights to inf/NaN: the zoo keeps the model (the grid must be
    complete), records it, and says which."""
    spec_path = write_spec(tmp_path, dict(TINY_SPEC, grid={"width": [2]},
                                          fixed={**TINY_SPEC["fixed"], "learning_rate": 9.9, "epochs": 5,
                                                                        "batch_norm": False, "dropout": 0}))
    with np.load(tmp_path / "tiny.npz") as arrays:  # inputs of 1e15 overflow float32 within a step
        np.savez(tmp_path / "tiny.npz", **{k: (v * 1e15).astype(np.float32) if k.startswith("x") else v
                                            for k, v in arrays.items()})
    result = cli(["zoo", str(spec_path), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "warning: 1 models diverged (non-finite weights): model_0" in result.output
    (record,) = (tmp_path / "out" / "zoo_state" / "tiny").glob("model_*.json")
    assert json.loads(record.read_text())["history"]["finite_weights"] is False
    # a model that trains normally is recorded as finite, and no warning is printed
    (tmp_path / "ok").mkdir()
    ok = write_spec(tmp_path / "ok", dict(TINY_SPEC, grid={"width": [2]}))
    result = cli(["zoo", str(ok), str(tmp_path / "out_ok")])
    assert result.exit_code == 0 and "diverged" not in result.output
    (record,) = (tmp_path / "out_ok" / "zoo_state" / "tiny").glob("model_*.json")
    assert json.loads(record.read_text())["history"]["finite_weights"] is True
