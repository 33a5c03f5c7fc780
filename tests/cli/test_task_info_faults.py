"""`pgdl task info` on broken tasks: one line and exit 2, or the broken part reported beside the rest."""

from __future__ import annotations

import json
import shutil

import pytest


@pytest.fixture
def small_task(tmp_path, mini_path):
    """Three models of the bundled mini task and its data, in the sample layout (no reference)."""
    source = mini_path / "input_data" / "digits_vgg"
    task = tmp_path / "small"
    shutil.copytree(source / "dataset_1", task / "dataset_1")
    for k in range(3):
        shutil.copytree(source / f"model_{k}", task / f"model_{k}")
    return task


def test_task_info_on_empty_shards_reports_the_data(cli, small_task):
    for shard in (small_task / "dataset_1").rglob("*.tfrecord"):
        shard.write_bytes(b"")  # a TFRecord file with no record
    result = cli(["task", "info", str(small_task), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)[0]
    assert "holds no example" in summary["data"]["error"]
    assert str(small_task / "dataset_1" / "train") in summary["data"]["error"]
    assert summary["models"]["loaded"] == 3
    result = cli(["task", "info", str(small_task)])
    assert result.exit_code == 0, result.output
    assert "holds no example" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("layer", [
    {"layer_name": "Dense", "units": 10 ** 12},   # cannot be allocated
    {"layer_name": "Dense", "units": 10 ** 300},  # not even a float
    {"layer_name": "Dense", "units": [10]},       # a list where a number is expected
    {"layer_name": ["Dense"], "units": 10},       # a list where a string is expected
])
def test_task_info_lists_a_model_that_cannot_be_built_beside_the_others(cli, small_task, layer):
    config_path = small_task / "model_1" / "config.json"
    config = json.loads(config_path.read_text())
    config["model_config"].append(layer)
    config_path.write_text(json.dumps(config))
    result = cli(["task", "info", str(small_task), "--json"])
    assert result.exit_code == 0, result.output
    models = json.loads(result.output)[0]["models"]
    assert models["loaded"] == 2 and list(models["errors"]) == ["model_1"]
    assert str(config_path) in models["errors"]["model_1"]


@pytest.mark.parametrize("content", [b"1" * 5000, b"[" * 100_000, b'{"model_config": [], "input_shape": [1e400]}',
                                     b'{"model_config": NaN}', b"\xff\xfe"])
def test_task_info_lists_a_malformed_config_json_beside_the_others(cli, small_task, content):
    config_path = small_task / "model_2" / "config.json"
    config_path.write_bytes(content)
    result = cli(["task", "info", str(small_task), "--json"])
    assert result.exit_code == 0, result.output
    models = json.loads(result.output)[0]["models"]
    assert models["loaded"] == 2 and str(config_path) in models["errors"]["model_2"]


@pytest.mark.parametrize("content", [b"1" * 5000, b"[" * 100_000, b'{"0": {"hparams": [], "metrics": {}}}',
                                     b'{"0": {"hparams": {"a": {"possible_values": [1], "current_value": [1]}}, '
                                     b'"metrics": {"train_acc": 1, "test_acc": 0.5}}}'])
def test_task_info_reports_a_malformed_model_configs_json(cli, small_task, content):
    path = small_task / "model_configs.json"
    path.write_bytes(content)
    result = cli(["task", "info", str(small_task), "--json"])
    assert result.exit_code == 0, result.output
    assert str(path) in json.loads(result.output)[0]["grid"]["error"]
