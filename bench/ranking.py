"""Benchmark: ranking measures from a results store, the vectorized engine against the loop.

Prints one JSON object. Reads every stored value of a results folder (default: the committed
``results/ranking``: 26 measures on data/mini and data/mnist_conv; nothing is computed), then, in
this run:

* ``rank_all``: :func:`scoring.ranking.rank_measures` with every ranker, 1,000 half-sample
  resamples and 1,000 permutations per score, paired comparisons, on every core (wall seconds);
* ``rank_all_one_process``: the same in one process;
* ``like_for_like``: the engine doing only what the loop did (its 6 rankers, bootstrap, no
  permutations);
* ``main_job``: the ranking phase of the README's main job (the 8 default measures on data/mini);
* ``loop``: the loop this replaces (``scoring.rankers.bootstrap_ci_grid``: one Python scoring per
  bootstrap resample, the 6 rankers it had, 1,000 resamples) timed on ``--loop-units`` (task,
  measure) units and extrapolated to all of them (its full run took about 30 minutes);

and their ratios. Check that both rank the same: the engine's bootstrap resamples equal the
loop's (tests/scoring/test_resampling.py).

    python bench/ranking.py [--results results/ranking] [--loop-units 4] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root

from pgdl_measures.evaluate.pipeline import collect_results, resolve_measures  # noqa: E402
from pgdl_measures.evaluate.store import ResultStore  # noqa: E402
from pgdl_measures.registry import list_measures  # noqa: E402
from pgdl_measures.tasks import find_tasks  # noqa: E402
from scoring.predictions import load_reference  # noqa: E402
from scoring.rankers import RANKERS, bootstrap_ci_grid, prepare_values  # noqa: E402
from scoring.ranking import TaskValues, rank_measures  # noqa: E402
from scoring.rules import Status  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MEASURES = ["agn", "gradient_norm", "vc_dimension", "jacobian_norm", "distance_from_init", "sharpness",
                    "sharpness_pgdl_v1", "sharpness_pgdl_v2"]


def stored_values(results_dir: str, task_dirs: list[str], measure_names: list[str]) -> tuple[list[TaskValues], dict]:
    """The stored values of the measures (default parameters) for the tasks' current contents."""
    tasks = [t for d in task_dirs for t in find_tasks(d)]
    measures = resolve_measures(measure_names)
    with ResultStore.in_folder(results_dir) as store:
        backend = next(iter(store)).backend
        results = collect_results(store, tasks, measures, backend)
    out = []
    for task in tasks:
        specs = load_reference(task.model_configs_path)[0]
        values = {m.name: {model: row.value for model, row in results[(task.name, m.name)].items()
                           if row is not None and row.status == Status.OK} for m in measures}
        out.append(TaskValues(task.name, specs, values, len(results[(task.name, measures[0].name)])))
    return out, {m.name: m.direction for m in measures}


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=os.path.join(ROOT, "results", "ranking"))
    parser.add_argument("--tasks", nargs="+", default=[os.path.join(ROOT, "data", "mini"),
                                                       os.path.join(ROOT, "data", "mnist_conv")])
    parser.add_argument("--loop-units", type=int, default=4)
    parser.add_argument("--out")
    args = parser.parse_args()

    every = list(list_measures())
    tasks, directions = stored_values(args.results, args.tasks, every)
    directions = {m: d for m, d in directions.items() if any(t.values.get(m) for t in tasks)}
    units = sum(1 for t in tasks for m in directions if t.values.get(m))
    warnings.simplefilter("ignore")
    wall_all, ranking = timed(lambda: rank_measures(tasks, directions))
    wall_one, _ = timed(lambda: rank_measures(tasks, directions, workers=1))
    loop_rankers = {k: v for k, v in RANKERS.items() if k != "robust_sign_error"}
    wall_like, _ = timed(lambda: rank_measures(tasks, directions, rankers=loop_rankers, scheme="bootstrap",
                                               n_permutations=0))
    mini = [t for t in tasks if t.name == "digits_vgg"]
    main_dirs = {m: directions[m] for m in DEFAULT_MEASURES if m in directions}
    wall_main, _ = timed(lambda: rank_measures(mini, main_dirs))
    wall_main_one, _ = timed(lambda: rank_measures(mini, main_dirs, workers=1))

    sample = [(t, m) for t in tasks for m in directions if t.values.get(m)][:: max(1, units // args.loop_units)]
    sample = sample[:args.loop_units]
    start = time.perf_counter()
    for task, measure in sample:
        array, grid = prepare_values({k: directions[measure] * v for k, v in task.values[measure].items()},
                                     task.model_specs)
        for ranker in loop_rankers.values():
            ranker.score_grid(array, grid)
            bootstrap_ci_grid(ranker, array, grid, n_resamples=1000, seed=0)
    loop_per_unit = (time.perf_counter() - start) / len(sample)
    loop_total = loop_per_unit * units
    report = {
        "machine": {"cpus": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)), "platform": platform.platform(),
                    "python": platform.python_version(), "loadavg_at_end": os.getloadavg()},
        "store": os.path.relpath(args.results, ROOT),
        "units": units, "measures": len(directions), "tasks": [t.name for t in tasks],
        "rankers": list(RANKERS), "n_resamples": ranking.n_resamples, "scheme": ranking.scheme,
        "n_permutations": ranking.n_permutations,
        "rank_all_wall_s": round(wall_all, 2), "rank_all_one_process_wall_s": round(wall_one, 2),
        "main_job_ranking_wall_s": round(wall_main, 2), "main_job_ranking_one_process_wall_s": round(wall_main_one, 2),
        "loop": {"units_timed": len(sample), "rankers": list(loop_rankers), "seconds_per_unit": round(loop_per_unit, 2),
                 "extrapolated_total_s": round(loop_total, 1)},
        "like_for_like_wall_s": round(wall_like, 2),
        "like_for_like_note": "the loop's work only: its 6 rankers, 1,000 bootstrap resamples, no permutations",
        "speedup_vs_loop": round(loop_total / wall_all, 1),
        "speedup_like_for_like": round(loop_total / wall_like, 1),
        "goals": {"rank_all_wall_s_max": 20, "main_job_ranking_wall_s_max": 3},
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
