"""Computing models on a Dask cluster (:class:`pgdl_measures.engine.Engine`).

One Dask task is one model and its pending measures (the unit the time budget is counted on).
On the worker, :func:`run_model` computes them the way the serial run does
(:func:`~pgdl_measures.evaluate.runner.compute_model`: a supervised child process per Dask
worker, kept across models, the model's budget) and returns the results; the driver
(:func:`compute_on_cluster`) is the only writer of the results store and writes each model's
results as its task returns, so a killed driver loses at most the models in flight.

The driver keeps at most one task per worker in flight, so a worker that dies takes only its own
model with it: the scheduler runs that model again on another worker, and after the engine's
``max_tries`` deaths records it as failed (every pending measure an error naming the deaths).

Data: a worker reads the task's folder from its path when it can see it (a shared filesystem,
always true on a local cluster). When some worker cannot, the driver sends the task's
``dataset_1/`` once to every worker (``Engine.scatter``) and each model's files with its task;
such a worker unpacks them under its temporary folder. A model whose shipped data died with the
workers holding it while it ran (Dask cancels it) is sent again once, carrying the data inside its
own task: nothing it depends on can be lost again, so its tries end it.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter, deque
from pathlib import Path
from typing import Any

from pgdl_measures.errors import PGDLError
from pgdl_measures.evaluate.runner import Progress, Runner, compute_model
from pgdl_measures.tasks import Task
from scoring.rules import Status

#: Per worker process: (backend, log) -> its runner, so the child (and its Keras) outlives a task.
_RUNNERS: dict[tuple[str, str], Runner] = {}


# ----------------------------------------------------------------------------- on the worker


def run_model(job: dict[str, Any], data: dict[str, bytes] | None = None) -> dict[str, Any]:
    """Compute one model's pending measures on this worker (a Dask task).

    Args:
        job: the task, model, measures (module, class name, parameters), credit, budget, backend,
            the driver's ``sys.path`` and log folder (see :func:`compute_on_cluster`).
        data: the task's ``dataset_1/`` files (relative path -> bytes) when the driver ships them.

    Returns:
        ``{"rows": [(measure index, status, value, error, seconds), ...], "started", "finished",
        "pid"}``, or ``{"fatal": message}`` when the worker's child cannot start.
    """
    started = time.time()
    for entry in reversed(job["sys_path"]):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    try:
        measures = [_rebuild(*spec) for spec in job["measures"]]
        task = _local_task(job, data)
        if job.get("threads"):  # TensorFlow splits its sums by its thread count: the serial run's count
            os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(job["threads"]))
        runner = _runner(job["backend"], job["log_dir"])
        rows: list[tuple] = []
        index = {id(m): i for i, m in enumerate(measures)}

        def put(_task, _model, measure, status, *, value=None, error=None, seconds=0.0):
            rows.append((index[id(measure)], status, value, error, float(seconds)))

        compute_model(runner, task, job["model"], measures, job["credit"], job["time_budget"], put, Progress())
    except PGDLError as exc:
        return {"fatal": str(exc)}
    return {"rows": rows, "started": started, "finished": time.time(), "pid": os.getpid()}


def _rebuild(module: str, qualname: str, params: dict[str, Any]):
    try:
        cls: Any = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
    except (ImportError, AttributeError) as exc:
        raise PGDLError(f"a Dask worker cannot import the measure {module}.{qualname}: {exc} (install the "
                        "measure's package on every worker)") from None
    return cls(**params)


def _runner(backend: str, log_dir: str) -> Runner:
    from distributed import get_worker

    name = str(get_worker().name)
    folder = Path(log_dir)
    if not (folder.is_dir() and os.access(folder, os.W_OK)):
        folder = Path(tempfile.gettempdir()) / "pgdl-worker-logs"
        folder.mkdir(exist_ok=True)
    log = folder / f"worker-{name}.log"
    key = (backend, str(log))
    if key not in _RUNNERS:
        _RUNNERS[key] = Runner(log, backend, Progress())
    return _RUNNERS[key]


def _local_task(job: dict[str, Any], data: dict[str, bytes] | None) -> Task:
    """The task as this worker sees it: its own folder, or the shipped copy."""
    spec = job["task"]
    own = Path(spec["input_dir"])
    if data is None or (not job["shipped_only"] and (own / job["model"]).is_dir() and (own / "dataset_1").is_dir()):
        return Task(spec["name"], own, spec["reference_dir"])
    root = Path(tempfile.gettempdir()) / "pgdl-data" / f"{spec['name']}-{spec['digest'][:16]}"
    if not (root / ".complete").is_file():
        _unpack(root / "dataset_1", data)
        (root / ".complete").write_bytes(b"")
    _unpack(root / job["model"], job["model_files"])
    return Task(spec["name"], root, None)


def _unpack(folder: Path, files: dict[str, bytes]) -> None:
    for relative, content in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(path.name + f".part-{os.getpid()}")
        part.write_bytes(content)
        part.replace(path)


def _sees(paths: list[str]) -> bool:
    return all(Path(p).is_dir() for p in paths)


def _pack(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- on the driver


def compute_on_cluster(engine, jobs: list[tuple], put, progress: Progress, *, time_budget: float, backend: str,
                       log_dir: Path, ship_data: bool | None = None) -> list[dict[str, Any]]:
    """Run `jobs` ((task, model, pending measures, credit), as planned) on `engine`'s workers.

    Calls ``put(task, model, measure, status, value=, error=, seconds=)`` for each result as its
    model's task returns.

    Args:
        ship_data: True: send the tasks' files to the workers, which read only those; None: send
            them when a worker cannot see a task's folder (those that can read the folder).

    Returns:
        Per model, in the order finished: task, model, the worker's pid, the seconds the task ran
        on its worker (``compute``) and from its submission to its result here (``round_trip``).

    Raises:
        PGDLError: a worker cannot start its child or fails outside a model (results stored so
            far remain).
    """
    tasks = list({id(task): task for task, *_ in jobs}.values())
    shipped_only = ship_data is True
    if ship_data is None and tasks:
        folders = [str(task.input_dir) for task in tasks]
        ship_data = not all(engine.run(_sees, folders).values())
    data: dict[str, Any] = {}
    digests = {task.name: task.dataset_digest() for task in tasks} if ship_data else {}
    queue, in_flight, dispatch = deque(jobs), {}, []
    lost: Counter[tuple[str, str]] = Counter()  # (task, model) -> times its shipped data was lost under it
    finished = engine.as_completed()
    common = {"sys_path": list(sys.path), "backend": backend, "log_dir": str(log_dir), "time_budget": time_budget,
              "shipped_only": shipped_only,
              # on a local cluster, each worker's children keep the thread count of a serial run here,
              # so that their sums (and values) are bitwise the serial run's on fewer cores
              "threads": None if engine.scheduler else len(os.sched_getaffinity(0))}

    def submit_next():
        task, model, pending, credit = queue.popleft()
        job = {**common, "model": model, "credit": credit,
               "task": {"name": task.name, "input_dir": str(task.input_dir), "digest": digests.get(task.name, ""),
                        "reference_dir": None if task.reference_dir is None else str(task.reference_dir)},
               "measures": [(type(m).__module__, type(m).__qualname__, m.params) for m in pending],
               "model_files": _pack(task.input_dir / model) if ship_data else None}
        inline = ship_data and lost[(task.name, model)] > 0
        if inline:
            # its data died with the workers holding it while it ran: this time the data travels
            # inside the task, which then has nothing left to lose, so its tries end it
            shipped = _pack(task.dataset_dir)
        else:
            if ship_data and (task.name not in data or data[task.name].status != "finished"):
                data[task.name] = engine.scatter(_pack(task.dataset_dir))  # again when its holders died
            shipped = data.get(task.name)
        submitted = time.monotonic()  # before submit: the worker may start before submit returns
        with warnings.catch_warnings():
            if inline:  # Dask's "large object in the task graph": meant, for this one task
                warnings.simplefilter("ignore", UserWarning)
            future = engine.submit(run_model, job, shipped, key=f"pgdl-model-{uuid.uuid4().hex}", retries=0)
        in_flight[future.key] = (task, model, pending, credit, submitted, future)
        finished.add(future)

    def fill():
        while queue and len(in_flight) < max(1, engine.n_workers()):
            submit_next()

    try:
        fill()
        for future in finished:
            task, model, pending, credit, submitted, _ = in_flight.pop(future.key)
            answer = _answer(future, f"{task.name}/{model}", len(pending), engine.max_tries, lost[(task.name, model)])
            if answer is None:  # its shipped data died with the workers holding it: run it again
                lost[(task.name, model)] += 1
                queue.appendleft((task, model, pending, credit))
                fill()
                continue
            round_trip = time.monotonic() - submitted
            progress.model_started(task.name, model, len(pending), None)
            for index, status, value, error, seconds in answer["rows"]:
                put(task, model, pending[index], status, value=value, error=error, seconds=seconds)
            progress.model_finished()
            if "pid" in answer:
                dispatch.append({"task": task.name, "model": model, "pid": answer["pid"],
                                 "compute": answer["finished"] - answer["started"], "round_trip": round_trip})
            fill()
    finally:
        for *_, future in in_flight.values():
            future.cancel()
    return dispatch


def _answer(future, what: str, n_measures: int, max_tries: int, lost: int = 0) -> dict[str, Any] | None:
    """The task's answer; a model that killed every worker it ran on becomes errors; None when
    the task was cancelled (its shipped data was lost: `lost` times before this one), errors
    when that happens to a task that carried its own data."""
    from concurrent.futures import CancelledError

    from distributed.scheduler import KilledWorker

    earlier = (f", after {lost} earlier run{'s' if lost > 1 else ''} whose shipped data died with the workers "
               "holding it") if lost else ""
    try:
        answer = future.result()
    except CancelledError:
        if not lost:
            return None
        error = f"computing {what} was cancelled by the cluster{earlier}; not tried again"
        return {"rows": [(i, Status.ERROR, None, error, 0.0) for i in range(n_measures)]}
    except KilledWorker as exc:
        tries = getattr(exc, "allowed_failures", max_tries - 1) + 1
        error = (f"computing {what} killed {tries} Dask worker processes (the most tries allowed){earlier}; "
                 "not tried again")
        return {"rows": [(i, Status.ERROR, None, error, 0.0) for i in range(n_measures)]}
    except Exception as exc:  # noqa: BLE001 - the cluster failed outside any model: stop, keep the results
        raise PGDLError(f"a Dask worker failed on {what}: {type(exc).__name__}: {exc}") from None
    if "fatal" in answer:
        raise PGDLError(answer["fatal"])
    return answer
