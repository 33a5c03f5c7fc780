"""Trainers for tests that fail on the Dask workers (imported there by ``module:function``)."""

from __future__ import annotations

from pgdl_measures.errors import PGDLError


def spec_error(task):
    """What keras_trial raises for a model that does not fit its data: a spec error met on a worker."""
    raise PGDLError(f"model {task['spec']['model']['name']!r} cannot be built for digits (8, 8, 1): too deep")


def disk_filler(task):
    """The fake trainer, which on a disk under 1 MiB first writes a checkpoint until the disk is
    full (OSError ENOSPC, as a Keras checkpoint on a full disk)."""
    import shutil
    from pathlib import Path

    from pgdl_measures.search.objectives import fake_trial

    out = Path(task["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(out).total < 2 ** 20:
        with open(out / "checkpoint.bin", "wb") as f:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
    return fake_trial(task)
