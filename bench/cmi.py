"""Benchmark: the vectorized competition CMI against the literal loop reference.

Prints one JSON object: on 1,000 models with 5 hyper-parameters (grid 4x5x5x5x2, 20 ordered
conditioning sets), the time of the literal reference (``scoring/_reference.py``) and of the
fast path (``scoring.cmi``) measured side by side in this run, their ratio and the largest
absolute difference of the 20 per-set values (wall and process CPU time: the machine may be
shared); then the fast path alone on 10,000 models
(grid 4x5x5x10x10) and the other rankers on 1,000 models.

    python bench/cmi.py [--seed 0] [--repeats 3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root

from scoring._reference import reference_breakdown  # noqa: E402
from scoring.cmi import CMIWarning, cmi_breakdown, conditional_mutual_information  # noqa: E402
from scoring.rankers import RANKERS  # noqa: E402


def synthetic_task(shape, seed):
    """A complete grid of the given shape with random accuracies and a noisy-gap measure."""
    rng = np.random.default_rng(seed)
    names = [f"h{i}" for i in range(len(shape))]
    possible = {n: [round(0.1 * (v + 1), 1) if i % 2 else 2 ** (v + 4) for v in range(k)]
                for i, (n, k) in enumerate(zip(names, shape))}
    specs, prediction = {}, {}
    for k, combo in enumerate(itertools.product(*possible.values())):
        train, test = round(float(rng.uniform(0.8, 1.0)), 3), round(float(rng.uniform(0.6, 0.9)), 3)
        specs[str(k)] = {"hparams": {n: {"possible_values": possible[n], "current_value": v}
                                     for n, v in zip(names, combo)},
                         "metrics": {"train_acc": train, "test_acc": test}}
        prediction[f"model_{k}"] = round(train - test + 0.05 * float(rng.normal()), 3)  # some ties
    return specs, prediction


def best_time(fn, repeats):
    """(best wall seconds, best CPU seconds of this process, result) over `repeats` calls."""
    best, best_cpu = math.inf, math.inf
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
    return best, best_cpu, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="fast-path repeats (best taken)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", CMIWarning)

    specs, prediction = synthetic_task((4, 5, 5, 5, 2), args.seed)
    ref_s, ref_cpu, ref = best_time(lambda: reference_breakdown(prediction, specs), 1)
    fast_s, fast_cpu, fast = best_time(lambda: cmi_breakdown(prediction, specs), args.repeats)
    diffs = [abs(fast[k] - ref[k]) for k in ref]
    score_s, _, _ = best_time(lambda: conditional_mutual_information(prediction, specs),
                              args.repeats)

    big_specs, big_prediction = synthetic_task((4, 5, 5, 10, 10), args.seed + 1)
    big_s, big_cpu, big_score = best_time(
        lambda: conditional_mutual_information(big_prediction, big_specs), 1)

    rankers = {}
    for name, ranker in RANKERS.items():
        seconds, _, value = best_time(lambda ranker=ranker: ranker(prediction, specs), args.repeats)
        rankers[name] = {"seconds": round(seconds, 5), "value": value}

    print(json.dumps({
        "benchmark": "competition CMI, vectorized vs literal loop reference",
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "cpus": os.cpu_count()},
        "models": len(specs), "hyperparameters": 5, "grid": [4, 5, 5, 5, 2],
        "conditioning_sets": len(ref),
        "reference_seconds": round(ref_s, 3),
        "fast_seconds": round(fast_s, 5),
        "speedup": round(ref_s / fast_s, 1),
        "reference_cpu_seconds": round(ref_cpu, 3),
        "fast_cpu_seconds": round(fast_cpu, 5),
        "speedup_cpu": round(ref_cpu / fast_cpu, 1) if fast_cpu > 0 else None,
        "max_abs_diff": max(diffs),
        "identical": fast == ref,
        "score": conditional_mutual_information(prediction, specs),
        "score_seconds": round(score_s, 5),
        "fast_10000_models": {"grid": [4, 5, 5, 10, 10], "models": len(big_specs),
                              "seconds": round(big_s, 3), "cpu_seconds": round(big_cpu, 3),
                              "score": big_score},
        "rankers_1000_models": rankers,
    }, indent=2))


if __name__ == "__main__":
    main()
