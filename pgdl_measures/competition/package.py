"""Package a registered measure as a PGDL competition submission zip.

:func:`package_submission` writes a zip holding, at its top level (no enclosing folder, as the
competition required):

* ``complexity.py`` (from ``templates/submission/complexity.py.tmpl``): imports the measure,
  builds it with its parameters frozen as JSON, and defines ``complexity(model, dataset)``,
  which turns the competition's arguments into a ``TrainedModel``
  (:mod:`pgdl_measures.competition.adapter`) and calls the measure;
* ``metadata``: one ``description:`` line, like ``sample_submission/metadata``;
* ``pgdl_vendored/``: the toolkit modules the measure and the adapter need, copied with every
  reference to ``pgdl_measures`` rewritten to ``pgdl_vendored`` (see :func:`rewrite_source`);
* for a plugin measure, its top-level module or package, with the same rewriting.

Why a renamed copy rather than a ``pgdl_measures`` folder first on ``sys.path``: a process that
already imported the toolkit (``pgdl run-submission``'s child does, to read the data) would
hand the submission the installed modules from ``sys.modules``, and the zip would never be
tested alone. Under its own name the vendored code is what runs, wherever it runs.

Which modules: those reachable from the measure's module and the adapter through ``import``
statements anywhere in a module (module level or inside a function) and string literals naming
a toolkit module (``"pgdl_measures.autodiff.tensorflow"``), with the packages above each
(``pgdl_measures`` and ``scoring``, the bottom layer that holds the exception type, vendored as
``pgdl_vendored._scoring``).
After rewriting, a vendored file that still refers to ``pgdl_measures`` (say through a module
name assembled at run time) is an error, not a broken zip. Third-party imports executed when
the submission is imported, of packages outside TensorFlow's own dependencies (what the
competition's environment had), are reported as warnings.
"""

from __future__ import annotations

import ast
import functools
import io
import json
import os
import re
import string
import sys
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from pgdl_measures import __version__
from pgdl_measures.errors import PGDLError
from scoring.files import atomic_write

#: the toolkit's import name, and the name its vendored copy gets inside a submission
TOOLKIT = "pgdl_measures"
VENDORED = "pgdl_vendored"
#: the toolkit's own packages: import name -> the name of its vendored copy inside a submission
#: (``scoring`` holds the project's exception type, which every toolkit module raises)
OWN_PACKAGES = {TOOLKIT: VENDORED, "scoring": f"{VENDORED}._scoring"}
#: the module that turns the competition's (model, dataset) into a TrainedModel
ADAPTER = "pgdl_measures.competition.adapter"
#: what the competition's environment was built on
ENVIRONMENT_ROOT = "tensorflow"
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


# ------------------------------------------------------------------------------ finding modules


def _module_name_pattern(package: str) -> re.Pattern:
    """A string naming a module of `package` (``"package.x.y"``, ``"package.x:Attr"``)."""
    return re.compile(rf"^{re.escape(package)}(\.[A-Za-z_]\w*)*(:[A-Za-z_][\w.]*)?$")


_MODULE_NAME = _module_name_pattern(TOOLKIT)


def _toolkit_root() -> Path:
    import pgdl_measures

    return Path(pgdl_measures.__file__).resolve().parent


def _own_roots() -> dict[str, Path]:
    """Import name -> folder, for each of :data:`OWN_PACKAGES`."""
    import importlib

    return {name: Path(importlib.import_module(name).__file__).resolve().parent for name in OWN_PACKAGES}


@functools.lru_cache(maxsize=512)
def rewrite_own(text: str, *, filename: str = "<source>") -> str:
    """`text` with every reference to one of :data:`OWN_PACKAGES` turned into its vendored name
    (remembered: packaging several measures rewrites the same toolkit modules once)."""
    for old, new in OWN_PACKAGES.items():
        text = rewrite_source(text, old, new, filename=filename)
    return text


def _vendored_path(module: str, path: Path, roots: dict[str, Path]) -> str:
    """The archive name of the vendored copy of `module` (file `path`)."""
    top = module.split(".")[0]
    relative = path.relative_to(roots[top]).as_posix()
    return "/".join(OWN_PACKAGES[top].split(".") + [relative])


@dataclass
class _Source:
    """One Python module to vendor: its name, file, and whether it is a package."""

    name: str
    path: Path
    is_package: bool


class _Locator:
    """Module name -> source file, for the toolkit and (when given) a plugin's top level."""

    def __init__(self, roots: dict[str, Path]):
        self.roots = roots  # top-level name -> folder of the package, or the module's .py file

    def find(self, name: str) -> _Source | None:
        top, *rest = name.split(".")
        root = self.roots.get(top)
        if root is None:
            return None
        if root.is_file():
            return _Source(name, root, False) if not rest else None
        folder = root.joinpath(*rest)
        if (folder / "__init__.py").is_file():
            return _Source(name, folder / "__init__.py", True)
        module = folder.with_suffix(".py") if rest else None
        if module is not None and module.is_file():
            return _Source(name, module, False)
        return None


