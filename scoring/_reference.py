"""Slow, literal re-statement of the competition's CMI: the reference for tests and bench.

It follows the competition's scoring program step by step -- nested Python loops over ordered
pairs of model ids, a dict of cell keys built by concatenating value strings (later duplicates
win), a 2 x 2 x C count table, a KeyError on an unknown key skipping the pair, per-cell entropy
and mutual information with the same 1e-12 guard, plain means over cells and a running
``min`` from ``inf`` -- so :mod:`scoring.cmi` can be checked against it. Do not use it for
real work: it is O(n^2) Python per conditioning set. It does not mutate its inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def _normalized(model_specs: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for mid, spec in model_specs.items():
        out[mid if "model" in mid else "model_" + mid] = spec
    return out


def _entropy(counts: np.ndarray) -> float:
    probs = counts / counts.sum()
    return -np.sum(probs * np.log2(probs + 1e-12))


def _cell_mi_and_entropy(table: np.ndarray) -> tuple[float, float]:
    n = table.sum()
    gap_marginal = table.sum(axis=1)
    measure_marginal = table.sum(axis=0)
    h_gap = _entropy(gap_marginal)
    mi = 0.0
    for a in range(2):
        for b in range(2):
            joint = table[a, b] / n
            if joint == 0:
                continue
            mi += joint * np.log2(joint / ((gap_marginal[a] / n) * (measure_marginal[b] / n)))
    return mi, h_gap


def reference_set_value(prediction: Mapping[str, float], specs: Mapping[str, Any],
                        gaps: Mapping[str, float], h1: str, h2: str,
                        possible: Mapping[str, list]) -> float:
    """The competition's value of one conditioning set (h1, h2), literally."""
    labels: list[str] = []
    for h in (h1, h2):
        pairs = [str(v) + str(w) for v in possible[h] for w in possible[h]]
        labels = pairs if not labels else [x + y for x in labels for y in pairs]
    column = {}
    for i, label in enumerate(labels):
        column[label] = i
    table = np.zeros((2, 2, len(labels)))
    for m1 in specs:
        for m2 in specs:
            try:
                a = 0 if gaps[m1] > gaps[m2] else 1
                b = 0 if prediction[m1] > prediction[m2] else 1
                key = ""
                for h in (h1, h2):
                    key += (str(specs[m1]["hparams"][h]["current_value"])
                            + str(specs[m2]["hparams"][h]["current_value"]))
                table[a, b, column[key]] += 1
            except KeyError:
                continue
    total_mi, total_h = 0, 0
    with np.errstate(divide="ignore", invalid="ignore"):
        for c in range(table.shape[-1]):
            mi, h = _cell_mi_and_entropy(table[:, :, c])
            total_mi += mi
            total_h += h
        total_mi /= table.shape[-1]
        total_h /= table.shape[-1]
        return total_mi / total_h


def reference_breakdown(prediction: Mapping[str, float],
                        model_specs: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    """Per ordered pair of hyper-parameters, the competition's value (prediction keys must be
    the normalized ``model_<id>`` ids)."""
    specs = _normalized(model_specs)
    gaps = {mid: s["metrics"]["train_acc"] - s["metrics"]["test_acc"] for mid, s in specs.items()}
    first = next(iter(specs.values()))["hparams"]
    names = list(first)
    possible = {h: first[h]["possible_values"] for h in names}
    out = {}
    for h1 in names:
        for h2 in names:
            if h1 != h2:
                out[(h1, h2)] = reference_set_value(prediction, specs, gaps, h1, h2, possible)
    return out


def reference_cmi(prediction: Mapping[str, float], model_specs: Mapping[str, Any]) -> float:
    """The competition's task score, literally: running ``min`` from ``inf`` over the sets."""
    result = np.inf
    for value in reference_breakdown(prediction, model_specs).values():
        result = min(value, result)
    return float(result)
