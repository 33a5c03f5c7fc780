"""Rankers: each against a slow obvious implementation, plus the shared interface."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter, defaultdict

import numpy as np
import pytest
from scipy.stats import kendalltau

from pgdl_measures.errors import PGDLError
from scoring.cmi import cmi_breakdown, competition_min, conditional_mutual_information
from scoring.rankers import (
    RANKERS,
    Ranker,
    bootstrap_ci,
    get_ranker,
    granulated_kendall_breakdown_grid,
    jiang_cmi_breakdown_grid,
    prepare_values,
)

pytestmark = pytest.mark.filterwarnings("ignore::scoring.cmi.CMIWarning")


def make_specs(rng, possible, *, decimals=2):
    names = list(possible)
    specs = {}
    for k, combo in enumerate(itertools.product(*(possible[n] for n in names))):
        specs[str(k)] = {
            "hparams": {n: {"possible_values": list(possible[n]), "current_value": v}
                        for n, v in zip(names, combo)},
            "metrics": {"train_acc": round(float(rng.uniform(0.8, 1.0)), decimals),
                        "test_acc": round(float(rng.uniform(0.6, 0.9)), decimals)},
        }
    return specs


def table(specs):
    """ids, gaps, hyper-parameter names and value indices, the slow way."""
    ids = [f"model_{m}" for m in specs]
    gaps = [s["metrics"]["train_acc"] - s["metrics"]["test_acc"] for s in specs.values()]
    first = next(iter(specs.values()))["hparams"]
    names = list(first)
    codes = [tuple(first[h]["possible_values"].index(s["hparams"][h]["current_value"])
                   for h in names) for s in specs.values()]
    return ids, gaps, names, codes


def slow_jiang(values, gaps, codes, subset):
    cells = defaultdict(Counter)
    for i, j in itertools.permutations(range(len(gaps)), 2):
        if gaps[i] == gaps[j]:
            continue
        u = (tuple(codes[i][s] for s in subset), tuple(codes[j][s] for s in subset))
        cells[u][(gaps[i] > gaps[j], int(np.sign(values[i] - values[j])))] += 1  # V_mu = 0 on a tie
    total = sum(sum(c.values()) for c in cells.values())
    mi = h = 0.0
    for c in cells.values():
        n_u = sum(c.values())
        for x in (True, False):
            n_x = c[(x, 1)] + c[(x, 0)] + c[(x, -1)]
            if n_x:
                h += n_x / total * math.log2(n_u / n_x)
            for y in (1, 0, -1):
                n_y = c[(True, y)] + c[(False, y)]
                if c[(x, y)]:
                    mi += c[(x, y)] / total * math.log2(c[(x, y)] * n_u / (n_x * n_y))
    return mi / h if h > 0 else math.nan


def slow_tau(values, gaps):
    n = len(gaps)
    if n < 2:
        return math.nan
    s = sum(np.sign(values[i] - values[j]) * np.sign(gaps[i] - gaps[j])
            for i, j in itertools.permutations(range(n), 2))
    return s / (n * (n - 1))


def slow_granulated(values, gaps, codes, names):
    out = {}
    for h, name in enumerate(names):
        groups = defaultdict(list)
        for i, c in enumerate(codes):
            groups[c[:h] + c[h + 1:]].append(i)
        taus = [slow_tau([values[i] for i in g], [gaps[i] for i in g])
                for g in groups.values() if len(g) > 1]
        out[(name,)] = sum(taus) / len(taus) if taus else math.nan
    return out


def same(a, b, tol=1e-12):
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol


POSSIBLE = {"width": [64, 128, 256], "depth": [1, 2], "act": ["relu", "tanh"], "one": [0.5]}


@pytest.mark.parametrize("seed", range(4))
def test_jiang_cmi_matches_slow_definition(seed):
    rng = np.random.default_rng(seed)
    specs = make_specs(rng, POSSIBLE)
    ids, gaps, names, codes = table(specs)
    for values in (rng.normal(size=len(ids)), np.round(rng.normal(size=len(ids))), np.array(gaps)):
        array, grid = prepare_values(dict(zip(ids, values)), specs)
        got = jiang_cmi_breakdown_grid(array, grid)
        subsets = ([()] + [(h,) for h in range(len(names))]
                   + list(itertools.combinations(range(len(names)), 2)))
        assert list(got) == [tuple(names[s] for s in sub) for sub in subsets]
        for sub in subsets:
            assert same(got[tuple(names[s] for s in sub)], slow_jiang(values, gaps, codes, sub))


@pytest.mark.parametrize("seed", range(4))
def test_kendall_and_granulated_match_slow_definitions(seed):
    rng = np.random.default_rng(10 + seed)
    specs = make_specs(rng, POSSIBLE)
    ids, gaps, names, codes = table(specs)
    for values in (rng.normal(size=len(ids)), np.round(rng.normal(size=len(ids)))):
        prediction = dict(zip(ids, values))
        assert same(RANKERS["kendall_tau"](prediction, specs), slow_tau(values, gaps))
        array, grid = prepare_values(prediction, specs)
        want = slow_granulated(values, gaps, codes, names)
        got = granulated_kendall_breakdown_grid(array, grid)
        assert got.keys() == want.keys()
        for key in want:
            assert same(got[key], want[key])
        assert math.isnan(got[("one",)])  # a single-valued hyper-parameter has no pairs
        psi = [v for v in want.values() if not math.isnan(v)]
        assert same(RANKERS["granulated_kendall"](prediction, specs), sum(psi) / len(psi))


def test_kendall_equals_scipy_without_ties():
    rng = np.random.default_rng(20)
    specs = make_specs(rng, POSSIBLE, decimals=6)
    ids, gaps, _, _ = table(specs)
    values = rng.normal(size=len(ids))
    assert len(set(gaps)) == len(gaps)
    tau = RANKERS["kendall_tau"](dict(zip(ids, values)), specs)
    assert tau == pytest.approx(kendalltau(values, gaps).statistic, abs=1e-12)


def test_perfect_measure():
    rng = np.random.default_rng(21)
    specs = make_specs(rng, POSSIBLE, decimals=6)
    ids, gaps, _, _ = table(specs)
    prediction = dict(zip(ids, gaps))
    for name in ("jiang_cmi_0", "jiang_cmi_1", "jiang_cmi_2", "kendall_tau", "granulated_kendall"):
        assert RANKERS[name](prediction, specs) == pytest.approx(1.0), name


def test_registry_interface_and_declared_sign_dependence():
    rng = np.random.default_rng(22)
    specs = make_specs(rng, POSSIBLE)
    ids, gaps, _, _ = table(specs)
    values = {m: g + 0.03 * rng.normal() for m, g in zip(ids, gaps)}
    negated = {m: -v for m, v in values.items()}
    assert set(RANKERS) >= {"competition_cmi", "jiang_cmi_2", "kendall_tau", "granulated_kendall"}
    for name, ranker in RANKERS.items():
        assert isinstance(ranker, Ranker) and ranker.name == name
        assert isinstance(ranker.sign_dependent, bool) and ranker.description
        assert get_ranker(name) is ranker
        score, flipped = ranker(values, specs), ranker(negated, specs)
        assert math.isfinite(score)
        if ranker.sign_dependent:
            assert not same(score, flipped, tol=1e-9), name
        else:
            assert same(score, flipped, tol=1e-9), name
    with pytest.raises(PGDLError, match="unknown ranker"):
        get_ranker("nope")


def test_breakdowns_name_the_set_behind_the_score():
    rng = np.random.default_rng(23)
    specs = make_specs(rng, POSSIBLE)
    ids, gaps, _, _ = table(specs)
    values = {m: float(v) for m, v in zip(ids, rng.normal(size=len(ids)))}
    competition = RANKERS["competition_cmi"]
    breakdown = competition.breakdown(values, specs)
    assert breakdown == cmi_breakdown(values, specs)
    key = competition.selected_set(breakdown)
    assert breakdown[key] == competition(values, specs)
    assert breakdown[key] == conditional_mutual_information(values, specs)
    assert competition_min(breakdown)[0] == key
    jiang = RANKERS["jiang_cmi_2"]
    b2 = jiang.breakdown(values, specs)
    assert all(len(k) == 2 for k in b2) and len(b2) == 6
    assert b2[jiang.selected_set(b2)] == jiang(values, specs)
    assert RANKERS["kendall_tau"].breakdown(values, specs) == {}


def test_missing_values_leave_models_out_and_unknown_ids_fail():
    rng = np.random.default_rng(24)
    specs = make_specs(rng, POSSIBLE)
    ids, gaps, _, _ = table(specs)
    values = {m: float(v) for m, v in zip(ids, rng.normal(size=len(ids)))}
    subset = dict(list(values.items())[:10])
    sub_ids = list(subset)
    assert same(RANKERS["kendall_tau"](subset, specs),
                slow_tau(list(subset.values()), [gaps[ids.index(m)] for m in sub_ids]))
    with pytest.raises(PGDLError, match="not in the task"):
        RANKERS["kendall_tau"]({**values, "model_999": 1.0}, specs)
    with pytest.raises(PGDLError, match="not finite"):
        RANKERS["kendall_tau"]({**values, ids[0]: math.nan}, specs)


def test_bootstrap_is_seeded_and_brackets_the_sampling_spread(toy_path):
    specs = json.loads((toy_path / "model_configs.json").read_text())
    rng = np.random.default_rng(25)
    values = {f"model_{m}": s["metrics"]["train_acc"] - s["metrics"]["test_acc"]
              + 0.02 * rng.normal() for m, s in specs.items()}
    for name, ranker in RANKERS.items():
        low, high = bootstrap_ci(ranker, values, specs, n_resamples=60, seed=1)
        assert (low, high) == ranker.bootstrap_ci(values, specs, n_resamples=60, seed=1), name
        assert low <= high, name
    low, high = bootstrap_ci(RANKERS["kendall_tau"], values, specs, n_resamples=200, seed=0)
    assert -1 <= low < RANKERS["kendall_tau"](values, specs) < high <= 1
    narrow = bootstrap_ci(RANKERS["kendall_tau"], values, specs, n_resamples=200, confidence=0.5)
    assert low <= narrow[0] <= narrow[1] <= high
