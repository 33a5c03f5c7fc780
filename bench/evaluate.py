"""Benchmark of `pgdl evaluate` on a Dask cluster (JSON): the README's main job (every default
measure on data/mini, a fresh output folder each time) run one model at a time (serial), on a
local cluster of 1 worker and of 2 workers, side by side in one run.

Figures: the wall time of each run (:func:`pgdl_measures.evaluate.pipeline.evaluate`, what the
CLI calls, without the terminal drawing); ``ratio_workers2_over_workers1`` (goal at most 0.6 on
2 cores); the scheduler overhead per model: for each model's task, the seconds from its
submission to its result at the driver minus the seconds it ran on its worker, as a fraction of
the latter (``overhead_fraction``: median and total over the run; goal below 1%). The values
of every run are checked to be bitwise those of the serial run (``same_values``).

Usage::

    python bench/evaluate.py [TASK] [--models model_0,model_1] [--workers 1,2] [--no-serial]
        [--resamples 0] [--out FILE.json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _run(task: str, out: Path, workers: int | None, models: list[str] | None, resamples: int) -> dict:
    from pgdl_measures.evaluate.pipeline import evaluate
    from pgdl_measures.evaluate.store import ResultStore

    start = time.perf_counter()
    result = evaluate([task], (), out, models=models, n_resamples=resamples, n_permutations=resamples,
                      workers=workers)
    wall = time.perf_counter() - start
    with ResultStore.in_folder(out) as store:
        values = {r.key: (r.status, r.value) for r in store.rows()}
    figures = {"workers": workers or "serial", "wall_seconds": round(wall, 2),
               "results": result.stats.total_computed, "failed": result.failed_counts()}
    dispatch = result.stats.dispatch
    if dispatch:
        fractions = [(d["round_trip"] - d["compute"]) / d["compute"] for d in dispatch if d["compute"] > 0]
        overhead = sum(d["round_trip"] - d["compute"] for d in dispatch)
        figures.update({
            "models": len(dispatch), "worker_pids": sorted({d["pid"] for d in dispatch}),
            "overhead_seconds_per_model_median": round(statistics.median(d["round_trip"] - d["compute"]
                                                                         for d in dispatch), 4),
            "overhead_fraction_median": round(statistics.median(fractions), 5) if fractions else None,
            "overhead_fraction_total": round(overhead / sum(d["compute"] for d in dispatch), 5)})
    return figures, values


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task", nargs="?", default=str(ROOT / "data" / "mini"))
    parser.add_argument("--models", default=None, help="only these models (comma-separated); default all")
    parser.add_argument("--workers", default="1,2", help="local cluster sizes to run, comma-separated")
    parser.add_argument("--no-serial", action="store_true", help="skip the serial run")
    parser.add_argument("--resamples", type=int, default=0, help="ranking resamples and permutations (default 0: "
                                                                 "the ranking is not what is measured)")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    parser.add_argument("--keep", default=None, help="keep each run's output folder under DIR (run0, run1, ...)")
    args = parser.parse_args(argv)
    models = args.models.split(",") if args.models else None
    sizes = [None] * (not args.no_serial) + [int(n) for n in args.workers.split(",") if n]
    report = {"machine": {"platform": platform.platform(), "cpus": len(os.sched_getaffinity(0)),
                          "python": platform.python_version(),
                          "keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
                          "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")},
              "task": args.task, "models": models or "all", "runs": []}
    reference = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.keep:
            tmp = args.keep
            Path(tmp).mkdir(parents=True, exist_ok=True)
        for i, workers in enumerate(sizes):
            figures, values = _run(args.task, Path(tmp) / f"run{i}", workers, models, args.resamples)
            reference = values if reference is None else reference
            figures["same_values"] = values == reference
            report["runs"].append(figures)
            print(json.dumps(figures), file=sys.stderr, flush=True)
    walls = {run["workers"]: run["wall_seconds"] for run in report["runs"]}
    if 1 in walls and 2 in walls:
        report["ratio_workers2_over_workers1"] = round(walls[2] / walls[1], 3)
    if "serial" in walls and 2 in walls:
        report["ratio_workers2_over_serial"] = round(walls[2] / walls["serial"], 3)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()