@dataclass
class _Refs:
    """What a module refers to: modules of the locator's packages, imported when it is imported
    (eager) or later; third-party top-level packages imported when it is imported."""

    eager: set[str] = field(default_factory=set)
    lazy: set[str] = field(default_factory=set)
    third_party: set[str] = field(default_factory=set)
    imported_names: dict[str, set[str]] = field(default_factory=dict)  # module -> names taken from it


def _resolve_relative(module: _Source, level: int, name: str | None) -> str:
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    parts = package.split(".")
    if level > 1:
        parts = parts[:len(parts) - (level - 1)]
    base = ".".join(parts)
    return f"{base}.{name}" if name else base


def _docstring_ids(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                ids.add(id(first.value))
    return ids


def _module_references(source: _Source, tree: ast.AST, locator: _Locator) -> _Refs:
    refs = _Refs()

    def add(name: str, eager: bool, names: Iterable[str] = ()) -> None:
        top = name.split(".")[0]
        if top not in locator.roots:
            if eager:
                refs.third_party.add(top)
            return
        if locator.find(name) is not None:
            (refs.eager if eager else refs.lazy).add(name)
        for item in names:  # `from package import module`
            if locator.find(f"{name}.{item}") is not None:
                (refs.eager if eager else refs.lazy).add(f"{name}.{item}")
            else:
                refs.imported_names.setdefault(name, set()).add(item)

    def visit(node: ast.AST, eager: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, eager)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                module = _resolve_relative(source, node.level, node.module)
            if module != "__future__":
                add(module, eager, [a.name for a in node.names if a.name != "*"])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_NAME.match(node.value):
            add(node.value.partition(":")[0], False)
        inner = eager and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, True)
    return refs


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


@dataclass
class _Closure:
    sources: dict[str, _Source]
    texts: dict[str, str]  # the source to vendor
    eager: set[str]  # modules imported when complexity.py is imported
    refs: dict[str, _Refs]


def _closure(roots: Sequence[tuple[str, bool]], locator: _Locator) -> _Closure:
    """Every module of the locator's packages reachable from `roots` ((name, imported when
    complexity.py is imported) pairs), with the packages above each (see the module docstring)."""
    closure = _Closure({}, {}, set(), {})
    pending = list(roots)
    while pending:
        name, eager = pending.pop()
        if name in (closure.eager if eager else closure.sources):
            continue
        pending.extend((parent, eager) for parent in _parents(name))
        source = locator.find(name)
        if source is None:
            raise PGDLError(f"module {name} is imported but is not among the files to vendor "
                            f"({', '.join(str(p) for p in locator.roots.values())})")
        if eager:
            closure.eager.add(name)
        if name not in closure.sources:
            text = source.path.read_text(encoding="utf-8")
            try:
                tree = ast.parse(text, filename=str(source.path))
            except SyntaxError as exc:
                raise PGDLError(f"cannot parse {name}: {exc.msg} (line {exc.lineno})", source.path) from None
            closure.sources[name], closure.texts[name] = source, text
            closure.refs[name] = _module_references(source, tree, locator)
        pending.extend((m, eager) for m in closure.refs[name].eager)
        pending.extend((m, False) for m in closure.refs[name].lazy)
    return closure


# ------------------------------------------------------------------------------ the environment


