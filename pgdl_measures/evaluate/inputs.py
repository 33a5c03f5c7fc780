"""What an evaluation runs on: the measures and tasks asked for, the Keras backend, the output folder."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pgdl_measures.errors import PGDLError
from pgdl_measures.evaluate.store import canonical_params
from pgdl_measures.measures.base import Measure
from pgdl_measures.tasks import Task, find_tasks

#: Where results go when no output folder is given.
DEFAULT_OUT = Path("results")



def default_measure_names() -> list[str]:
    """The built-in measures that are available (importable), in registry order, less the
    opt-in ones (``registry.OPT_IN``: computed only when named, or with ``all``)."""
    from pgdl_measures.registry import BUILTINS, OPT_IN, available_measures

    found = available_measures()
    return [name for name in BUILTINS if name in found and name not in OPT_IN]


def all_measure_names() -> list[str]:
    """Every registered measure: the available built-ins (opt-in ones included, fitted ones not:
    :data:`~pgdl_measures.registry.FITTED`), then plugins."""
    from pgdl_measures.registry import FITTED, available_measures

    return [name for name in available_measures() if name not in FITTED]


def resolve_measures(names: Sequence[str] = (), params: dict[str, dict[str, Any]] | None = None) -> list[Measure]:
    """Measure instances from registry names and parameters (the default built-ins when `names` is
    empty; every registered measure but the fitted ones for the name ``all``).

    Raises:
        PGDLError: an unknown measure (the message lists the available ones), an unknown
            parameter, or parameters for a measure that is not selected.
    """
    from pgdl_measures.registry import get_measure

    params = dict(params or {})
    from pgdl_measures.registry import ALL

    if ALL in names:
        names = [name for name in names if name != ALL] + all_measure_names()
    names = list(dict.fromkeys(names)) or default_measure_names()
    stray = [name for name in params if name not in names]
    if stray:
        raise PGDLError(f"--param names measure {', '.join(map(repr, stray))}, which is not among the "
                        f"measures to compute ({', '.join(names)})")
    return [get_measure(name, **params.get(name, {})) for name in names]


def _as_measure(item: str | Measure | type) -> Measure:
    from pgdl_measures.registry import get_measure

    if isinstance(item, str):
        measure = get_measure(item)
    elif isinstance(item, type) and issubclass(item, Measure):
        measure = item()
    elif isinstance(item, Measure):
        measure = item
    else:
        raise PGDLError(f"not a measure: {item!r} (give a registry name, a Measure class or instance)")
    cls = type(measure)
    if not measure.name:
        raise PGDLError(f"measure class {cls.__qualname__} has no name")
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        raise PGDLError(f"measure class {cls.__qualname__} must be importable by the worker process: "
                        "define it at the top level of a module, not in __main__ or inside a function")
    canonical_params(measure.params)  # recordable as JSON, or PGDLError
    return measure


def _as_tasks(items: Sequence[Task | str | os.PathLike]) -> list[Task]:
    tasks: list[Task] = []
    for item in items:
        tasks.extend([item] if isinstance(item, Task) else find_tasks(item))
    seen: dict[str, Task] = {}
    for task in tasks:
        if task.name in seen and seen[task.name].input_dir.resolve() != task.input_dir.resolve():
            raise PGDLError(f"two tasks are named {task.name!r} ({seen[task.name].input_dir} and {task.input_dir}); "
                            "results are stored by task name, so evaluate them into different output folders")
        seen.setdefault(task.name, task)
    return list(seen.values())


def current_backend() -> str:
    """The Keras backend a worker will use: Keras's own choice, read without importing Keras.

    ``keras.backend.backend()`` if Keras is already imported, else ``KERAS_BACKEND``, else the
    ``backend`` of ``$KERAS_HOME/keras.json`` (``~/.keras/keras.json``), else tensorflow.
    """
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    try:
        return str(json.loads((home / "keras.json").read_text())["backend"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return "tensorflow"


def prepare_out_dir(out_dir: str | os.PathLike) -> Path:
    """Create the output folder and check it can be written.

    Raises:
        PGDLError: naming the folder, when it cannot be created or written.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise PGDLError(f"the output folder is not writable ({exc.strerror or exc}); choose another with --out",
                        out) from None
    return out

