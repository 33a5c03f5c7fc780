"""The Dask engine: the one place that knows about the cluster.

:class:`Engine` runs plain functions of plain dicts (a training task) on a
``distributed`` cluster and hands back futures:

* default, one machine: a ``LocalCluster`` with one worker process per GPU (each pinned to its
  GPU by :class:`PinGpu`, ``CUDA_VISIBLE_DEVICES`` set before the worker imports Keras), or, with
  no GPU, ``workers`` processes (default 1: trials run one after another on the CPU); one thread
  per worker, so a worker trains one model at a time. Started and stopped by the engine.
* ``scheduler="tcp://host:8786"``: an existing cluster (``dask scheduler`` and ``dask worker
  --nthreads 1`` on each GPU machine, one worker per GPU, or dask-jobqueue on SLURM). Its
  workers pin their own GPUs (``CUDA_VISIBLE_DEVICES`` in the worker's environment).

Faults: a worker that dies mid-task (killed, out of memory) loses its task to the scheduler,
which runs it again on another worker (Dask's ``allowed-failures``); a task that raises is
retried ``retries`` times. The caller gets one result per future whatever happened, so a trial
is told once.

``pgdl evaluate`` can use the same engine for its models: submit a function of a dict.
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


def _pin_gpu_plugin(gpus: list[str]):
    from distributed.diagnostics.plugin import WorkerPlugin

    class PinGpu(WorkerPlugin):
        """Sets ``CUDA_VISIBLE_DEVICES`` of local worker ``i`` to the ``i``-th GPU (at worker
        start, before any task imports Keras; again after a restart)."""

        name = "pgdl-pin-gpu"

        def __init__(self, gpus):
            self.gpus = list(gpus)

        def setup(self, worker):
            try:
                index = int(worker.name)
            except (TypeError, ValueError):
                index = abs(hash(worker.name))
            os.environ["CUDA_VISIBLE_DEVICES"] = self.gpus[index % len(self.gpus)]

    return PinGpu(gpus)


class Engine:
    """A Dask client on a local or existing cluster (a context manager).

    Args:
        scheduler: an existing scheduler's address; None starts a ``LocalCluster``.
        workers: local worker processes (default: one per GPU, else 1).
        retries: how many times a task that raised is run again.
        connect_timeout: seconds to reach `scheduler`.
    """

    def __init__(self, scheduler: str | None = None, *, workers: int | None = None, retries: int = 2,
                 connect_timeout: float = 10.0):
        self.scheduler, self.workers, self.retries = scheduler, workers, retries
        self.connect_timeout = connect_timeout
        self.cluster = None
        self.client = None
        self.gpus: list[str] = []

    def __enter__(self) -> Engine:
        import logging

        from distributed import Client, LocalCluster

        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout=f"{self.connect_timeout}s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise PGDLError(f"cannot reach the Dask scheduler at {self.scheduler}: {exc}") from None
            return self
        self.gpus = visible_gpus()
        n = self.workers or max(1, len(self.gpus))
        self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                    memory_limit=0, silence_logs=logging.ERROR)
        self.client = Client(self.cluster)
        if self.gpus:
            self.client.register_plugin(_pin_gpu_plugin(self.gpus))
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
            return f"Dask scheduler {self.scheduler} ({len(self.client.scheduler_info().get('workers', {}))} workers)"
        kind = f"GPUs {','.join(self.gpus)}" if self.gpus else "CPU"
        return f"local Dask cluster, {len(self.cluster.workers)} worker processes on {kind}"

    def submit(self, fn: Callable[[dict[str, Any]], Any], task: dict[str, Any], *, key: str, priority: int = 0):
        """Runs ``fn(task)`` on a worker; a future (``key`` names it on the scheduler; a higher
        `priority` runs first)."""
        return self.client.submit(fn, task, key=key, pure=False, retries=self.retries, priority=priority)

    def as_completed(self, futures: Iterable[Any] = ()):
        """Dask's ``as_completed`` (futures can be added while iterating)."""
        from distributed import as_completed

        return as_completed(list(futures))

    def worker_pids(self) -> dict[str, int]:
        """Worker address -> process id (for tests and diagnostics)."""
        return self.client.run(os.getpid)