def _normalise(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


@functools.cache
def competition_environment(root: str = ENVIRONMENT_ROOT) -> frozenset[str]:
    """The top-level import names of `root`'s distribution and all it requires (installed here).

    The competition's environment held TensorFlow and its dependencies (plus the standard
    library); this is today's equivalent. Empty when `root` is not installed.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    seen: set[str] = set()
    pending = [root]
    while pending:
        name = _normalise(pending.pop())
        if name in seen:
            continue
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for line in requires:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                pending.append(req.name)
    return frozenset(module for module, dists in metadata.packages_distributions().items()
                     if any(_normalise(d) in seen for d in dists))


# ------------------------------------------------------------------------------ rewriting


def _offsets(data: bytes) -> list[int]:
    starts = [0]
    for index, byte in enumerate(data):
        if byte == 0x0A:
            starts.append(index + 1)
    return starts


def rewrite_source(text: str, old: str = TOOLKIT, new: str = VENDORED, *, filename: str = "<source>") -> str:
    """Python source `text` with every reference to package `old` turned into `new`.

    * ``from old.x import y`` -> ``from new.x import y`` (relative imports are left alone);
    * ``import old.x as z`` -> ``import new.x as z``; ``import old.x`` (which binds the name
      ``old``) -> ``import new.x, new as old``, so ``old.x.f()`` in the code still works;
    * a string literal naming a module, ``"old.x"`` or ``"old.x:Attr"`` -> ``"new.x..."``
      (docstrings are left alone).

    Everything else, comments and layout included, is kept byte for byte.

    Raises:
        PGDLError: `text` does not parse, or still refers to `old` afterwards in a way this
            cannot rewrite (a module name assembled at run time, say).
    """
    try:
        tree = ast.parse(text, filename=filename)
    except SyntaxError as exc:
        raise PGDLError(f"cannot parse: {exc.msg} (line {exc.lineno})", filename) from None
    data = text.encode("utf-8")
    starts = _offsets(data)

    def span(node: ast.AST) -> tuple[int, int]:
        return starts[node.lineno - 1] + node.col_offset, starts[node.end_lineno - 1] + node.end_col_offset

    def renamed(name: str) -> str:
        return new + name[len(old):]

    def ours(name: str | None) -> bool:
        return bool(name) and (name == old or name.startswith(old + "."))

    module_name = _module_name_pattern(old)

    edits: list[tuple[int, int, bytes]] = []
    docstrings = _docstring_ids(tree)
    in_fstring = {id(c) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for c in ast.walk(n)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(ours(a.name) for a in node.names):
            parts = []
            for alias in node.names:
                if not ours(alias.name):
                    parts.append(alias.name + (f" as {alias.asname}" if alias.asname else ""))
                elif alias.asname:
                    parts.append(f"{renamed(alias.name)} as {alias.asname}")
                elif alias.name == old:
                    parts.append(f"{new} as {old}")
                else:
                    parts.append(f"{renamed(alias.name)}, {new} as {old}")
            edits.append((*span(node), ("import " + ", ".join(parts)).encode()))
        elif isinstance(node, ast.ImportFrom) and not node.level and ours(node.module):
            start, end = span(node)
            statement = re.sub(rb"^from(\s+)" + re.escape(old.encode()), b"from\\1" + new.encode(), data[start:end])
            edits.append((start, end, statement))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
              and id(node) not in in_fstring and module_name.match(node.value)):
            start, end = span(node)
            literal = data[start:end]  # keep the literal's own quotes when it spells the name out
            replacement = (literal.replace(old.encode(), new.encode(), 1) if old.encode() in literal
                           else repr(renamed(node.value)).encode())
            edits.append((start, end, replacement))
    for start, end, replacement in sorted(edits, reverse=True):
        data = data[:start] + replacement + data[end:]
    result = data.decode("utf-8")
    _check_rewritten(result, old, filename)
    return result


def _check_rewritten(text: str, old: str, filename: str) -> None:
    tree = ast.parse(text, filename=filename)
    docstrings = _docstring_ids(tree)
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if node.value == old or node.value.startswith((old + ".", old + ":")):
                names = [node.value]
        for name in names:
            if name == old or name.startswith((old + ".", old + ":")):
                raise PGDLError(f"line {node.lineno} refers to {name!r} in a way `pgdl package` cannot "
                                f"rewrite to the vendored {VENDORED!r} (e.g. a module name built at run "
                                "time): use a literal module name or an import statement", filename)


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
    roots = _own_roots()
    top = cls.__module__.split(".")[0]
    plugin_files = {} if top == TOOLKIT else _plugin_files(top, roots)
    # the adapter and the measure's module are imported with complexity.py; any file of a
    # plugin may be imported by it later, so the toolkit modules they import are vendored too
    starts = [(ADAPTER, True), (cls.__module__, True)]
    starts += [(_archive_module(n), False) for n in plugin_files if n.endswith(".py")]
    closure = _closure(starts, _Locator(roots))
    warnings = _environment_warnings(closure, set(roots))

    files: dict[str, bytes] = {}
    modules = sorted(n for n in closure.sources if n.split(".")[0] in OWN_PACKAGES)
    for module in modules:
        path = closure.sources[module].path
        text = rewrite_own(closure.texts[module], filename=str(path))
        files[_vendored_path(module, path, roots)] = text.encode("utf-8")
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


def _environment_warnings(closure: _Closure, own: set[str]) -> list[str]:
    environment = competition_environment()
    if not environment:
        return [f"{ENVIRONMENT_ROOT} is not installed here: the imports of the vendored code were not checked"]
    allowed = environment | set(sys.stdlib_module_names) | own | {"__future__"}
    out = []
    for module in sorted(closure.eager):
        missing = sorted(closure.refs[module].third_party - allowed)
        if missing:
            out.append(f"{module} imports {', '.join(missing)} when imported, which is not among TensorFlow's "
                       "dependencies: the competition's environment may lack it")
    return out


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
