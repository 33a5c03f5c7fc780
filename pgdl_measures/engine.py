"""The Dask engine: the one place that knows about the cluster.

:class:`Engine` runs plain functions of plain dicts (a training task) on a
``distributed`` cluster and hands back futures:

* default, one machine: a ``LocalCluster`` with one worker process per GPU (each pinned to its
  GPU by ``PinWorker``, ``CUDA_VISIBLE_DEVICES`` set before the worker imports Keras), or, with
  no GPU, ``workers`` processes (default 1; ``"auto"``: one per core), each pinned to its share
  of the cores (:func:`cpu_shares`); one thread per worker, so a worker handles one model at a
  time. Started and stopped by the engine.
* ``scheduler="tcp://host:8786"``: an existing cluster (``dask scheduler`` and ``dask worker
  --nthreads 1`` on each GPU machine, one worker per GPU, or dask-jobqueue on SLURM). Its
  workers pin their own GPUs (``CUDA_VISIBLE_DEVICES`` in the worker's environment).

Faults: a worker that dies mid-task (killed, out of memory) loses its task to the scheduler,
which runs it again on another worker, up to ``max_tries`` workers in all (Dask's
``allowed-failures``), then fails it with ``KilledWorker``; a task that raises is retried
``retries`` times. The caller gets one result per future whatever happened, so a trial or a
model is counted once.

``pgdl search`` runs its trials on it, ``pgdl evaluate --workers`` its models.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from typing import Any

from pgdl_measures.errors import PGDLError


def visible_gpus() -> list[str]:
    """GPU ids for the local workers: ``CUDA_VISIBLE_DEVICES`` when set, else ``nvidia-smi``'s
    list; empty without a GPU (nothing is imported: the driver stays free of TensorFlow/JAX)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def cpu_shares(n: int, cpus: list[int] | None = None) -> list[list[int]]:
    """The cores of this process (``sched_getaffinity``) split into `n` contiguous shares, one
    per local worker (round robin when there are more workers than cores)."""
    if cpus is None:
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    if n >= len(cpus):
        return [[cpus[i % len(cpus)]] for i in range(n)]
    size, extra = divmod(len(cpus), n)
    shares, start = [], 0
    for i in range(n):
        end = start + size + (i < extra)
        shares.append(cpus[start:end])
        start = end
    return shares


def _pin_plugin(gpus: list[str], cpus: list[list[int]]):
    from distributed.diagnostics.plugin import WorkerPlugin

    class PinWorker(WorkerPlugin):
        """Pins local worker ``i`` to the ``i``-th GPU (``CUDA_VISIBLE_DEVICES``, before any task
        imports Keras) and to the ``i``-th share of the cores (every thread of the process, so
        the children it starts inherit it); again after a restart."""

        name = "pgdl-pin-worker"

        def __init__(self, gpus, cpus):
            self.gpus, self.cpus = list(gpus), [list(c) for c in cpus]

        def setup(self, worker):
            try:
                index = int(worker.name)
            except (TypeError, ValueError):
                index = abs(hash(worker.name))
            if self.gpus:
                os.environ["CUDA_VISIBLE_DEVICES"] = self.gpus[index % len(self.gpus)]
            if self.cpus and hasattr(os, "sched_setaffinity"):
                share = self.cpus[index % len(self.cpus)]
                os.environ["PGDL_WORKER_CPUS"] = ",".join(map(str, share))
                for tid in os.listdir("/proc/self/task"):
                    try:
                        os.sched_setaffinity(int(tid), share)
                    except OSError:
                        pass

    return PinWorker(gpus, cpus)


class Engine:
    """A Dask client on a local or existing cluster (a context manager).

    Args:
        scheduler: an existing scheduler's address; None starts a ``LocalCluster``.
        workers: local worker processes: a number, ``"auto"`` (one per GPU, else one per core),
            or None (one per GPU, else 1).
        retries: how many times a task that raised is run again.
        max_tries: how many workers a task may run on before a worker's death is final (the
            local scheduler's ``allowed-failures`` + 1; an existing scheduler keeps its own).
        pin_cpus: pin each local worker (and what it starts) to its share of the cores.
        connect_timeout: seconds to reach `scheduler`.
    """

    def __init__(self, scheduler: str | None = None, *, workers: int | str | None = None, retries: int = 2,
                 max_tries: int = 3, pin_cpus: bool = True, connect_timeout: float = 10.0):
        if max_tries < 1:
            raise PGDLError(f"max_tries must be at least 1, got {max_tries}")
        self.scheduler, self.workers, self.retries = scheduler, workers, retries
        self.max_tries, self.pin_cpus = max_tries, pin_cpus
        self.connect_timeout = connect_timeout
        self.cluster = None
        self.client = None
        self.gpus: list[str] = []

    def __enter__(self) -> Engine:
        import logging

        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise PGDLError("a Dask cluster needs the distributed package: pip install 'pgdl-measures[dask]'") from None

        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout=f"{self.connect_timeout}s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise PGDLError(f"cannot reach the Dask scheduler at {self.scheduler}: {exc}") from None
            return self
        self.gpus = visible_gpus()
        if self.workers == "auto":
            n = len(self.gpus) or len(cpu_shares(1)[0])
        else:
            n = int(self.workers or max(1, len(self.gpus)))
        with dask.config.set({"distributed.scheduler.allowed-failures": self.max_tries - 1}):
            self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                                        memory_limit=0, silence_logs=logging.ERROR)
        self.client = Client(self.cluster)
        cpus = cpu_shares(n) if self.pin_cpus else []
        if self.gpus or cpus:
            self.client.register_plugin(_pin_plugin(self.gpus, cpus))
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    def describe(self) -> str:
        if self.scheduler:
            return f"Dask scheduler {self.scheduler} ({self.n_workers()} workers)"
        kind = f"GPUs {','.join(self.gpus)}" if self.gpus else "CPU"
        return f"local Dask cluster, {len(self.cluster.workers)} worker processes on {kind}"

    def n_workers(self) -> int:
        """The workers the scheduler knows now."""
        return len(self.client.scheduler_info().get("workers", {}))

    def submit(self, fn: Callable[..., Any], *args: Any, key: str, priority: int = 0, retries: int | None = None):
        """Runs ``fn(*args)`` on a worker; a future (``key`` names it on the scheduler; a higher
        `priority` runs first; `retries`, when given, replaces the engine's)."""
        return self.client.submit(fn, *args, key=key, pure=False, priority=priority,
                                  retries=self.retries if retries is None else retries)

    def scatter(self, data: Any):
        """`data` (one object) sent to every worker now, once per worker; a future to pass to
        :meth:`submit` (lost when every worker holding it dies: check its ``status``)."""
        return self.client.scatter([data], broadcast=True, hash=False)[0]

    def as_completed(self, futures: Iterable[Any] = ()):
        """Dask's ``as_completed`` (futures can be added while iterating)."""
        from distributed import as_completed

        return as_completed(list(futures))

    def run(self, fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
        """``fn(*args)`` on every worker now: worker address -> its answer."""
        return self.client.run(fn, *args)

    def worker_pids(self) -> dict[str, int]:
        """Worker address -> process id (for tests and diagnostics)."""
        return self.client.run(os.getpid)
