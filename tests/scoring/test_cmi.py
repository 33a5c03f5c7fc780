"""The competition's CMI: the fast implementation against the literal loop reference."""

from __future__ import annotations

import copy
import itertools
import json
import math

import numpy as np
import pytest

from pgdl_measures.errors import PGDLError
from scoring._reference import reference_breakdown, reference_cmi
from scoring.cmi import (
    CMIWarning,
    cmi_breakdown,
    competition_min,
    conditional_mutual_information,
    pair_counts_by_group,
)

pytestmark = pytest.mark.filterwarnings("ignore::scoring.cmi.CMIWarning")


def make_specs(rng, possible, *, shuffle=True, id_style="plain"):
    """A complete, unique grid over `possible` (name -> values) with random accuracies."""
    names = list(possible)
    combos = list(itertools.product(*(possible[n] for n in names)))
    if shuffle:
        combos = [combos[i] for i in rng.permutation(len(combos))]
    specs = {}
    for k, combo in enumerate(combos):
        mid = f"model_{k}" if id_style == "prefixed" else str(k)
        specs[mid] = {
            "hparams": {n: {"possible_values": list(possible[n]), "current_value": v}
                        for n, v in zip(names, combo)},
            "metrics": {"train_acc": round(float(rng.uniform(0.8, 1.0)), 2),
                        "test_acc": round(float(rng.uniform(0.6, 0.9)), 2)},
        }
    return specs


def gaps_of(specs):
    return {(m if "model" in m else f"model_{m}"):
            s["metrics"]["train_acc"] - s["metrics"]["test_acc"] for m, s in specs.items()}


def assert_close(fast, ref):
    if math.isnan(ref):
        assert math.isnan(fast)
    elif math.isinf(ref):
        assert fast == ref
    else:
        assert abs(fast - ref) <= 1e-12, (fast, ref)


def check_against_reference(prediction, specs, *, check_grid=True):
    fast = cmi_breakdown(prediction, specs, check_grid=check_grid)
    ref = reference_breakdown(prediction, specs)
    assert list(fast) == list(ref)
    for key in ref:
        assert_close(fast[key], ref[key])
    assert_close(conditional_mutual_information(prediction, specs, check_grid=check_grid),
                 reference_cmi(prediction, specs))
    return fast


VALUE_POOLS = [
    [64, 128, 256],
    [0.0, 0.5, 0.25],
    ["relu", "tanh", "elu"],
    [1, 11, 111],           # "1"+"11" == "11"+"1": colliding cell keys
    [1, "1", 2],            # distinct values with the same str()
    [True, False, None],
]


def random_possible(rng):
    """3-4 hyper-parameters; a colliding pool or a single value now and then."""
    n_h = int(rng.integers(3, 5))
    possible = {}
    for h in range(n_h):
        pool = VALUE_POOLS[int(rng.choice(len(VALUE_POOLS), p=[.25, .2, .2, .1, .1, .15]))]
        k = int(rng.choice([1, 2, 3], p=[.15, .5, .35]))
        possible[f"h{h}"] = list(pool[:k])
    while math.prod(len(v) for v in possible.values()) > 36:
        name = max(possible, key=lambda n: len(possible[n]))
        possible[name] = possible[name][:-1]
    return possible


def random_predictions(rng, specs):
    gaps = gaps_of(specs)
    ids = list(gaps)
    noise = {m: float(rng.normal()) for m in ids}
    yield noise
    yield {m: -v for m, v in noise.items()}                         # sign flip
    yield {m: round(v, 0) for m, v in noise.items()}                # many ties
    yield {m: 3.0 for m in ids}                                     # constant
    yield dict(gaps)                                                # the gap itself
    yield {m: -v for m, v in gaps.items()}
    yield {m: gaps[m] + 0.02 * noise[m] for m in ids}


@pytest.mark.parametrize("seed", range(16))
def test_matches_reference_on_random_grids(seed):
    rng = np.random.default_rng(seed)
    specs = make_specs(rng, random_possible(rng), id_style="prefixed" if seed % 2 else "plain")
    for prediction in random_predictions(rng, specs):
        check_against_reference(prediction, specs)


