"""`pgdl score`: the competition's scoring program as a command, good and bad input."""

from __future__ import annotations

import itertools
import json
import shutil

import numpy as np
import pytest

from scoring._reference import reference_cmi

POSSIBLE = {"lr": [0.1, 0.01], "depth": [2, 4, 6], "act": ["relu", "tanh"]}


def write_task(root, name, rng, possible=POSSIBLE):
    specs = {}
    for k, combo in enumerate(itertools.product(*possible.values())):
        specs[str(k)] = {
            "hparams": {h: {"possible_values": list(possible[h]), "current_value": v}
                        for h, v in zip(possible, combo)},
            "metrics": {"train_acc": round(float(rng.uniform(0.8, 1)), 3),
                        "test_acc": round(float(rng.uniform(0.6, 0.9)), 3)},
        }
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "model_configs.json").write_text(json.dumps(specs))
    return specs


def write_prediction(folder, name, prediction):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.predict"
    path.write_text(prediction if isinstance(prediction, str) else json.dumps(prediction))
    return path


def noisy_gap(specs, rng, scale=0.05):
    return {f"model_{m}": s["metrics"]["train_acc"] - s["metrics"]["test_acc"]
            + scale * rng.normal() for m, s in specs.items()}


@pytest.fixture
def submission(tmp_path):
    rng = np.random.default_rng(0)
    ref, res = tmp_path / "reference_data", tmp_path / "res"
    specs = {"task1": write_task(ref, "task1", rng),
             "task2": write_task(ref / "nested", "task2", rng)}
    predictions = {name: noisy_gap(s, rng) for name, s in specs.items()}
    for name, prediction in predictions.items():
        write_prediction(res, name, prediction)
    return ref, res, specs, predictions


