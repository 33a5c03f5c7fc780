"""The child process that computes measures for `pgdl evaluate`, and the parent's handle on it.

Why a child: a measure that runs too long must become "EXCEEDED" rather than hang the run, and
a computation cannot be interrupted safely inside one Python process (TensorFlow and JAX run in
C++). So the parent (:class:`WorkerProcess`) starts ``python -m pgdl_measures.evaluate.worker``, which
imports Keras once, loads one model at a time and computes measures on it; the parent waits for
each answer until the model's deadline and, past it, kills the child and starts a fresh one.

Protocol: the framed pickles of :class:`pgdl_measures._subprocess.FramedChild` (requests on the
child's stdin, answers on a private pipe; the child's stdout and stderr go to the log). Requests
and answers::

    parent -> child                                child -> parent
    ("hello", {"sys_path": [...]})                 {"ok": True, "backend": ..., "pid": ...}
    ("load", {"task", "input_dir",                 {"ok": True, "seconds": s}
              "reference_dir", "model_id"})        {"ok": False, "error": msg, "seconds": s}
    ("compute", {"cls": MeasureClass,              {"ok": True, "value": v, "seconds": s}
                 "params": {...}})                 {"ok": False, "error": msg, "seconds": s}
    ("exit", {})                                   (none: the child exits)

Measure classes travel by reference (module and name), so they must be importable in the
child: the parent's ``sys.path`` is sent with "hello". The environment (``KERAS_BACKEND``
included) is the parent's. The child ignores SIGINT (the parent handles Ctrl-C and kills it)
and exits by itself when the parent dies. Starting, framing, deadlines and killing (with whatever
the measure started) are :mod:`pgdl_measures._subprocess`'s, shared with `pgdl run-submission`.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from pgdl_measures._subprocess import ChildDied, ChildTimeout, FramedChild, ParentChannel, exit_with_parent

#: How long a fresh worker may take to import Keras and its backend before the run gives up.
STARTUP_TIMEOUT = 300.0
#: How much of the end of the worker's log a failure message looks at.
LOG_TAIL_BYTES = 1 << 16


class WorkerTimeout(ChildTimeout):
    """The worker did not answer before the deadline (it has been killed)."""


class WorkerDied(ChildDied):
    """The worker exited or broke the protocol (its log's last lines are in the message)."""


# ----------------------------------------------------------------------------- the child


class _Child:
    """The child's state: the model it holds and how it answers requests."""

    def __init__(self):
        self.trained = None
        self.tasks: dict[tuple, object] = {}  # kept, so a task's data is opened once

    def hello(self, sys_path: list[str]) -> dict:
        for entry in reversed(sys_path):
            if entry not in sys.path:
                sys.path.insert(0, entry)
        import keras

        return {"ok": True, "backend": keras.backend.backend(), "pid": os.getpid()}

    def load(self, task: str, input_dir: str, reference_dir: str | None, model_id: str) -> dict:
        import keras

        from pgdl_measures.errors import PGDLError
        from pgdl_measures.tasks import Task

        self.trained = None
        keras.backend.clear_session()  # drop the previous model's graph state: a long run stays lean
        start = time.perf_counter()
        key = (task, input_dir, reference_dir)
        if key not in self.tasks:
            self.tasks[key] = Task(task, input_dir, reference_dir)
        try:
            self.trained = self.tasks[key].load_model(model_id)
        except PGDLError as exc:
            return {"ok": False, "error": str(exc), "seconds": time.perf_counter() - start}
        except Exception as exc:  # noqa: BLE001 - a model that breaks the loader is one failed model
            return {"ok": False, "error": f"{task}/{model_id} could not be loaded: {type(exc).__name__}: {exc}",
                    "seconds": time.perf_counter() - start}
        return {"ok": True, "seconds": time.perf_counter() - start}

    def compute(self, cls: type, params: dict) -> dict:
        from pgdl_measures.errors import PGDLError

        start = time.perf_counter()
        if self.trained is None:
            return {"ok": False, "error": "no model loaded", "seconds": 0.0}
        try:
            measure = cls(**params)
            value = measure(self.trained)
        except PGDLError as exc:
            return {"ok": False, "error": str(exc), "seconds": time.perf_counter() - start}
        except Exception as exc:  # noqa: BLE001 - e.g. a constructor that rejects its parameters
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "seconds": time.perf_counter() - start}
        return {"ok": True, "value": float(value), "seconds": time.perf_counter() - start}


