"""The competition's shared rules, each defined once (scoring.rules) and used everywhere."""

from __future__ import annotations

import json

import pytest

from scoring.errors import PGDLError
from scoring.predictions import align_prediction, load_reference
from scoring.rules import COMPETITION_TIME_BUDGET, EXCEEDED, Status, natural_key, normalize_model_id


def test_model_ids_are_normalized_as_the_competition_did():
    # a substring test, as the competition's scorer: "mymodel" stays, "3" gets the prefix
    assert [normalize_model_id(m) for m in ("3", 3, "model_3", "mymodel", "x1")] == \
        ["model_3", "model_3", "model_3", "mymodel", "model_x1"]


def test_natural_order():
    names = ["model_10", "model_2", "shard_1", "model_1", "shard_11", "shard_3"]
    assert sorted(names, key=natural_key) == ["model_1", "model_2", "model_10", "shard_1", "shard_3", "shard_11"]


def test_one_definition_of_each_rule():
    import pgdl_measures.competition.run as run
    import pgdl_measures.evaluate.pipeline as pipeline
    import pgdl_measures.evaluate.store as store
    import pgdl_measures.tasks as tasks
    import scoring.predictions as predictions

    assert tasks.natural_key is natural_key and tasks.normalize_model_id is normalize_model_id
    assert predictions.normalize_model_id is normalize_model_id and predictions.EXCEEDED is EXCEEDED
    assert run.EXCEEDED is EXCEEDED and EXCEEDED == "EXCEEDED"
    assert Status.EXCEEDED == "exceeded" and not hasattr(store, "EXCEEDED") and not hasattr(store, "STATUS_EXCEEDED")
    assert run.select_models is tasks.select_models and pipeline.select_models is tasks.select_models
    assert COMPETITION_TIME_BUDGET == 300.0
    assert not hasattr(run, "DEFAULT_TIME_BUDGET") and not hasattr(pipeline, "DEFAULT_TIME_BUDGET")


def _specs(ids=("0", "1")):
    return {m: {"hparams": {"lr": {"possible_values": [0.1, 0.2], "current_value": 0.1 * (k + 1)}},
                "metrics": {"train_acc": 1.0, "test_acc": 0.5 + 0.1 * k}} for k, m in enumerate(ids)}


def test_strict_keys_take_prediction_keys_as_written(tmp_path):
    path = tmp_path / "model_configs.json"
    path.write_text(json.dumps(_specs()))
    _, grid = load_reference(tmp_path)
    assert grid.model_ids == ("model_0", "model_1")
    assert list(align_prediction({"model_0": 1.0, "model_1": 2.0}, grid, strict_keys=True)) == [1.0, 2.0]
    assert list(align_prediction({"0": 1.0, "1": 2.0}, grid)) == [1.0, 2.0]  # in memory: normalized
    with pytest.raises(PGDLError, match="lack the model_ prefix.*'model_0'.*nan"):
        align_prediction({"0": 1.0, "1": 2.0}, grid, "t.predict", strict_keys=True)


def test_load_reference_names_the_file(tmp_path):
    path = tmp_path / "model_configs.json"
    specs = _specs()
    specs["1"]["metrics"]["test_acc"] = "0.5"
    path.write_text(json.dumps(specs))
    with pytest.raises(PGDLError, match=r"model_configs.json: model '1': metrics.test_acc must be a finite number"):
        load_reference(path)