def test_scores_every_task_and_the_average(cli, submission):
    ref, res, specs, predictions = submission
    want = {n: reference_cmi(predictions[n], specs[n]) for n in specs}
    result = cli(["score", str(ref), str(res)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines == [f"task_task1_score: {want['task1']:0.12f}",
                     f"task_task2_score: {want['task2']:0.12f}",
                     f"task_average_score: {(want['task1'] + want['task2']) / 2 * 100:0.12f}"]
    result = cli(["score", str(ref), str(res), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["scale"] == 100  # one scale, labelled: the competition's x100, as pgdl evaluate shows it
    assert data["tasks"] == pytest.approx({n: 100 * v for n, v in want.items()}, abs=1e-10)
    assert data["average"] == pytest.approx(50 * (want["task1"] + want["task2"]), abs=1e-10)


def test_reference_folder_that_is_itself_a_task(cli, toy_path, tmp_path):
    specs = json.loads((toy_path / "model_configs.json").read_text())
    gaps = {f"model_{m}": s["metrics"]["train_acc"] - s["metrics"]["test_acc"]
            for m, s in specs.items()}
    write_prediction(tmp_path, toy_path.name, gaps)
    result = cli(["score", str(toy_path), str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["tasks"] == {toy_path.name: pytest.approx(100 * reference_cmi(gaps, specs), abs=1e-10)}
    assert data["average"] > 99


def test_exceeded_makes_the_average_zero(cli, submission):
    ref, res, specs, predictions = submission
    write_prediction(res, "task2", {m: "EXCEEDED" for m in predictions["task2"]})
    result = cli(["score", str(ref), str(res), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["average"] == 0.0 and data["tasks"]["task2"] is None
    assert data["tasks"]["task1"] > 0
    assert "EXCEEDED" in result.stderr


def test_quirk_warnings_go_to_stderr(cli, tmp_path):
    rng = np.random.default_rng(1)
    specs = write_task(tmp_path / "ref", "t", rng, {"a": [1, 11], "b": [3, 4]})
    write_prediction(tmp_path / "res", "t", noisy_gap(specs, rng))
    result = cli(["score", str(tmp_path / "ref"), str(tmp_path / "res"), "--json"])
    assert result.exit_code == 0, result.output
    assert "collide" in result.stderr
    json.loads(result.stdout)


def test_help(cli):
    result = cli(["score", "--help"])
    assert result.exit_code == 0 and "REFERENCE_DIR" in result.output


def assert_bad(cli, ref, res, path, message):
    result = cli(["score", str(ref), str(res)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert str(path) in result.stderr and message in result.stderr, result.stderr


def test_missing_prediction_file(cli, submission):
    ref, res, _, _ = submission
    (res / "task2.predict").unlink()
    assert_bad(cli, ref, res, res / "task2.predict", "not found")


def test_prediction_not_json(cli, submission):
    ref, res, _, _ = submission
    path = write_prediction(res, "task1", '{"model_0": 1.0,')
    assert_bad(cli, ref, res, path, "malformed JSON")


def test_prediction_non_numeric_value(cli, submission):
    ref, res, _, predictions = submission
    path = write_prediction(res, "task1", {**predictions["task1"], "model_3": "high"})
    assert_bad(cli, ref, res, path, "expected a number")


def test_prediction_nan_value(cli, submission):
    ref, res, _, predictions = submission
    path = write_prediction(res, "task1", {**predictions["task1"], "model_5": float("nan")})
    assert "NaN" in path.read_text()
    assert_bad(cli, ref, res, path, "not finite")


def test_prediction_infinite_value(cli, submission):
    ref, res, _, predictions = submission
    path = write_prediction(res, "task1", {**predictions["task1"], "model_2": float("inf")})
    assert_bad(cli, ref, res, path, "not finite")


def test_prediction_missing_model(cli, submission):
    ref, res, _, predictions = submission
    kept = {m: v for m, v in predictions["task1"].items() if m != "model_4"}
    path = write_prediction(res, "task1", kept)
    assert_bad(cli, ref, res, path, "no value for 1 of the task's models (model_4)")


def test_prediction_extra_model(cli, submission):
    ref, res, _, predictions = submission
    path = write_prediction(res, "task1", {**predictions["task1"], "model_99": 0.5})
    assert_bad(cli, ref, res, path, "not in the task (model_99)")


def test_reference_incomplete_grid(cli, submission):
    ref, res, specs, predictions = submission
    config = ref / "task1" / "model_configs.json"
    del specs["task1"]["7"]
    config.write_text(json.dumps(specs["task1"]))
    kept = {m: v for m, v in predictions["task1"].items() if m != "model_7"}
    write_prediction(res, "task1", kept)
    assert_bad(cli, ref, res, config, "not complete")


def test_reference_duplicated_grid(cli, submission):
    ref, res, specs, predictions = submission
    config = ref / "task1" / "model_configs.json"
    specs["task1"]["12"] = specs["task1"]["3"]
    config.write_text(json.dumps(specs["task1"]))
    write_prediction(res, "task1", {**predictions["task1"], "model_12": 0.1})
    assert_bad(cli, ref, res, config, "not unique")


def test_reference_without_tasks(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    assert_bad(cli, tmp_path / "empty", tmp_path, tmp_path / "empty", "no model_configs.json")


def test_copied_sample_task_under_reference_data(cli, toy_path, tmp_path):
    ref = tmp_path / "reference_data" / "task_toy"
    ref.mkdir(parents=True)
    shutil.copy(toy_path / "model_configs.json", ref / "model_configs.json")
    specs = json.loads((ref / "model_configs.json").read_text())
    flipped = {f"model_{m}": -(s["metrics"]["train_acc"] - s["metrics"]["test_acc"]) for m, s in specs.items()}
    write_prediction(tmp_path / "res", "task_toy", flipped)  # keyed as the ingestion wrote it: model_<k>
    result = cli(["score", str(tmp_path / "reference_data"), str(tmp_path / "res")])
    assert result.exit_code == 0, result.output
    want = reference_cmi(flipped, specs)
    assert result.stdout.splitlines()[0] == f"task_task_toy_score: {want:0.12f}"


def test_public_data_root_enters_reference_data(cli, tmp_path):
    rng = np.random.default_rng(2)
    specs = write_task(tmp_path / "public" / "reference_data", "task1", rng)
    write_task(tmp_path / "public" / "input_data", "task1", rng)   # same name, not a reference
    prediction = noisy_gap(specs, rng)
    write_prediction(tmp_path / "res", "task1", prediction)
    result = cli(["score", str(tmp_path / "public"), str(tmp_path / "res"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tasks"] == {
        "task1": pytest.approx(100 * reference_cmi(prediction, specs), abs=1e-10)}


def test_bare_model_ids_are_refused_as_the_competition_matched_nothing(cli, submission):
    """The competition's scorer added model_ to the reference's ids only: a .predict keyed "0",
    "1" matched nothing there (nan). pgdl score says so instead of scoring it."""
    ref, res, _, predictions = submission
    write_prediction(res, "task1", {key.removeprefix("model_"): v for key, v in predictions["task1"].items()})
    assert_bad(cli, ref, res, res / "task1.predict", "lack the model_ prefix")


def test_duplicate_keys_in_a_prediction_are_refused(cli, submission):
    ref, res, _, predictions = submission
    items = [f'"{key}": {value}' for key, value in predictions["task1"].items()]
    write_prediction(res, "task1", "{" + ", ".join(items + [items[0]]) + "}")
    assert_bad(cli, ref, res, res / "task1.predict", "appears twice")


def test_duplicate_model_ids_in_the_reference_are_refused(cli, submission):
    ref, res, specs, _ = submission
    text = json.dumps(specs["task1"])
    first = text[1:text.index(', "1":')]  # '"0": {...}'
    (ref / "task1" / "model_configs.json").write_text("{" + first + ", " + text[1:])
    assert_bad(cli, ref, res, ref / "task1" / "model_configs.json", "appears twice")


def test_rankers_add_every_ranker_with_intervals_and_p_values(cli, submission):
    ref, res, specs, predictions = submission
    result = cli(["score", str(ref), str(res), "--rankers", "--resamples", "100", "--permutations", "100"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[2].startswith("task_average_score:")  # the competition's lines come first, unchanged
    table = "\n".join(lines[3:])
    for name in ("competition_cmi (x100)", "jiang_cmi_2", "kendall_tau", "granulated_kendall", "robust_sign_error"):
        assert name in table
    assert "p null" in table
    result = cli(["score", str(ref), str(res), "--json", "--rankers", "--resamples", "100", "--permutations", "100"])
    data = json.loads(result.stdout)
    kendall = data["rankers"]["kendall_tau"]["scores"]["prediction"]
    want = reference_cmi(predictions["task1"], specs["task1"])
    assert data["rankers"]["competition_cmi"]["scores"]["prediction"]["task1"]["value"] == pytest.approx(100 * want)
    for task in ("task1", "task2"):
        low, high = kendall[task]["ci"]
        assert low <= kendall[task]["value"] <= high
        assert 0 < kendall[task]["p_null"] <= 1
    kendall_ranker = data["rankers"]["kendall_tau"]
    assert kendall_ranker["average_ci"]["prediction"][0] <= kendall_ranker["average"]["prediction"]