def main() -> None:
    """Serve requests until "exit" or the end of the requests."""
    channel = ParentChannel()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    exit_with_parent()
    print(f"pgdl worker {os.getpid()} started (parent {parent})", file=sys.stderr, flush=True)
    child = _Child()
    while True:
        try:
            op, args = channel.receive()
        except EOFError:
            break
        except Exception as exc:  # noqa: BLE001 - e.g. a measure class the child cannot import
            channel.send({"ok": False, "seconds": 0.0,
                          "error": f"the worker could not read the request: {type(exc).__name__}: {exc}"})
            continue
        if op == "exit":
            break
        answer = getattr(child, op)(**args)
        sys.stdout.flush()
        sys.stderr.flush()
        channel.send(answer)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip the interpreter's teardown of TensorFlow (seconds), there is nothing to save


# ----------------------------------------------------------------------------- the parent's handle


class _WorkerChild(FramedChild):
    Timeout = WorkerTimeout
    Died = WorkerDied


class WorkerProcess:
    """A running worker child, seen from the parent (a :class:`FramedChild`).

    Args:
        log_path: the file the child's stdout and stderr are appended to.
        env: the child's environment (the parent's by default).
        startup_timeout: seconds the child may take to import Keras and answer.

    Raises:
        WorkerDied: the child did not start (its log's tail is in the message).
        OSError: the Python interpreter cannot be started.
    """

    def __init__(self, log_path: str | os.PathLike, env: dict[str, str] | None = None,
                 startup_timeout: float = STARTUP_TIMEOUT):
        self.log_path = Path(log_path)
        self._child = _WorkerChild([sys.executable, "-m", "pgdl_measures.evaluate.worker"], self.log_path,
                                   name="the worker process", env=env)
        self.proc = self._child.proc
        self.model: tuple | None = None
        try:
            hello = self.request("hello", {"sys_path": list(sys.path)}, time.monotonic() + startup_timeout)
        except WorkerTimeout:
            raise WorkerDied(f"the worker process did not start within {startup_timeout:.0f} s; see "
                             f"{self.log_path}") from None
        self.backend = hello["backend"]
        self.pid = hello["pid"]

    @property
    def alive(self) -> bool:
        return self._child.alive

    def request(self, op: str, args: dict, deadline: float | None) -> dict:
        """Send one request and wait for its answer until `deadline` (``time.monotonic()``).

        Raises:
            WorkerTimeout: no answer before the deadline; the worker has been killed.
            WorkerDied: the worker exited or could not be written to.
        """
        return self._child.request((op, args), deadline)

    def load(self, task, model_id: str, deadline: float | None) -> dict:
        """Load `model_id` of `task` (a :class:`~pgdl_measures.tasks.Task`) in the worker."""
        key = (task.name, str(task.input_dir), model_id)
        answer = self.request("load", {"task": task.name, "input_dir": str(task.input_dir),
                                       "reference_dir": None if task.reference_dir is None else str(task.reference_dir),
                                       "model_id": model_id}, deadline)
        self.model = key if answer["ok"] else None
        return answer

    def compute(self, measure, deadline: float | None) -> dict:
        """Compute `measure` (a Measure instance, rebuilt in the child from its class and params)."""
        return self.request("compute", {"cls": type(measure), "params": measure.params}, deadline)

    def kill(self) -> None:
        """Kill the child and anything it started (SIGKILL), and reap it."""
        self._child.kill()

    def close(self) -> None:
        """Ask the child to exit, killing it if it does not within 10 s."""
        if self._child.alive:
            try:
                self._child.send(("exit", {}))
            except WorkerDied:
                return
        self._child.close(timeout=10)


if __name__ == "__main__":
    main()
