"""Package a registered measure as a PGDL competition submission zip.

:func:`package_submission` writes a zip holding, at its top level (no enclosing folder, as the
competition required):

* ``complexity.py`` (from ``templates/submission/complexity.py.tmpl``): imports the measure,
  builds it with its parameters frozen as JSON, and defines ``complexity(model, dataset)``,
  which turns the competition's arguments into a ``TrainedModel``
  (:mod:`pgdl_measures.competition.adapter`) and calls the measure;
* ``metadata``: one ``description:`` line, like ``sample_submission/metadata``;
* ``pgdl_vendored/``: the toolkit modules the measure and the adapter need, copied with every
  reference to ``pgdl_measures`` rewritten to ``pgdl_vendored``
  (:func:`~pgdl_measures.competition.vendor.rewrite_source`);
* for a plugin measure, its top-level module or package, with the same rewriting.

Why a renamed copy rather than a ``pgdl_measures`` folder first on ``sys.path``: a process that
already imported the toolkit (``pgdl run-submission``'s child does, to read the data) would
hand the submission the installed modules from ``sys.modules``, and the zip would never be
tested alone. Under its own name the vendored code is what runs, wherever it runs.

Which modules, how they are rewritten, and the warnings about imports the competition's
environment lacked: :mod:`pgdl_measures.competition.vendor`.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import string
import sys
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pgdl_measures import __version__
from pgdl_measures.competition.vendor import (
    OWN_PACKAGES,
    TOOLKIT,
    VENDORED,
    Locator,
    environment_warnings,
    module_closure,
    own_roots,
    rewrite_own,
    vendored_path,
)
from pgdl_measures.errors import PGDLError
from scoring.files import atomic_write

#: the module that turns the competition's (model, dataset) into a TrainedModel
ADAPTER = "pgdl_measures.competition.adapter"
#: top-level names a plugin may not have: they are taken inside the archive
RESERVED_NAMES = ("complexity", "metadata", VENDORED)

_TEMPLATE = ("competition", "templates", "complexity.py.tmpl")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same measure gives the same bytes
_SKIPPED_PARTS = ("__pycache__",)
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


@dataclass
class PackagedSubmission:
    """What :func:`package_submission` wrote.

    Attributes:
        path: the zip.
        measure: the measure's registry name.
        params: its frozen keyword parameters (as given).
        modules: the toolkit modules vendored, in sorted order.
        plugin: the plugin's top-level module or package vendored too (None for a built-in).
        files: the archive's entries.
        warnings: imports the competition's environment probably lacks.
    """

    path: Path
    measure: str
    params: dict[str, Any]
    modules: list[str]
    plugin: str | None
    files: list[str]
    warnings: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------ the submission


def _measure_class(name: str, params: dict[str, Any]):
    from pgdl_measures.registry import get_measure

    try:
        instance = get_measure(name, **params)
    except PGDLError:
        raise
    except (TypeError, ValueError) as exc:
        raise PGDLError(f"measure {name!r} rejects the parameters {params}: {exc}") from None
    cls = type(instance)
    module = sys.modules.get(cls.__module__)
    if cls.__module__ == "__main__" or getattr(module, cls.__qualname__, None) is not cls:
        raise PGDLError(f"measure {name!r} ({cls.__module__}.{cls.__qualname__}) must be a class defined at the "
                        "top level of an importable module to be packaged")
    try:
        json.dumps(params, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PGDLError(f"the parameters of {name!r} cannot be frozen as JSON: {exc}") from None
    return cls, instance


def _plugin_root(top: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(top)
    if spec is None:
        raise PGDLError(f"cannot find the plugin's top-level module {top!r} to vendor it")
    locations = list(spec.submodule_search_locations or [])
    if locations:
        if len(locations) != 1:
            raise PGDLError(f"plugin package {top!r} is a namespace package spread over {locations}; "
                            "vendoring needs one folder with an __init__.py")
        return Path(locations[0]).resolve()
    if not spec.origin or not spec.origin.endswith(".py"):
        raise PGDLError(f"plugin module {top!r} is not a Python source file ({spec.origin}); it cannot be vendored")
    return Path(spec.origin).resolve()


def _yaml_scalar(text: str) -> str:
    text = " ".join(text.split())
    plain = text and not re.search(r":\s|\s#|^[-?:,\[\]{}#&*!|>'\"%@`]|:$", text)
    return text if plain else json.dumps(text)


def render_metadata(name: str, cls, params: dict[str, Any]) -> str:
    """The ``metadata`` file: one ``description:`` line, as in ``sample_submission/metadata``."""
    settings = ", ".join(f"{k}={json.dumps(v)}" for k, v in params.items()) or "default parameters"
    summary = cls.summary.rstrip(".") or name
    text = f"PGDL toolkit {__version__} submission - {name} ({settings}) - {summary}."
    return f"description: {_yaml_scalar(text)}\n"


def _docstring_text(text: str) -> str:
    return " ".join(str(text).split()).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def render_complexity(name: str, cls, params: dict[str, Any], instance) -> str:
    """The ``complexity.py`` of the submission (from the template)."""
    template = functools.reduce(lambda path, part: path.joinpath(part), _TEMPLATE, resources.files(TOOLKIT))
    template = template.read_text(encoding="utf-8")
    module = cls.__module__
    if module == TOOLKIT or module.startswith(TOOLKIT + "."):
        module = VENDORED + module[len(TOOLKIT):]
    command = " ".join(["pgdl package", name] + [f"--param {k}={json.dumps(v)}" for k, v in params.items()])
    return string.Template(template).substitute(
        name=name,
        version=__version__,
        summary=_docstring_text(cls.summary or name),
        params_text=_docstring_text(", ".join(f"{k}={v!r}" for k, v in instance.params.items()) or "none"),
        reference=_docstring_text(cls.reference or "-"),
        vendored=VENDORED,
        command=_docstring_text(command),
        measure_module=module,
        measure_class=cls.__name__,
        params_json=repr(json.dumps(params, sort_keys=True)),
        direction=f"{cls.direction:+d}",
    )


@dataclass
class SubmissionContents:
    """The files of a submission, in memory (see :func:`submission_files`).

    Attributes:
        files: archive name -> content.
        modules: the toolkit modules vendored.
        plugin: the plugin's top-level module or package vendored too (None for a built-in).
        warnings: imports the competition's environment probably lacks.
    """

    files: dict[str, bytes]
    modules: list[str]
    plugin: str | None
    warnings: list[str]


def submission_files(name: str, params: dict[str, Any] | None = None) -> SubmissionContents:
    """The files of the submission for measure `name` with `params`, in memory.

    Raises:
        PGDLError: an unknown measure or parameter, a class that cannot be imported by name, a
            plugin that cannot be vendored, or code that cannot be rewritten.
    """
    params = dict(params or {})
    cls, instance = _measure_class(name, params)
    roots = own_roots()
    top = cls.__module__.split(".")[0]
    plugin_files = {} if top == TOOLKIT else _plugin_files(top, roots)
    # the adapter and the measure's module are imported with complexity.py; any file of a
    # plugin may be imported by it later, so the toolkit modules they import are vendored too
    starts = [(ADAPTER, True), (cls.__module__, True)]
    starts += [(_archive_module(n), False) for n in plugin_files if n.endswith(".py")]
    closure = module_closure(starts, Locator(roots))
    warnings = environment_warnings(closure, set(roots))

    files: dict[str, bytes] = {}
    modules = sorted(n for n in closure.sources if n.split(".")[0] in OWN_PACKAGES)
    for module in modules:
        path = closure.sources[module].path
        text = rewrite_own(closure.texts[module], filename=str(path))
        files[vendored_path(module, path, roots)] = text.encode("utf-8")
    for archive_name, path in plugin_files.items():
        data = path.read_bytes()
        if path.suffix == ".py":
            data = rewrite_own(data.decode("utf-8"), filename=str(path)).encode("utf-8")
        files[archive_name] = data
    files["complexity.py"] = render_complexity(name, cls, params, instance).encode("utf-8")
    files["metadata"] = render_metadata(name, cls, params).encode("utf-8")
    return SubmissionContents(files, modules, None if top == TOOLKIT else top, warnings)


def _plugin_files(top: str, roots: dict[str, Path]) -> dict[str, Path]:
    """Archive name -> file for a plugin's top-level module or package (caches left out);
    adds its location to `roots`.

    Raises:
        PGDLError: the name is taken in the archive, or the plugin is not plain source files.
    """
    if top in RESERVED_NAMES or top in sys.stdlib_module_names:
        raise PGDLError(f"the plugin's top-level module {top!r} clashes with {top!r} in a submission; rename it")
    root = roots[top] = _plugin_root(top)
    if root.is_file():
        return {f"{top}.py": root}
    files = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and not set(relative.parts) & set(_SKIPPED_PARTS) and path.suffix not in _SKIPPED_SUFFIXES:
            files["/".join((top, *relative.parts))] = path
    return files


def _archive_module(archive_name: str) -> str:
    parts = archive_name[:-len(".py")].split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def write_zip(files: dict[str, bytes], path: str | os.PathLike) -> Path:
    """Write `files` (archive name -> content) to the zip `path`, atomically.

    Entries are sorted and carry a fixed date, so the same files give the same bytes. The zip
    is written to a temporary file beside `path` and renamed over it: `path` is either the old
    file or the complete new one, never a partial zip.

    Raises:
        PGDLError: the folder of `path` does not exist or cannot be written.
    """
    path = Path(path)
    folder = _writable_folder(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, files[name])
    try:
        atomic_write(path, buffer.getvalue())
    except OSError as exc:
        raise PGDLError(f"cannot write in this folder ({exc.strerror or exc})", folder) from None
    return path


def _writable_folder(path: Path) -> Path:
    folder = path.parent
    if not folder.is_dir():
        raise PGDLError("no such folder for the submission zip; create it first", folder)
    return folder


def default_output(name: str) -> Path:
    """``<measure>_submission.zip`` in the current folder."""
    return Path(f"{name}_submission.zip")


def package_submission(name: str, params: dict[str, Any] | None = None,
                       output: str | os.PathLike | None = None) -> PackagedSubmission:
    """Package the registered measure `name` (built-in or plugin) as a competition submission.

    The zip's top level holds ``complexity.py`` and ``metadata``; the toolkit code the measure
    needs is vendored under ``pgdl_vendored/`` and a plugin's top-level module or package beside
    it, so the submission runs with TensorFlow alone. Its ``complexity(model, dataset)`` gives
    what ``get_measure(name, **params)(task.load_model(model_id))`` gives on the same model.

    Args:
        name: the measure's registry name.
        params: its keyword parameters, frozen into ``complexity.py``.
        output: the zip to write (default :func:`default_output`); replaced atomically.

    Returns:
        A :class:`PackagedSubmission` describing the zip.

    Raises:
        PGDLError: an unknown measure or parameter, parameters JSON cannot hold, a measure or
            plugin that cannot be vendored, or an output folder that does not exist.
    """
    params = dict(params or {})
    path = default_output(name) if output is None else Path(output)
    _writable_folder(path)
    contents = submission_files(name, params)
    write_zip(contents.files, path)
    return PackagedSubmission(path, name, params, contents.modules, contents.plugin, sorted(contents.files),
                              contents.warnings)