@pytest.mark.parametrize("seed", range(6))
def test_matches_reference_on_incomplete_grids_with_nan_cells(seed):
    rng = np.random.default_rng(100 + seed)
    possible = {"a": [1, 2, 3], "b": ["x", "y"], "c": [0.1, 0.2]}
    specs = make_specs(rng, possible)
    a, b = int(rng.integers(1, 4)), ["x", "y"][int(rng.integers(2))]
    drop = {m for m, s in specs.items()
            if s["hparams"]["a"]["current_value"] == a and s["hparams"]["b"]["current_value"] == b}
    drop |= set(rng.choice(list(specs), size=int(rng.integers(0, 3)), replace=False))
    for mid in drop:
        del specs[mid]
    for prediction in random_predictions(rng, specs):
        breakdown = check_against_reference(prediction, specs, check_grid=False)
        assert any(math.isnan(v) for v in breakdown.values())


def test_bit_identical_on_the_sample_task(toy_path):
    specs = json.loads((toy_path / "model_configs.json").read_text())
    rng = np.random.default_rng(0)
    for prediction in random_predictions(rng, specs):
        fast = cmi_breakdown(prediction, specs)
        assert fast == reference_breakdown(prediction, specs)


def test_gap_scores_high_and_its_negative_lower_on_the_sample_task(toy_path):
    specs = json.loads((toy_path / "model_configs.json").read_text())
    gaps = gaps_of(specs)
    assert len(gaps) == 18
    good = conditional_mutual_information(gaps, specs)
    flipped = conditional_mutual_information({m: -g for m, g in gaps.items()}, specs)
    assert good == pytest.approx(1.0, abs=1e-9)   # gap ties fall in the same cell either way
    assert 0 < flipped < 0.9   # self-pairs and ties make the score sign-dependent
    assert conditional_mutual_information({m: 1.0 for m in gaps}, specs) == 0.0
    keys = list(cmi_breakdown(gaps, specs))
    assert len(keys) == 6 and keys[0] == ("num_units", "num_layers")


def test_model_ids_get_the_prefix_in_specs_and_prediction():
    rng = np.random.default_rng(3)
    specs = make_specs(rng, {"a": [1, 2], "b": [3, 4, 5]})
    gaps = gaps_of(specs)
    plain = {m.removeprefix("model_"): v for m, v in gaps.items()}
    want = conditional_mutual_information(gaps, specs)
    assert conditional_mutual_information(plain, specs) == want
    prefixed = {f"model_{m}": s for m, s in specs.items()}
    assert conditional_mutual_information(gaps, prefixed) == want
    with pytest.raises(PGDLError, match="both name"):
        conditional_mutual_information({**gaps, "0": 1.0}, specs)


def test_colliding_value_strings_share_a_cell_and_warn():
    rng = np.random.default_rng(4)
    specs = make_specs(rng, {"a": [1, 11], "b": ["x", "y"]})
    prediction = {m: float(rng.normal()) for m in gaps_of(specs)}
    with pytest.warns(CMIWarning, match="collide"):
        value = conditional_mutual_information(prediction, specs)
    assert_close(value, reference_cmi(prediction, specs))
    assert math.isnan(cmi_breakdown(prediction, specs)[("a", "b")])  # the emptied cell


def test_value_whose_string_matches_no_possible_value_skips_pairs_and_warns():
    rng = np.random.default_rng(5)
    specs = make_specs(rng, {"lr": [1, 2], "bs": [32, 64], "wd": [0, 5]}, shuffle=False)
    specs["0"]["hparams"]["lr"]["current_value"] = 1.0   # == 1 for the grid check, "1.0" != "1"
    prediction = {m: float(rng.normal()) for m in gaps_of(specs)}
    with pytest.warns(CMIWarning, match=r"skipped.*lr: model_0"):
        value = conditional_mutual_information(prediction, specs)
    assert_close(value, reference_cmi(prediction, specs))
    check_against_reference(prediction, specs)


