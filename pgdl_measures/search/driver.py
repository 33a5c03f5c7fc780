"""The search driver: for every cell (algorithm x objective x alpha) ask a step, submit one
training task per trial to the engine, gather, tell; then train the best configuration (and the
default hyper-parameters) on the full training set with the final seeds.

The output folder holds everything (its files, storage record and lock: :mod:`.folder`), so a
driver killed at any point and started again with the same command continues where it stopped:

* ``spec.json``: the spec (a folder holding another spec is refused);
* ``storage.json``: the Optuna storage URL the search uses (null: the folder's ``study.db``) and
  the folder's search id; a run or report given another ``--storage`` is refused, one given none
  uses the recorded one;
* ``.lock``: held (``flock``) while a driver runs: a second ``search run`` on the folder is refused;
* ``study.db``: the Optuna studies, one per cell, named by the cell and the spec's digest
  (``cmaes-val_loss@3f2a9c1b0d4e``, ``bohb-agn_val_loss-a0.1@...``), each owned by the folder's
  search id: searches sharing a storage never share a study, and a study of the same spec
  searched into another folder is refused. SQLite, which Optuna's own tools open
  (``optuna studies --storage sqlite:///OUT/study.db``, optuna-dashboard). ``storage`` takes any
  Optuna storage URL instead (the folder still holds the rest). Studies of an older version
  (named by the cell alone) are refused, not migrated: such a search is finished with the
  version that started it;
* ``plans/<cell>/step-NNNN.json``: each step's trials, written once they are all in the study,
  with the sampler's random state after asking them; a restarted driver re-submits the trials of
  the current step that are not complete, marks trials asked by a step that was never written
  (a crash while asking) as failed orphans, and asks again from the last plan's random state:
  it asks exactly what the uninterrupted run would have;
* ``state/<cell>/``: an algorithm's own state (PSO's pickled optimizer);
* ``trials/<cell>/<number>/``: each trial's training folder (Keras checkpoint: a retried trial
  continues from its last epoch);
* ``final/<name>/seed-<s>.json``: the final trainings; ``search.json``: the summary.

Budget: a step's trials are charged their epochs when the step is planned (GPU x epochs: a
trial of ``e`` epochs occupies one GPU for ``e`` epochs); a cell stops when the next step does
not fit. The final trainings are outside the search budget (reported as ``final_epochs``).
A trial is told once: results arrive once per future, and a trial already complete in the
study is never told again.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pgdl_measures.errors import PGDLError
from pgdl_measures.search import algorithms, objectives
from pgdl_measures.search.folder import (
    default_storage,
    folder_lock,
    normal_url,
    open_storage,
    optuna_module,
    read,
    search_storage,
    sqlite_file,
    storage_failure,
    storage_record,
    write,
)
from pgdl_measures.search.spec import AGN_OBJECTIVES, Cell, SearchSpec
from scoring.files import check_writable

Progress = Callable[[str], None]


@dataclass
class CellRun:
    cell: Cell
    algo: Any
    step: int = 0
    spent: int = 0
    pending: set = field(default_factory=set)
    done: bool = False
    sampler_state: dict[str, Any] | None = None
    final_pending: set = field(default_factory=set)
    finished: bool = False


class Driver:
    """One ``pgdl search run`` (see the module docstring)."""

    def __init__(self, spec: SearchSpec, out: str | Path, *, engine, storage: str | None = None,
                 progress: Progress | None = None):
        self.spec, self.out, self.engine = spec, Path(out), engine
        self.given_storage = storage
        self.storage = storage or default_storage(self.out)
        self.search_id: str | None = None
        self.progress = progress or (lambda message: None)
        self.futures: dict[str, tuple[str, Any, dict[str, Any]]] = {}
        self.ac = None
        self.start = time.perf_counter()
        self.done_epochs = 0
        self.total_epochs = 0
        self.runs: list[CellRun] = []

    # -------------------------------------------------------------------------------- setup

    def prepare(self) -> None:
        check_writable(self.out)
        objectives.trainer_for(self.spec.raw["trainer"], self.spec.source)  # importable here, not only on workers
        spec_file = self.out / "spec.json"
        existed = spec_file.is_file()
        if existed:
            previous = read(spec_file)
            if previous != json.loads(self.spec.to_json()):
                raise PGDLError("the folder holds a search with another spec; use a new --out folder or the "
                                "same spec", spec_file)
        self.storage, _ = search_storage(self.out, self.given_storage)
        database = sqlite_file(self.storage)
        if database is not None and not database.is_file() and any((self.out / "plans").glob("*/step-*.json")):
            raise PGDLError("the study database of this search is missing (its plans name trials it held); restore "
                            "it, or start the search again in a new --out folder", database)
        try:
            self._storage_obj = open_storage(self.storage)
            names = set(optuna_module().get_all_study_names(self._storage_obj))  # reachable before anything is recorded
        except Exception as exc:  # an Optuna storage error: a bad URL, an unreachable database, a damaged file
            raise PGDLError(f"cannot open the Optuna storage {self.storage}: "
                            f"{storage_failure(exc) or f'{type(exc).__name__}: {exc}'}") from None
        record = storage_record(self.out)
        if record is None:
            old = sorted(names & {cell.name for cell in self.spec.cells})
            if existed and old:
                raise PGDLError(f"the storage {self.storage} holds studies of an older pgdl version, named by the "
                                f"cell alone ({', '.join(old)}); this version does not continue them: finish the "
                                f"search with the version that started it, or use a new --out folder", self.out)
            record = {"storage": None if self.given_storage is None
                      or normal_url(self.given_storage) == normal_url(default_storage(self.out))
                      else self.given_storage, "search_id": uuid.uuid4().hex[:12]}
            write(self.out / "storage.json", record)
        if not existed:
            write(spec_file, json.loads(self.spec.to_json()))
        self.search_id = record["search_id"]
        try:
            self.runs = [CellRun(cell, algorithms.make(self.spec, cell, self._storage_obj,
                                                       self.out / "state" / cell.name, self.search_id))
                         for cell in self.spec.cells]
        except PGDLError:
            raise
        except Exception as exc:  # an Optuna storage error: a bad URL, an unreachable database, a damaged file
            raise PGDLError(f"cannot open the Optuna storage {self.storage}: "
                            f"{storage_failure(exc) or f'{type(exc).__name__}: {exc}'}") from None
        self.total_epochs = int(self.spec.raw["budget"]) * len(self.runs)

    # ---------------------------------------------------------------------------- stepping

    def _plan_path(self, run: CellRun, step: int) -> Path:
        return self.out / "plans" / run.cell.name / f"step-{step:04d}.json"

    def _fail_orphans(self, run: CellRun) -> None:
        """Trials asked by a step whose plan was never written (a crash while asking): failed."""
        from optuna.trial import TrialState

        planned = set()
        for path in sorted((self.out / "plans" / run.cell.name).glob("step-*.json")):
            planned.update(t["number"] for t in read(path)["trials"])
        storage = run.algo.study._storage
        for t in run.algo.study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
            if t.number not in planned:
                try:
                    storage.set_trial_user_attr(t._trial_id, "orphan", True)
                    storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
                except Exception:  # noqa: BLE001 - a WAITING trial some storages refuse to fail
                    pass

    def _advance(self, run: CellRun) -> None:
        """Plans (or re-enters) steps of `run` until one has trials to train, or the search ends."""
        from optuna.trial import TrialState

        while not run.done:
            path = self._plan_path(run, run.step)
            if path.is_file():
                plan = read(path)
            else:
                self._fail_orphans(run)
                if run.sampler_state is not None:  # where the last step left it (a restarted driver)
                    run.algo.restore_sampler(run.sampler_state)
                remaining = int(self.spec.raw["budget"]) - run.spent
                entries = run.algo.ask_step(run.step, remaining)
                if entries is None:
                    run.done = True
                    break
                plan = {"step": run.step, "trials": entries, "epochs": sum(e["epochs"] for e in entries),
                        "sampler": run.algo.sampler_state()}
                write(path, plan)
            run.sampler_state = plan.get("sampler")
            run.spent += int(plan["epochs"])
            trials = run.algo.study.get_trials(deepcopy=False)
            missing = [e["number"] for e in plan["trials"] if e["number"] >= len(trials)]
            if missing:
                raise PGDLError(f"the storage {self.storage} lacks trial {missing[0]} of study "
                                f"{run.algo.study.study_name!r} that this plan names; give the --storage the "
                                f"search used", path)
            todo = [e for e in plan["trials"] if trials[e["number"]].state != TrialState.COMPLETE]
            self.done_epochs += sum(e["epochs"] for e in plan["trials"] if e not in todo)
            run.step += 1
            if todo:
                for entry in todo:
                    self._submit_trial(run, entry, trials[entry["number"]].user_attrs.get("round"))
                return
        self._submit_finals(run)

    def _task(self, params: dict[str, Any], epochs: int, seed: int, out_dir: Path, *, final: bool,
              agn: str | None, trial: Any = None) -> dict[str, Any]:
        return {"spec": self.spec.raw, "params": algorithms.full_params(self.spec, params), "epochs": int(epochs),
                "seed": int(seed), "out_dir": str(out_dir), "final": final, "agn": agn, "trial": trial}

    def _submit(self, key: str, kind: str, run: Any, entry: dict[str, Any], task: dict[str, Any]) -> None:
        # search trials first (a round waits for its slowest trial), final trainings when workers are free
        future = self.engine.submit(objectives.run_task, task, key=key, priority=10 if kind == "trial" else 0)
        self.futures[future.key] = (kind, run, entry)
        self.ac.add(future)

    def _submit_trial(self, run: CellRun, entry: dict[str, Any], round_index: int | None) -> None:
        agn = self.spec.raw["agn"] if run.cell.objective in AGN_OBJECTIVES else None
        task = self._task(entry["params"], entry["epochs"], int(self.spec.raw["seed"]),
                          self.out / "trials" / run.cell.name / f"{entry['number']:04d}", final=False, agn=agn,
                          trial=f"{run.cell.name}/{entry['number']}")
        run.pending.add(entry["number"])
        self._submit(f"{run.cell.name}/trial-{entry['number']}-{time.time_ns()}", "trial", run,
                     {**entry, "round": round_index}, task)

    # ------------------------------------------------------------------------------- finals

    def best_trial(self, run: CellRun):
        """The complete, finite trial with the lowest value among those of the full schedule."""
        from optuna.trial import TrialState

        full = int(self.spec.raw["epochs"])
        trials = [t for t in run.algo.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                  if t.user_attrs.get("epochs") == full and not t.user_attrs.get("diverged")
                  and t.value is not None and t.value < objectives.DIVERGED_VALUE]
        return min(trials, key=lambda t: (t.value, t.number)) if trials else None

    def _final_folder(self, name: str) -> Path:
        return self.out / "final" / name

    def _submit_final_set(self, name: str, params: dict[str, Any], owner: Any) -> set:
        pending = set()
        folder = self._final_folder(name)
        write(folder / "params.json", params)
        for seed in self.spec.raw["final_seeds"]:
            if (folder / f"seed-{seed}.json").is_file():
                continue
            task = self._task(params, int(self.spec.raw["epochs"]), seed, folder / f"seed-{seed}", final=True, agn=None)
            pending.add(seed)
            self._submit(f"final/{name}/seed-{seed}-{time.time_ns()}", "final", owner,
                         {"name": name, "seed": seed}, task)
        return pending

    def _submit_finals(self, run: CellRun) -> None:
        best = self.best_trial(run)
        if best is None:
            write(self._final_folder(run.cell.name) / "params.json", None)
            self.progress(f"{run.cell.name}: no finite trial; nothing to train on the full set")
            run.finished = True
            return
        run.final_pending = self._submit_final_set(run.cell.name, dict(best.params), run)
        run.finished = not run.final_pending

    # -------------------------------------------------------------------------------- gather

    def _record_trial(self, run: CellRun, entry: dict[str, Any], result: dict[str, Any]) -> None:
        from optuna.trial import TrialState

        study = run.algo.study
        number = entry["number"]
        frozen = study.get_trials(deepcopy=False)[number]
        run.pending.discard(number)
        if frozen.state == TrialState.COMPLETE:  # never told twice
            return
        full = int(self.spec.raw["epochs"])
        cell = run.cell
        value = objectives.objective_value(cell.objective, cell.alpha, result, full, cell.weighting)
        storage = study._storage
        for step, v in enumerate(objectives.per_epoch_values(cell.objective, cell.alpha, result, full, cell.weighting)):
            if math.isfinite(v):
                storage.set_trial_intermediate_value(frozen._trial_id, step, v)
        attrs = {k: result.get(k) for k in ("loss", "val_loss", "val_accuracy", "test_accuracy", "agn_sum",
                                            "epochs_run", "diverged", "seconds", "error", "worker_pid")}
        attrs["agn"] = objectives.normalised_agn(result, full) if result.get("agn_sum") is not None else None
        for key, val in attrs.items():
            if val is not None:
                if isinstance(val, float) and not math.isfinite(val):
                    val = str(val)
                storage.set_trial_user_attr(frozen._trial_id, key, val)
        study.tell(number, value)
        run.algo.tell(number, value)
        self.done_epochs += int(entry["epochs"])
        self._progress_trial(run, entry, value, result)

    def _progress_trial(self, run: CellRun, entry: dict[str, Any], value: float, result: dict[str, Any]) -> None:
        elapsed = time.perf_counter() - self.start
        shown = "diverged" if value >= objectives.DIVERGED_VALUE else f"{value:.4g}"
        rate = self.done_epochs / elapsed if elapsed > 0 else 0
        left = (self.total_epochs - self.done_epochs) / rate if rate > 0 else float("nan")
        left_text = f"{int(left // 60)}:{int(left % 60):02d}" if math.isfinite(left) else "?"
        self.progress(f"{run.cell.name} round {int(entry.get('round') or 0) + 1} trial {entry['number']} "
                      f"({entry['epochs']} epochs): {shown} | {self.done_epochs}/{self.total_epochs} GPU x epochs, "
                      f"{int(elapsed // 60)}:{int(elapsed % 60):02d} elapsed, ~{left_text} left (search)")

    def _record_final(self, owner: Any, entry: dict[str, Any], result: dict[str, Any]) -> None:
        name, seed = entry["name"], entry["seed"]
        keep = {k: result.get(k) for k in ("test_accuracy", "accuracy", "loss", "test_loss", "epochs_run",
                                           "diverged", "seconds", "error")}
        write(self._final_folder(name) / f"seed-{seed}.json", keep)
        acc = keep.get("test_accuracy")
        self.progress(f"final {name} seed {seed}: test accuracy "
                      f"{acc if acc is None else round(float(acc), 4)}")
        owner.final_pending.discard(seed)
        if not owner.final_pending:
            owner.finished = True

    # ----------------------------------------------------------------------------------- run

    def run(self) -> dict[str, Any]:
        """Runs (or continues) every cell to its budget and the final trainings; the summary.

        Raises:
            PGDLError: a spec error met on a worker, a full disk or a failing storage (what was
                computed stays in the study), another driver on the folder.
        """
        check_writable(self.out)
        with folder_lock(self.out):
            try:
                return self._run()
            except PGDLError:
                raise
            except OSError as exc:
                raise PGDLError(f"cannot write: {exc.strerror or exc} (results so far are kept in the study)",
                                exc.filename or self.out) from None
            except Exception as exc:
                reason = storage_failure(exc)
                if reason is None:
                    raise
                raise PGDLError(f"the Optuna storage {self.storage} failed: {reason} (results so far are kept "
                                f"in the study)") from None

    def _run(self) -> dict[str, Any]:
        self.prepare()
        self.ac = self.engine.as_completed()
        self.progress(f"search {self.spec.raw['name']}: {len(self.runs)} cells x {self.spec.raw['budget']} "
                      f"GPU x epochs on {self.engine.describe()}; study {self.storage}")

        class _Default:
            final_pending: set = set()
            finished = False

        default = _Default()
        default.final_pending = self._submit_final_set("default", dict(self.spec.raw["default"]), default)
        default.finished = not default.final_pending
        for run in self.runs:
            self._advance(run)
        for future in self.ac:
            kind, owner, entry = self.futures.pop(future.key)
            try:
                result = future.result()
            except PGDLError:
                raise
            except Exception as exc:  # noqa: BLE001 - a task lost after Dask's retries: recorded, search goes on
                result = {"diverged": True, "error": f"{type(exc).__name__}: {exc}", "epochs_run": 0}
            self._raise_task_fault(result)
            if kind == "trial":
                self._record_trial(owner, entry, result)
                if not owner.pending:
                    self._advance(owner)
            else:
                self._record_final(owner, entry, result)
        summary = self.summary()
        write(self.out / "search.json", summary)
        return summary

    def _raise_task_fault(self, result: dict[str, Any]) -> None:
        """A spec error or a write failure a worker met (returned, not raised there: no "Compute
        Failed" logs, no retries) stops the search with its one line."""
        if result.get("spec_error"):
            raise PGDLError(f"{self.spec.source}: {result['spec_error']}")
        if result.get("write_error"):
            raise PGDLError(f"a worker cannot write: {result['write_error']} (results so far are kept in the study)")

    def summary(self) -> dict[str, Any]:
        from optuna.trial import TrialState

        cells = []
        for run in self.runs:
            trials = run.algo.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            best = self.best_trial(run)
            cells.append({
                "cell": run.cell.name, "algorithm": run.cell.algorithm, "objective": run.cell.objective,
                "alpha": run.cell.alpha, "weighting": run.cell.weighting,
                "configurations": sum(1 for t in trials if t.user_attrs.get("rung", 0) == 0),
                "trials": len(trials), "epochs": int(sum(t.user_attrs.get("epochs", 0) for t in trials)),
                "epochs_trained": int(sum(int(t.user_attrs.get("epochs_run") or 0) for t in trials)),
                "diverged": sum(1 for t in trials if t.user_attrs.get("diverged")),
                "rounds": 1 + max((int(t.user_attrs.get("round", 0)) for t in trials), default=-1),
                "best_value": None if best is None else best.value,
                "best_params": None if best is None else dict(best.params),
                "final": self.final_results(run.cell.name),
            })
        return {"spec": self.spec.raw["name"], "storage": self.storage, "cells": cells,
                "default": self.final_results("default"),
                "final_epochs": int(self.spec.raw["epochs"]) * len(self.spec.raw["final_seeds"]) * (len(cells) + 1)}

    def final_results(self, name: str) -> dict[str, Any]:
        return final_results(self.out, name)


def final_results(out: Path, name: str) -> dict[str, Any]:
    """The final trainings of `name`: per-seed results, test accuracy mean and std."""
    folder = Path(out) / "final" / name
    seeds = {}
    for path in sorted(folder.glob("seed-*.json")):
        seeds[path.stem.split("-", 1)[1]] = read(path)
    accs = [float(r["test_accuracy"]) for r in seeds.values() if r.get("test_accuracy") is not None
            and not r.get("diverged")]
    params = read(folder / "params.json") if (folder / "params.json").is_file() else None
    return {"params": params, "seeds": seeds,
            "test_accuracy_mean": float(np.mean(accs)) if accs else None,
            "test_accuracy_std": float(np.std(accs)) if accs else None}


def run_search(spec: SearchSpec, out: str | Path, *, scheduler: str | None = None, storage: str | None = None,
               workers: int | None = None, progress: Progress | None = None,
               connect_timeout: float = 10.0) -> dict[str, Any]:
    """Runs (or continues) the search `spec` into `out` on a Dask engine; returns the summary.

    Raises:
        PGDLError: an unwritable folder, a folder holding another spec, an unreachable
            scheduler or storage.
    """
    from pgdl_measures.engine import Engine

    out = Path(out)
    check_writable(out)
    with folder_lock(out), Engine(scheduler, workers=workers, connect_timeout=connect_timeout) as engine:
        return Driver(spec, out, engine=engine, storage=storage, progress=progress).run()
