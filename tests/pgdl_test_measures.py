"""Test-only measures for `pgdl evaluate`: one that fails, one that kills its process, one that
kills the Dask worker that started it, one that hangs, one that is slow. Cheap on every other
model (the number of weight entries).

Tests pass the classes to the library directly, or register them for the CLI through a fake
distribution's entry points (see tests/cli/test_evaluate_cli.py). Not collected by pytest.
"""

from __future__ import annotations

import os
import signal
import time

from pgdl_measures.measures.base import Measure


def _weight_count(trained) -> float:
    return float(sum(w.size for w in trained.model.get_weights()))


class _TestMeasure(Measure):
    summary = "test fixture"
    reference = "test fixture"
    direction = 1
    needs_train_data = False

    def __init__(self, *, model: str = "model_1"):
        self.model = model


class FailOn(_TestMeasure):
    """Raises on `model`."""

    name = "test_fails"

    def compute(self, trained):
        if trained.model_id == self.model:
            raise RuntimeError(f"deliberate failure on {trained.model_id}")
        return _weight_count(trained)


class CrashOn(_TestMeasure):
    """Kills its own process on `model` (as a segfault or the OOM killer would)."""

    name = "test_crashes"

    def compute(self, trained):
        if trained.model_id == self.model:
            os._exit(7)
        return 2.0 * _weight_count(trained)


class KillsWorker(_TestMeasure):
    """Kills the process that started its worker child (on a cluster, the Dask worker) on the model
    named by ``$PGDL_TEST_KILL_MODEL``, appending that pid to the file ``$PGDL_TEST_KILL_LOG``;
    with ``$PGDL_TEST_KILL_ONCE`` set, only while that file is empty. Cheap and harmless when the
    variable is unset, so the same measure runs serially."""

    name = "test_kills_worker"

    def compute(self, trained):
        target, log = os.environ.get("PGDL_TEST_KILL_MODEL"), os.environ.get("PGDL_TEST_KILL_LOG", "")
        if target and trained.model_id == target:
            once = os.environ.get("PGDL_TEST_KILL_ONCE")
            if not (once and os.path.exists(log) and os.path.getsize(log)):
                parent = os.getppid()
                with open(log, "a") as out:
                    out.write(f"{parent}\n")
                os.kill(parent, signal.SIGKILL)
                os._exit(9)
        return 4.0 * _weight_count(trained)


class HangOn(_TestMeasure):
    """Sleeps an hour on `model`."""

    name = "test_hangs"

    def compute(self, trained):
        if trained.model_id == self.model:
            time.sleep(3600)
        return 3.0 * _weight_count(trained)


class Slow(Measure):
    """Sleeps `seconds` on every model, then returns its number of weight entries plus one."""

    name = "test_slow"
    summary = "test fixture"
    reference = "test fixture"
    direction = -1
    needs_train_data = False

    def __init__(self, *, seconds: float = 0.5):
        self.seconds = seconds

    def compute(self, trained):
        time.sleep(self.seconds)
        return _weight_count(trained) + 1.0


#: entry-point name -> "module:Class", for a fake distribution.
ENTRY_POINTS = {"test_fails": "pgdl_test_measures:FailOn", "test_crashes": "pgdl_test_measures:CrashOn",
                "test_hangs": "pgdl_test_measures:HangOn",
                "test_kills_worker": "pgdl_test_measures:KillsWorker", "test_slow": "pgdl_test_measures:Slow"}