def test_nan_set_makes_the_running_min_order_dependent():
    assert competition_min({"a": 0.5, "b": math.nan})[0] == "b"
    assert math.isnan(competition_min({"a": 0.5, "b": math.nan})[1])
    assert competition_min({"a": math.nan, "b": 0.7}) == ("b", 0.7)
    assert competition_min({"a": 0.2, "b": math.nan, "c": 0.9}) == ("c", 0.9)
    assert competition_min({"a": 0.2, "b": 0.4, "c": 0.2}) == ("a", 0.2)
    assert competition_min({}) == (None, math.inf)


def test_nan_result_warns_with_the_returned_value():
    rng = np.random.default_rng(6)
    specs = make_specs(rng, {"a": [1, 2], "b": [3, 4]}, shuffle=False)
    del specs["3"]
    prediction = {m: float(rng.normal()) for m in gaps_of(specs)}
    with pytest.warns(CMIWarning, match="running min"):
        value = conditional_mutual_information(prediction, specs, check_grid=False)
    assert_close(value, reference_cmi(prediction, specs))


def test_single_valued_hyperparameter_and_too_few_hyperparameters():
    rng = np.random.default_rng(7)
    specs = make_specs(rng, {"a": [1, 2, 3], "const": ["same"], "b": [0.1, 0.2]})
    for prediction in random_predictions(rng, specs):
        check_against_reference(prediction, specs)
    one = make_specs(rng, {"a": [1, 2, 3]})
    with pytest.warns(CMIWarning, match="fewer than two"):
        assert conditional_mutual_information(gaps_of(one), one) == math.inf


def test_inputs_are_not_mutated():
    rng = np.random.default_rng(8)
    specs = make_specs(rng, {"a": [1, 2], "b": [3, 4]})
    prediction = gaps_of(specs)
    before = copy.deepcopy((specs, prediction))
    conditional_mutual_information(prediction, specs)
    assert (specs, prediction) == before


def test_grid_and_prediction_errors():
    rng = np.random.default_rng(9)
    specs = make_specs(rng, {"a": [1, 2], "b": [3, 4]}, shuffle=False)
    gaps = gaps_of(specs)
    with pytest.raises(PGDLError, match="no value"):
        conditional_mutual_information({m: v for m, v in list(gaps.items())[1:]}, specs)
    with pytest.raises(PGDLError, match="EXCEEDED"):
        conditional_mutual_information({**gaps, "model_0": "EXCEEDED"}, specs)
    incomplete = {m: s for m, s in specs.items() if m != "1"}
    with pytest.raises(PGDLError, match="not complete"):
        conditional_mutual_information({m: v for m, v in gaps.items() if m != "model_1"},
                                       incomplete)


def brute_pair_counts(x, y, gid, k):
    out = {s: np.zeros((k, k)) for s in ("gt", "mt", "gt_mt", "gt_ml")}
    for i in range(len(x)):
        for j in range(len(x)):
            a, b = gid[i], gid[j]
            out["gt"][a, b] += x[i] > x[j]
            out["mt"][a, b] += y[i] > y[j]
            out["gt_mt"][a, b] += x[i] > x[j] and y[i] > y[j]
            out["gt_ml"][a, b] += x[i] > x[j] and y[i] < y[j]
    return out


@pytest.mark.parametrize("n", [1, 2, 5, 57, 130])
def test_pair_counts_by_group_matches_brute_force(n):
    rng = np.random.default_rng(n)
    x = np.round(rng.normal(size=n), 1)          # many ties in x, in y, and in both
    y = np.round(rng.normal(size=n), 1)
    y[: n // 4] = x[: n // 4]
    parts = [(rng.integers(0, 4, size=n), 4), (rng.integers(0, 7, size=n), 7)]
    got = pair_counts_by_group(x, y, parts, ("gt", "mt", "gt_mt", "gt_ml"))
    for (gid, k), block in zip(parts, got):
        want = brute_pair_counts(x, y, gid, k)
        assert np.array_equal(block["size"], np.bincount(gid, minlength=k))
        for stat, matrix in want.items():
            assert np.array_equal(block[stat], matrix), stat
