"""Benchmark of the hyper-parameter search (JSON): what an AGN objective costs, and the
overheads of the Dask scheduler and of the Optuna storage per trial.

(a) AGN-objective cost: the same trials (same configurations, seeds, epochs), trained once as a
    validation-objective search trains them (no AGN tracker) and once as an AGN-objective search
    does (online AGN, and exact AGN with ``--exact``), one after another in this process through
    :func:`pgdl_measures.search.objectives.run_task`, after a first (compiling) warm-up trial;
    the ratio of total seconds (goal: at most 1.15; the study measured 4.2 with exact AGN).
(b) Scheduler overhead per trial: a no-op task through :class:`pgdl_measures.engine.Engine`
    (a ``LocalCluster`` of one worker process): the round trip of one task at a time (latency)
    and of a batch of tasks submitted at once (per task).
(c) Storage overhead per trial: what the driver writes for one trial (ask with its user
    attributes, one intermediate value per epoch, ten result attributes, tell) in a SQLite
    study in a temporary folder (the default storage) and in memory.

Usage::

    python bench/search.py [--backend jax] [--model vgg] [--dataset digits] [--epochs 8]
        [--trials 4] [--exact] [--out FILE.json]

``--dataset synthetic:N,H,W,C`` trains on N random CIFAR-size images (an npz written to a
temporary folder) for machines without datasets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=("tensorflow", "jax"), default=None, help="KERAS_BACKEND (default: as set)")
    p.add_argument("--model", default="vgg", help="a training.models name (default vgg, depth 2, width 8)")
    p.add_argument("--dataset", default="digits", help="a dataset name, or synthetic:N,H,W,C (default digits)")
    p.add_argument("--train-fraction", type=float, default=0.5)
    p.add_argument("--epochs", type=int, default=8, help="epochs per trial (default 8)")
    p.add_argument("--trials", type=int, default=4, help="timed trials per objective (default 4)")
    p.add_argument("--exact", action="store_true", help="also time exact AGN (Eq. 5 after every epoch)")
    p.add_argument("--tasks", type=int, default=40, help="no-op tasks for the scheduler overhead (default 40)")
    p.add_argument("--out", default=None, help="also write the JSON here")
    return p.parse_args()


def _spec(args, tmp: Path) -> dict:
    from pgdl_measures.search.spec import load_spec

    data = {"dataset": args.dataset, "options": {}, "train_fraction": args.train_fraction, "validation": 0.2,
            "seed": 0}
    if args.dataset.startswith("synthetic:"):
        n, h, w, c = (int(v) for v in args.dataset.split(":", 1)[1].split(","))
        rng = np.random.default_rng(0)
        path = tmp / "synthetic.npz"
        np.savez(path, x_train=rng.random((n, h, w, c), np.float32), y_train=rng.integers(0, 10, n),
                 x_test=rng.random((max(n // 5, 10), h, w, c), np.float32), y_test=rng.integers(0, 10, max(n // 5, 10)))
        data.update(dataset="npz", options={"path": str(path)})
    options = {"depth": 2, "width": 8} if args.model == "vgg" else {}
    return load_spec({"preset": "ci", "epochs": args.epochs, "budget": args.epochs, "data": data,
                      "model": {"name": args.model, "options": options}}).raw


def agn_cost(args, tmp: Path) -> dict:
    from pgdl_measures.search.objectives import run_task

    spec = _spec(args, tmp)
    rng = np.random.default_rng(1)
    configs = [{"batch_size": int(rng.integers(32, 256)), "learning_rate": float(10 ** rng.uniform(-3, -1)),
                "momentum": float(rng.uniform(0, 0.95)), "weight_decay": float(10 ** rng.uniform(-5, -3))}
               for _ in range(args.trials)]
    modes = [None, "online"] + (["exact"] if args.exact else [])

    def trial(params, agn, name):
        folder = tmp / name
        shutil.rmtree(folder, ignore_errors=True)
        start = time.perf_counter()
        result = run_task({"spec": spec, "params": params, "epochs": args.epochs, "seed": 0,
                           "out_dir": str(folder), "final": False, "agn": agn})
        return time.perf_counter() - start, result

    trial(configs[0], None, "warmup")
    seconds = {str(m): 0.0 for m in modes}
    per_trial = {str(m): [] for m in modes}
    for i, params in enumerate(configs):
        for mode in modes:  # interleaved, so load changes hit both alike
            s, result = trial(params, mode, f"{mode}-{i}")
            seconds[str(mode)] += s
            per_trial[str(mode)].append(round(s, 3))
    out = {"model": args.model, "dataset": args.dataset, "epochs": args.epochs, "trials": args.trials,
           "seconds": {k: round(v, 3) for k, v in seconds.items()}, "per_trial_seconds": per_trial,
           "online_agn_over_validation": round(seconds["online"] / seconds["None"], 3), "goal": 1.15}
    if args.exact:
        out["exact_agn_over_validation"] = round(seconds["exact"] / seconds["None"], 3)
    return out


def _noop(task):
    return {"epochs_run": 0, "diverged": False}


def scheduler_overhead(args) -> dict:
    from pgdl_measures.engine import Engine

    with Engine(workers=1) as engine:
        engine.submit(_noop, {}, key="warmup").result()
        start = time.perf_counter()
        for i in range(args.tasks):
            engine.submit(_noop, {"i": i}, key=f"one-{i}").result()
        latency = (time.perf_counter() - start) / args.tasks
        start = time.perf_counter()
        futures = [engine.submit(_noop, {"i": i}, key=f"batch-{i}") for i in range(args.tasks)]
        for _ in engine.as_completed(futures):
            pass
        batch = (time.perf_counter() - start) / args.tasks
    return {"tasks": args.tasks, "seconds_per_task_one_at_a_time": round(latency, 4),
            "seconds_per_task_in_a_batch": round(batch, 4)}


def storage_overhead(args, tmp: Path) -> dict:
    import optuna

    from pgdl_measures.search import algorithms
    from pgdl_measures.search.spec import load_spec

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = load_spec("ci")
    dists = algorithms.distributions(spec)
    out = {}
    for name, storage in (("sqlite", f"sqlite:///{tmp / 'bench.db'}"), ("memory", None)):
        study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
        n = 20
        start = time.perf_counter()
        for _ in range(n):
            trial = study.ask(dists)
            for key in ("round", "epochs"):
                trial.set_user_attr(key, 1)
            for epoch in range(args.epochs):
                study._storage.set_trial_intermediate_value(trial._trial_id, epoch, 1.0 / (epoch + 1))
            for key in range(10):
                study._storage.set_trial_user_attr(trial._trial_id, f"attr{key}", 0.5)
            study.tell(trial, 0.5)
        out[name] = round((time.perf_counter() - start) / n, 4)
    return {"epochs_per_trial": args.epochs, "seconds_per_trial": out}


def main() -> None:
    args = _args()
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "load_average": list(os.getloadavg()), "python": platform.python_version(),
                          "keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
                          "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        report["storage_overhead"] = storage_overhead(args, tmp)
        report["scheduler_overhead"] = scheduler_overhead(args)
        report["agn_cost"] = agn_cost(args, tmp)
    report["machine"]["load_average_end"] = list(os.getloadavg())
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
